package security_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"millrace/internal/security"
	"millrace/internal/testenv"
)

// server is one embedded Temporal server (no credential, as the SDK's
// testsuite starts it) shared by the attacks that go through the job
// service or a worker. Attacks on dev mode start their own dev service.
var server *testenv.Server

// bin holds the built binaries, by name: millrace, millrace-mcp,
// millrace-worker.
var bin = map[string]string{}

var report security.Report

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "millrace-security-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for name, pkg := range map[string]string{
		"millrace": "./cmd/millrace", "millrace-mcp": "./cmd/mcp", "millrace-worker": "./cmd/worker",
	} {
		if bin[name], err = testenv.BuildBinary(dir, pkg, name); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	if server, err = testenv.StartServer(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	server.Stop()
	os.RemoveAll(dir)
	if finish() != 0 && code == 0 {
		code = 1
	}
	os.Exit(code)
}

// finish prints the table and, under `make security`
// (MILLRACE_SECURITY_WRITE=SECURITY.md), writes it into the document.
func finish() int {
	fmt.Printf("\nmillrace attack suite\n\n%s", report.Markdown())
	if p := os.Getenv("MILLRACE_SECURITY_WRITE"); p != "" {
		if !filepath.IsAbs(p) {
			p = filepath.Join(testenv.RepoRoot(), p)
		}
		if err := report.WriteInto(p); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}

// attack records the test's row when it ends: "refused: detail" when it
// passed, "NOT REFUSED" when it failed. Call it first in every test of
// this package; detail is what the test saw, said when it is known.
func attack(t *testing.T, what string) *outcome {
	t.Helper()
	o := &outcome{}
	t.Cleanup(func() {
		res := "refused"
		if d := strings.TrimSpace(o.detail); d != "" {
			res += ": " + d
		}
		if t.Failed() {
			res = "NOT REFUSED (the test failed)"
		}
		report.Add(security.Row{Attack: what, Test: t.Name(), Result: res})
	})
	return o
}

// outcome is what an attack's test saw, for its row.
type outcome struct{ detail string }

// saw sets the detail of the row.
func (o *outcome) saw(format string, args ...any) { o.detail = fmt.Sprintf(format, args...) }
