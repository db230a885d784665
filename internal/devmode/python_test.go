package devmode

import (
	"flag"
	"path/filepath"
	"testing"

	"millrace/internal/config"
	"millrace/internal/python"
)

// The service runs from /, so the Python a client names relative to its
// own folder reaches the service's worker as an absolute path; a bare name
// stays a name to look up on PATH, and an absolute one passes through the
// environment untouched.
func TestServiceArgsKeepTheClientsPython(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	cfg := &config.Config{DataDir: t.TempDir(), Namespace: "default", TaskQueue: "q"}
	for _, c := range []struct{ env, want string }{
		{".venv/bin/python", filepath.Join(dir, ".venv/bin/python")},
		{"python3.12", "python3.12"},
		{"/opt/py/bin/python3", "/opt/py/bin/python3"},
		{"", ""},
	} {
		t.Setenv(python.Env, c.env)
		args := serviceArgs(cfg)
		if args[0] != ServiceArg {
			t.Fatalf("args %q do not start with %s", args, ServiceArg)
		}
		// Parsed as RunService parses them, in the environment the
		// service gets.
		var got config.Config
		fs := flag.NewFlagSet(ServiceArg, flag.ContinueOnError)
		got.Register(fs)
		got.RegisterWorker(fs)
		if err := fs.Parse(args[1:]); err != nil {
			t.Fatalf("the service refuses %q: %v", args, err)
		}
		if got.Python != c.want {
			t.Errorf("%s=%q: the service's worker gets python %q, want %q", python.Env, c.env, got.Python, c.want)
		}
	}
}
