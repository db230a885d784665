package nbworker

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"millrace/internal/config"
	"millrace/internal/executor"
)

// The worker starts the bundled runner with a Python that can run it:
// python3 on PATH when that one imports nbclient and ipykernel (a
// virtualenv's, here, over the system's), and never one that cannot.
func TestResolveExecutorFindsPython(t *testing.T) {
	venv := filepath.Join(t.TempDir(), "venv")
	if out, err := exec.Command("/usr/bin/python3", "-m", "venv", "--without-pip", "--system-site-packages", venv).CombinedOutput(); err != nil {
		t.Fatalf("make a virtualenv: %v\n%s", err, out)
	}
	broken := t.TempDir()
	if err := os.WriteFile(filepath.Join(broken, "python3"), []byte("#!/bin/sh\necho \"ModuleNotFoundError: No module named 'nbclient'\" >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		first, want string
	}{
		{filepath.Join(venv, "bin"), filepath.Join(venv, "bin", "python3")},
		{broken, ""},
	} {
		t.Setenv("PATH", c.first+string(os.PathListSeparator)+os.Getenv("PATH"))
		exe, err := resolveExecutor(&config.Config{Executor: executor.ChooseBundled, DataDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		if exe.Name != executor.Bundled || strings.HasPrefix(exe.Path, broken) || c.want != "" && exe.Path != c.want {
			t.Errorf("PATH starting with %s: got %s at %s, want the bundled runner on %q", c.first, exe.Name, exe.Path, c.want)
		}
		if out, err := exec.Command(exe.Path, "-c", "import nbclient, ipykernel").CombinedOutput(); err != nil {
			t.Errorf("the runner's Python %s cannot import nbclient and ipykernel: %v\n%s", exe.Path, err, out)
		}
	}
}

// A Python the user named that cannot run the runner stops the worker at
// start with the reason, rather than failing every run later.
func TestResolveExecutorRefusesBrokenPython(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "python")
	if err := os.WriteFile(bad, []byte("#!/bin/sh\necho \"ModuleNotFoundError: No module named 'ipykernel'\" >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{executor.ChooseBundled, executor.ChooseAuto} {
		t.Setenv("PATH", "/usr/bin:/bin") // no papermill: auto means the bundled runner
		_, err := resolveExecutor(&config.Config{Executor: kind, Python: bad, DataDir: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), "No module named 'ipykernel'") || !strings.Contains(err.Error(), bad) {
			t.Errorf("executor %s with a Python without ipykernel: got %v, want the reason and the path", kind, err)
		}
	}
}
