// Package python finds the Python that runs the bundled runner: one that
// has nbclient and ipykernel. The first python3 on PATH is often not it: on
// macOS /usr/bin/python3 is Apple's stub or an old Python, and pyenv, conda
// or a virtualenv may put an interpreter first that has neither package. So
// each candidate is asked, once per process, with one short subprocess.
package python

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Env names the variable that chooses the Python outright.
const Env = "MILLRACE_PYTHON"

// CheckTimeout bounds one candidate's check. The check itself takes tens of
// milliseconds; a pyenv shim adds about 0.3 s, and a loaded machine, or a
// Python on a cold disk, takes longer.
const CheckTimeout = 20 * time.Second

// Install says how to get a usable Python, for every error that found none.
const Install = "install nbclient and ipykernel into a Python 3 (`python3 -m pip install nbclient ipykernel`; " +
	"on macOS a Homebrew (`brew install python`) or python.org Python, not Apple's /usr/bin/python3; " +
	"on Debian or Ubuntu `apt-get install python3-nbclient python3-ipykernel`), or set " + Env + " (--python) to a Python that has them"

// ErrNotFound means no candidate has nbclient and ipykernel.
var ErrNotFound = errors.New("no Python with nbclient and ipykernel")

// Interpreter is a Python that has nbclient and ipykernel.
type Interpreter struct {
	// Path is the interpreter to run: the candidate's own sys.executable,
	// so that a pyenv shim or a relative path means the same Python
	// wherever it runs from (the dev service runs from /, with no
	// .python-version in sight).
	Path string `json:"path"`
	// Found is the candidate as it was found (on PATH, at a usual
	// location, or as given).
	Found   string `json:"found"`
	Version string `json:"version"` // "3.12.4"
}

// String is the interpreter for a status line: "/usr/bin/python3 (3.11.2)".
func (in Interpreter) String() string { return in.Path + " (" + in.Version + ")" }

// checkScript prints what Interpreter records, after finding the modules
// the bundled runner and its kernel import first. It finds them without
// importing them: the import costs 0.3 s or more of every worker's and the
// dev service's start, and a package that is present but breaks on import
// is still told apart, with its own traceback, by the warm pool's
// self-check and by a run's first error.
const checkScript = `import sys
from importlib.util import find_spec
missing = [m for m in ("nbclient", "ipykernel", "jupyter_client", "nbformat") if find_spec(m) is None]
if missing:
    sys.exit("ModuleNotFoundError: No module named " + ", ".join(repr(m) for m in missing))
sys.stdout.write("\n" + (sys.executable or "") + "\n%d.%d.%d\n" % sys.version_info[:3])`

// finder holds what discovery reads from the process, so tests can give
// their own.
type finder struct {
	explicit   string // --python or MILLRACE_PYTHON; "" to search
	lookPath   func(string) (string, error)
	candidates []string                 // searched in order after python3 on PATH
	timeout    time.Duration            // per candidate
	skip       func(path string) string // why a candidate is not even run; "" to run it
}

var (
	cacheMu sync.Mutex
	cache   = map[string]result{}
)

type result struct {
	in  Interpreter
	err error
}

// Find returns the Python for the bundled runner. explicit (--python or
// MILLRACE_PYTHON) is the only one tried when set: a Python the user named
// must work, or Find says why it does not. Otherwise it tries python3 on
// PATH, then the usual install locations (Candidates), and returns the
// first that has nbclient and ipykernel. The answer is kept for the
// life of the process (per explicit value, PATH and HOME).
func Find(explicit string) (Interpreter, error) {
	key := explicit + "\x00" + os.Getenv("PATH") + "\x00" + os.Getenv("HOME")
	cacheMu.Lock()
	defer cacheMu.Unlock()
	if r, ok := cache[key]; ok {
		return r.in, r.err
	}
	in, err := finder{explicit: explicit, lookPath: exec.LookPath, candidates: Candidates(), timeout: CheckTimeout, skip: appleStub}.find()
	cache[key] = result{in, err}
	return in, err
}

