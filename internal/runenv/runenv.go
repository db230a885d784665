// Package runenv decides what environment a notebook gets. A kernel runs
// the caller's code, so it must not inherit the service's secrets (the MCP
// token, the webhook secret, Temporal's TLS key or API key): its
// environment is built from an allow-list of the worker's variables, the
// operator's additions and the run's own env, never by inheriting. A run's
// own env is checked by the same rule at start (job service) and again by
// the worker, which cannot trust a workflow input.
package runenv

import (
	"fmt"
	"sort"
	"strings"
)

// Patterns are variable names: "NAME" matches itself, "PREFIX_*" every name
// that starts with PREFIX_.
type Patterns []string

// Match reports whether name matches a pattern.
func (p Patterns) Match(name string) bool {
	for _, pat := range p {
		if prefix, ok := strings.CutSuffix(pat, "*"); ok && strings.HasPrefix(name, prefix) || pat == name {
			return true
		}
	}
	return false
}

// Parse checks comma-separated patterns (--allow-env, --pass-env).
func Parse(s string) (Patterns, error) {
	var out Patterns
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if !validName(strings.TrimSuffix(p, "*")) && p != "*" {
			return nil, fmt.Errorf("%q is not a variable name or NAME_PREFIX_* pattern", p)
		}
		out = append(out, p)
	}
	return out, nil
}

// Service is what no run may set and no kernel inherits: millrace's and
// Temporal's own settings and secrets (the attempt marker, the MCP token,
// the webhook secret, Temporal's TLS key and API key).
var Service = Patterns{"MILLRACE_*", "TEMPORAL_*"}

// Loader names change what code runs before the notebook's own: the
// dynamic loader's preloads and search paths, Python's startup file and
// home. A run may not set them (its env is merged over the runner's, which
// is millrace's code).
var Loader = Patterns{"LD_*", "DYLD_*", "PYTHONSTARTUP", "PYTHONHOME"}

// Inherited is what a kernel takes from the worker's environment by
// default: what programs need to find themselves, locales, and the usual
// knobs of Python, Jupyter, conda and GPU and BLAS libraries.
var Inherited = Patterns{
	"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "LC_*", "TZ", "TMPDIR", "TERM", "SHELL",
	"PYTHON*", "VIRTUAL_ENV", "CONDA_*", "JUPYTER_*", "XDG_*", "IPYTHONDIR", "MPLBACKEND", "MPLCONFIGDIR",
	"CUDA_VISIBLE_DEVICES", "CUDA_HOME", "NVIDIA_*", "OMP_NUM_THREADS", "MKL_*", "OPENBLAS_*", "HF_HOME",
	"SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
}

// CheckNames refuses the names of a run's env that it may not set: names
// that are not plain identifiers (an '=' or a NUL would forge another
// variable), millrace's and Temporal's own, loader names, and, when the
// operator configured an allow-list (--allow-env), names outside it. The
// message lists every refused name and says what to do.
func CheckNames(env map[string]string, allow Patterns) error {
	var bad []string
	for name := range env {
		switch {
		case !validName(name):
			bad = append(bad, fmt.Sprintf("%q is not a variable name (letters, digits and '_', not starting with a digit)", name))
		case Service.Match(name):
			bad = append(bad, fmt.Sprintf("%s is millrace's or Temporal's own", name))
		case Loader.Match(name):
			bad = append(bad, fmt.Sprintf("%s changes what runs before the notebook", name))
		case len(allow) > 0 && !allow.Match(name):
			bad = append(bad, fmt.Sprintf("%s is not in the operator's allow-list (%s)", name, strings.Join(allow, ",")))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	return fmt.Errorf("env: %s; remove these names from the run's env", strings.Join(bad, "; "))
}

// Kernel builds the executor's environment: the worker's variables that
// Inherited or pass (--pass-env) name, except Service ones even when pass
// names them, then Python's unbuffered output, then the run's own env
// (checked with CheckNames), which wins.
func Kernel(worker []string, pass Patterns, run map[string]string) []string {
	out := make([]string, 0, len(Inherited)+len(run)+2)
	for _, kv := range worker {
		name, _, ok := strings.Cut(kv, "=")
		if !ok || Service.Match(name) || name == "PYTHONSTARTUP" {
			continue
		}
		if _, over := run[name]; over {
			continue
		}
		if Inherited.Match(name) || pass.Match(name) {
			out = append(out, kv)
		}
	}
	// Python output unbuffered, so lines reach the log as they are
	// printed; debugpy's frozen-modules warning silenced. The run may
	// override both.
	for k, v := range map[string]string{"PYTHONUNBUFFERED": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1"} {
		if _, over := run[k]; !over {
			out = append(out, k+"="+v)
		}
	}
	names := make([]string, 0, len(run))
	for k := range run {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		out = append(out, k+"="+run[k])
	}
	return out
}

func validName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
