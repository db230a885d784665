// Package standalone checks that the repository stands alone: a clone with
// nothing beside it passes the tests that read notebooks. They once read
// papermill's corpus from ../shared, which only this project's CI has, so a
// new user's `make test` failed on a fresh machine.
package standalone

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// repoRoot is the module's root directory.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// slowRunnerTests are the runner's tests that wait on purpose; the outer
// run of the module's tests runs them.
const slowRunnerTests = "^(TestAutosaveLiveOutput|TestSignalCancelsRun|TestExecutionTimeout|TestKernelStartFailed|TestKernelDied)$"

func command(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s (in %s): %v\n%s", name, strings.Join(args, " "), dir, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestFreshCloneRunsItsNotebookTests clones the committed HEAD into an
// empty folder (t.TempDir()/x/repo, with nothing else in x) and runs the
// notebook model's and the runner's tests there, with a fresh HOME. Only
// the Go build and module caches are shared.
func TestFreshCloneRunsItsNotebookTests(t *testing.T) {
	root := repoRoot()
	head := command(t, root, os.Environ(), "git", "rev-parse", "HEAD")
	base := filepath.Join(t.TempDir(), "x")
	repo := filepath.Join(base, "repo")
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatal(err)
	}
	command(t, base, os.Environ(), "git", "clone", "--quiet", "--no-checkout", root, repo)
	command(t, repo, os.Environ(), "git", "checkout", "--quiet", "--detach", head)
	if entries, err := os.ReadDir(base); err != nil || len(entries) != 1 || entries[0].Name() != "repo" {
		t.Fatalf("the clone's parent holds %v (%v), want only repo", entries, err)
	}

	// go test puts its own GOROOT/bin first on the test's PATH, so this is
	// the go command that runs the test.
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command on PATH: %v", err)
	}
	env := []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
	// The warm caches, so nothing is downloaded or rebuilt needlessly.
	for _, name := range []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOPROXY", "GOFLAGS", "GOTOOLCHAIN"} {
		env = append(env, name+"="+command(t, root, os.Environ(), goBin, "env", name))
	}
	for _, name := range []string{"MILLRACE_PYTHON", "MILLRACE_TEMPORAL_BIN"} {
		if v, ok := os.LookupEnv(name); ok {
			env = append(env, name+"="+v)
		}
	}
	began := time.Now()
	// The runner's timing tests (signals, time limits, live output, kernels
	// that never start) take most of its time and read no other files than
	// the ones the rest read; the notebook model's tests load every
	// notebook of testdata/.
	cmd := exec.Command(goBin, "test", "-count=1", "-skip", slowRunnerTests, "./internal/notebook/", "./internal/executor/runner/")
	cmd.Dir, cmd.Env = repo, env
	out, err := cmd.CombinedOutput()
	t.Logf("go test in the fresh clone took %s:\n%s", time.Since(began).Round(time.Second), out)
	if err != nil {
		t.Fatalf("the notebook tests fail in a fresh clone with nothing beside it: %v", err)
	}
	for _, pkg := range []string{"millrace/internal/notebook", "millrace/internal/executor/runner"} {
		if !strings.Contains(string(out), "ok  \t"+pkg) {
			t.Errorf("go test did not pass %s", pkg)
		}
	}
}
