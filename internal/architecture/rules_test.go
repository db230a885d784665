package architecture

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRules checks the module as it is against the rules.
func TestRules(t *testing.T) {
	for _, b := range Check(list(t, "")) {
		t.Error(b)
	}
}

// TestRulesCatchBadImports adds scratch files to the module through a
// `go list -overlay` (nothing is written into the tree) and checks that
// each deliberate bad import is reported with its rule.
func TestRulesCatchBadImports(t *testing.T) {
	root := moduleRoot(t)
	cases := []struct {
		dir, pkg, imp, want string
	}{
		{"workflows", "workflows", "os/exec", "workflows imports os/exec: workflow code must be deterministic"},
		{"workflows", "workflows", "millrace/internal/jobs", "workflows imports millrace/internal/jobs: workflow code must be deterministic"},
		{"internal/failure", "failure", "os", "internal/failure imports os: workflow code must be deterministic"},
		{"internal/notebook", "notebook", "go.temporal.io/sdk/client", "internal/notebook imports go.temporal.io/sdk/client: it is a Temporal-free package"},
		{"internal/mcpserver", "mcpserver", "millrace/internal/nbworker", "internal/mcpserver reaches internal/nbworker: the client side starts and reads jobs but never runs code"},
		{"internal/rundir", "rundir", "millrace/internal/executor", "internal/jobs reaches internal/executor"},
		{"internal/jobs", "jobs", "millrace/cmd/millrace", "internal/jobs imports cmd/millrace: a command is a main package"},
		{"internal/jobs", "jobs", "millrace/activities", "internal/jobs imports activities, which only internal/nbworker, internal/testenv may import"},
	}
	for _, c := range cases {
		t.Run(c.dir+"->"+c.imp, func(t *testing.T) {
			scratch := filepath.Join(root, c.dir, "zz_scratch_bad_import.go")
			src := "package " + c.pkg + "\n\nimport _ \"" + c.imp + "\"\n"
			overlay := filepath.Join(t.TempDir(), "overlay.json")
			content := filepath.Join(t.TempDir(), "scratch.go")
			if err := os.WriteFile(content, []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(map[string]map[string]string{"Replace": {scratch: content}})
			if err := os.WriteFile(overlay, b, 0o600); err != nil {
				t.Fatal(err)
			}
			bad := Check(list(t, overlay))
			for _, line := range bad {
				if strings.Contains(line, c.want) {
					return
				}
			}
			t.Errorf("a scratch import of %s in %s: got %q, want a line with %q", c.imp, c.dir, bad, c.want)
		})
	}
}

// list is `go list` of the module's packages and their non-test imports,
// with overlay (a go list -overlay file) when not empty.
func list(t *testing.T, overlay string) []Package {
	t.Helper()
	args := []string{"list", "-e", "-f", `{{.ImportPath}} {{join .Imports " "}}`}
	if overlay != "" {
		args = append(args, "-overlay", overlay)
	}
	cmd := exec.Command("go", append(args, "./...")...)
	cmd.Dir = moduleRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []Package
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		p, ok := strings.CutPrefix(f[0], Module+"/")
		if !ok {
			t.Fatalf("go list: %s is not in module %s", f[0], Module)
		}
		pkgs = append(pkgs, Package{Path: p, Imports: f[1:]})
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages: %s", len(pkgs), out)
	}
	return pkgs
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}
