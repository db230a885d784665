package python

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fake writes an executable script named name in dir and returns its path.
func fake(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// Fake interpreters: one that has the packages (it prints what the check
// script prints, with its own path as sys.executable), one that has not,
// one that never answers.
const (
	hasPackages = `printf '\n%s\n3.12.1\n' "$0"`
	noPackages  = `echo "Traceback (most recent call last):" >&2; echo "ModuleNotFoundError: No module named 'nbclient'" >&2; exit 1`
	hangs       = `exec sleep 30`
)

// onPath makes lookPath find name in dir only, as exec.LookPath would with
// PATH=dir.
func onPath(dir string) func(string) (string, error) {
	return func(name string) (string, error) {
		if strings.Contains(name, "/") {
			return exec.LookPath(name)
		}
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err != nil {
			return "", exec.ErrNotFound
		}
		return p, nil
	}
}

func noSkip(string) string { return "" }

func TestFindSkipsPythonWithoutPackages(t *testing.T) {
	dir := t.TempDir()
	fake(t, dir, "path/python3", noPackages) // first on PATH, as pyenv's is on this machine
	good := fake(t, dir, "brew/python3", hasPackages)
	f := finder{
		lookPath: onPath(filepath.Join(dir, "path")), timeout: 10 * time.Second, skip: noSkip,
		candidates: []string{filepath.Join(dir, "missing/python3"), fake(t, dir, "frameworks/python3", noPackages), good, fake(t, dir, "later/python3", hasPackages)},
	}
	in, err := f.find()
	if err != nil {
		t.Fatal(err)
	}
	if want := (Interpreter{Path: good, Found: good, Version: "3.12.1"}); in != want {
		t.Errorf("got %+v, want %+v", in, want)
	}
}

func TestFindPrefersPathWhenItWorks(t *testing.T) {
	dir := t.TempDir()
	onPathPy := fake(t, dir, "path/python3", hasPackages)
	f := finder{lookPath: onPath(filepath.Join(dir, "path")), timeout: 10 * time.Second, skip: noSkip,
		candidates: []string{fake(t, dir, "brew/python3", hasPackages)}}
	in, err := f.find()
	if err != nil || in.Path != onPathPy {
		t.Errorf("got %+v, %v; want python3 on PATH, %s", in, err, onPathPy)
	}
}

// A Python the user named is the only one tried: a broken one is an error
// that says what to do, not a silent switch to another Python.
func TestFindExplicitMustWork(t *testing.T) {
	dir := t.TempDir()
	bad := fake(t, dir, "venv/bin/python", noPackages)
	good := fake(t, dir, "brew/python3", hasPackages)
	f := finder{explicit: bad, lookPath: onPath(dir), timeout: 10 * time.Second, skip: noSkip, candidates: []string{good}}
	_, err := f.find()
	for _, want := range []string{bad, "No module named 'nbclient'", bad + " -m pip install nbclient ipykernel", "unset " + Env} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("explicit python without nbclient: got %v, want it to say %q", err, want)
		}
	}

	f.explicit = filepath.Join(dir, "no/such/python")
	if _, err := f.find(); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("explicit python that does not exist: got %v, want not found", err)
	}

	f.explicit = fake(t, dir, "py2", `printf '\n/usr/bin/python2\n2.7.18\n'`)
	if _, err := f.find(); err == nil || !strings.Contains(err.Error(), "not a Python 3") {
		t.Errorf("explicit Python 2: got %v, want not a Python 3", err)
	}

	f.explicit = good
	if in, err := f.find(); err != nil || in.Path != good {
		t.Errorf("explicit working python: got %+v, %v", in, err)
	}
}

// When nothing works, the error names each Python it ran and why it was
// refused (once per real file, however many names lead to it), says what
// to install, and a hung interpreter costs only the timeout.
func TestFindNoneWorks(t *testing.T) {
	dir := t.TempDir()
	bad := fake(t, dir, "path/python3", noPackages)
	link := filepath.Join(dir, "local/python3")
	os.MkdirAll(filepath.Dir(link), 0o755)
	if err := os.Symlink(bad, link); err != nil {
		t.Fatal(err)
	}
	slow := fake(t, dir, "slow/python3", hangs)
	f := finder{lookPath: onPath(filepath.Join(dir, "path")), timeout: 500 * time.Millisecond, skip: noSkip,
		candidates: []string{link, slow, filepath.Join(dir, "missing/python3")}}
	start := time.Now()
	_, err := f.find()
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("took %s: the hung candidate was not cut off at its timeout", took)
	}
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
	msg := err.Error()
	for _, want := range []string{bad + ": cannot import nbclient and ipykernel (ModuleNotFoundError: No module named 'nbclient')", slow + ": no answer within 500ms", "pip install nbclient ipykernel", "brew install python", Env} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, link) || strings.Contains(msg, "missing") {
		t.Errorf("error %q names a symlink to a Python already tried, or one that is not installed", msg)
	}

	f = finder{lookPath: onPath(filepath.Join(dir, "empty")), timeout: time.Second, skip: noSkip, candidates: []string{filepath.Join(dir, "missing/python3")}}
	if _, err := f.find(); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "no python3 on PATH nor at the usual locations") {
		t.Errorf("nothing installed: got %v", err)
	}
}

// A candidate skip refuses (macOS's stub) is never run: running the stub
// opens a dialog.
func TestFindNeverRunsSkipped(t *testing.T) {
	dir := t.TempDir()
	ran := filepath.Join(dir, "ran")
	stub := fake(t, dir, "usr/bin/python3", "touch "+ran+"\n"+hasPackages)
	good := fake(t, dir, "brew/python3", hasPackages)
	f := finder{lookPath: onPath(filepath.Join(dir, "usr/bin")), timeout: 10 * time.Second, candidates: []string{good},
		skip: func(p string) string {
			if p == stub {
				return "a stub"
			}
			return ""
		}}
	in, err := f.find()
	if err != nil || in.Path != good {
		t.Errorf("got %+v, %v; want %s", in, err, good)
	}
	if _, err := os.Stat(ran); err == nil {
		t.Error("the skipped candidate was run")
	}
}

// The real search on this machine finds a Python that really imports
// nbclient and ipykernel, even when the first python3 on PATH cannot
// (pyenv's, here); and the answer is cached.
func TestFindReal(t *testing.T) {
	in, err := Find("")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(in.Path, "-c", "import nbclient, ipykernel, platform; print(platform.python_version())").CombinedOutput()
	if err != nil {
		t.Fatalf("%s cannot import nbclient and ipykernel: %v\n%s", in.Path, err, out)
	}
	if got := strings.TrimSpace(string(out)); got != in.Version {
		t.Errorf("version %q, want %q", in.Version, got)
	}
	if p, err := exec.LookPath("python3"); err == nil {
		if exec.Command(p, "-c", "import nbclient, ipykernel").Run() != nil && (in.Found == p || in.Path == p) {
			t.Errorf("chose %s, which cannot import nbclient", p)
		}
	}
	start := time.Now()
	again, err := Find("")
	if err != nil || again != in || time.Since(start) > 100*time.Millisecond {
		t.Errorf("second Find: %+v, %v in %s; want the cached %+v at once", again, err, time.Since(start), in)
	}
}

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{{"3.9", "3.10", -1}, {"3.12", "3.12", 0}, {"3.13", "3.8", 1}, {"3", "3.1", -1}} {
		if got := compareVersions(c.a, c.b); got != c.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}