func (f finder) find() (Interpreter, error) {
	if f.explicit != "" {
		p, err := f.lookPath(f.explicit)
		if err != nil {
			return Interpreter{}, fmt.Errorf("python %q (--python or %s): not found: %w; point it at a Python that has nbclient and ipykernel, or unset it to search", f.explicit, Env, err)
		}
		in, err := check(p, f.timeout)
		if err != nil {
			return Interpreter{}, fmt.Errorf("python %q (--python or %s): %w; install them into it (`%s -m pip install nbclient ipykernel`), or unset %s to search", f.explicit, Env, err, p, Env)
		}
		return in, nil
	}
	var tried []string
	seen := map[string]bool{}
	try := func(p string) (Interpreter, bool) {
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return Interpreter{}, false // not installed here: not worth a mention
		}
		if seen[real] {
			return Interpreter{}, false
		}
		seen[real] = true
		if why := f.skip(p); why != "" {
			tried = append(tried, p+": "+why)
			return Interpreter{}, false
		}
		in, err := check(p, f.timeout)
		if err != nil {
			tried = append(tried, p+": "+err.Error())
			return Interpreter{}, false
		}
		return in, true
	}
	if p, err := f.lookPath("python3"); err == nil {
		if in, ok := try(p); ok {
			return in, nil
		}
	}
	for _, p := range f.candidates {
		if in, ok := try(p); ok {
			return in, nil
		}
	}
	if len(tried) == 0 {
		return Interpreter{}, fmt.Errorf("%w: no python3 on PATH nor at the usual locations; %s", ErrNotFound, Install)
	}
	return Interpreter{}, fmt.Errorf("%w (tried %s); %s", ErrNotFound, strings.Join(tried, "; "), Install)
}

// Check runs one interpreter and reports whether it has nbclient and
// ipykernel, with its version and sys.executable.
func Check(path string) (Interpreter, error) { return check(path, CheckTimeout) }

func check(path string, timeout time.Duration) (Interpreter, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "-c", checkScript)
	// `python -c` puts the working directory first on sys.path: in a
	// folder others can write to (/tmp), an nbclient.py left there would
	// run as this user. / is the root's.
	cmd.Dir = "/"
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	switch {
	case ctx.Err() != nil:
		return Interpreter{}, fmt.Errorf("no answer within %s", timeout)
	case err != nil:
		return Interpreter{}, fmt.Errorf("cannot import nbclient and ipykernel (%s)", lastLine(stderr.String(), err.Error()))
	}
	lines := strings.Split(strings.TrimRight(stdout.String(), "\n"), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[len(lines)-1], "3.") {
		return Interpreter{}, fmt.Errorf("not a Python 3 (it printed %q)", lastLine(stdout.String(), ""))
	}
	in := Interpreter{Path: lines[len(lines)-2], Found: path, Version: lines[len(lines)-1]}
	if in.Path == "" || !filepath.IsAbs(in.Path) {
		in.Path = path
	}
	if !filepath.IsAbs(in.Path) {
		if abs, err := filepath.Abs(in.Path); err == nil {
			in.Path = abs
		}
	}
	return in, nil
}

// lastLine is the last non-empty line of s (a traceback's "No module named
// 'nbclient'"), or def.
func lastLine(s, def string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if l := strings.TrimSpace(lines[len(lines)-1]); l != "" {
		return l
	}
	return def
}

// Candidates are the usual install locations of a python3, searched in
// this order after python3 on PATH: Homebrew (Apple silicon, then Intel),
// python.org's framework builds (newest first), pyenv's shim, conda and
// miniforge bases, and last the system Python (where Debian's
// python3-nbclient installs).
func Candidates() []string {
	out := []string{"/opt/homebrew/bin/python3", "/usr/local/bin/python3"}
	frameworks, _ := filepath.Glob("/Library/Frameworks/Python.framework/Versions/*/bin/python3")
	slices.SortFunc(frameworks, func(a, b string) int { return compareVersions(versionOf(b), versionOf(a)) })
	out = append(out, frameworks...)
	if home, err := os.UserHomeDir(); err == nil {
		out = append(out, filepath.Join(home, ".pyenv", "shims", "python3"))
		for _, base := range []string{"miniforge3", "mambaforge", "miniconda3", "anaconda3"} {
			out = append(out, filepath.Join(home, base, "bin", "python3"))
		}
	}
	out = append(out, "/opt/homebrew/Caskroom/miniforge/base/bin/python3", "/opt/miniconda3/bin/python3", "/opt/anaconda3/bin/python3", "/opt/conda/bin/python3")
	return append(out, "/usr/bin/python3")
}

// versionOf is a framework path's version folder
// (/Library/Frameworks/Python.framework/Versions/3.12/bin/python3: 3.12).
func versionOf(path string) string { return filepath.Base(filepath.Dir(filepath.Dir(path))) }

// compareVersions compares dotted versions number by number, so that 3.10
// comes after 3.9.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		x, _ := strconv.Atoi(as[i])
		y, _ := strconv.Atoi(bs[i])
		if x != y {
			return cmp.Compare(x, y)
		}
	}
	return cmp.Compare(len(as), len(bs))
}
