package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"millrace/internal/config"
	"millrace/internal/jobs"
	"millrace/internal/testenv"
)

// server is shared by every test of the package: one embedded Temporal
// server on a SQLite file; each test has its own task queue, data dir and
// in-process worker.
var server *testenv.Server

func TestMain(m *testing.M) {
	testenv.Main(m, &server, func() {
		if binDir != "" {
			os.RemoveAll(binDir)
		}
	})
}

// env is one test's millrace: a worker on its own task queue, a data dir,
// and a root folder holding its notebooks.
type env struct {
	cfg  *config.Config
	root string
	svc  *jobs.Service
}

func setup(t *testing.T) *env {
	t.Helper()
	cfg := server.Config(t)
	server.StartWorker(t, cfg)
	root := t.TempDir()
	return &env{cfg: cfg, root: root, svc: server.Service(t, cfg, root)}
}

// flags point a command at the test's server, task queue, data dir and
// root.
func (e *env) flags() []string {
	return []string{"--temporal-address", server.Address, "--task-queue", e.cfg.TaskQueue, "--data-dir", e.cfg.DataDir, "--roots", e.root}
}

// notebook copies a notebook into the test's root.
func (e *env) notebook(t *testing.T, src string) string {
	t.Helper()
	return testenv.CopyFile(t, src, e.root)
}

// result is what one command line did.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s\n--- stderr:\n%s", r.code, r.stdout, r.stderr)
}

// millrace runs a command line in-process, as main does, with the test's
// connection flags appended.
func (e *env) millrace(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, errs syncBuffer
	return e.run(ctx, &out, &errs, args...)
}

func (e *env) run(ctx context.Context, out, errs *syncBuffer, args ...string) result {
	if e != nil {
		args = append(args, e.flags()...)
	}
	err := run(ctx, args, out, errs)
	return result{stdout: out.String(), stderr: errs.String(), code: exitCode(err)}
}

// wantCode fails the test unless the command exited with code.
func wantCode(t *testing.T, r result, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("want exit %d, got %s", code, r)
	}
}

// syncBuffer is a buffer that a running command writes while the test
// reads it.
type syncBuffer = testenv.SyncBuffer

var jobIDRE = regexp.MustCompile(`nb-[0-9a-f-]{36}`)

// jobID finds the first job id in text.
func jobID(t *testing.T, text string) string {
	t.Helper()
	id := jobIDRE.FindString(text)
	if id == "" {
		t.Fatalf("no job id in %q", text)
	}
	return id
}

// Shared notebooks.
var (
	typesNotebook = filepath.Join("testdata", "types.ipynb")
	slowNotebook  = filepath.Join(testenv.RepoRoot(), "activities", "testdata", "slow.ipynb")
	trainNotebook = filepath.Join(testenv.RepoRoot(), "examples", "train.ipynb")
)

// binary builds the millrace command once for the tests that run it as a
// process. TestMain removes it.
var binary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "millrace-cli-bin-")
	if err != nil {
		return "", err
	}
	binDir = dir
	return testenv.BuildBinary(dir, "./cmd/millrace", "millrace")
})

var binDir string

func builtBinary(t *testing.T) string {
	t.Helper()
	bin, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// waitFor polls text until it contains want, failing the test (with the
// text) after timeout.
func waitFor(t *testing.T, timeout time.Duration, text func() string, want string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(text(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %q in:\n%s", timeout, want, text())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
