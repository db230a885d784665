package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"millrace/internal/limits"
	"millrace/internal/python"
)

// dev status says which Python runs notebooks (one that really imports
// nbclient and ipykernel, with its version) and what enforces limits on
// this host, with or without a running service.
func TestDevStatusShowsPythonAndLimits(t *testing.T) {
	var none *env
	dataDir := []string{"--data-dir", t.TempDir()}
	t.Setenv(python.Env, "")

	r := none.millrace(t, append([]string{"dev", "status", "--json"}, dataDir...)...)
	wantCode(t, r, exitFailed)
	var st devStatus
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.Running || st.Python == nil || st.PythonError != "" {
		t.Fatalf("dev status --json: %v %s", err, r)
	}
	out, err := exec.Command(st.Python.Path, "-c", "import nbclient, ipykernel, platform; print(platform.python_version())").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != st.Python.Version {
		t.Errorf("dev status names %+v, which answers %v %s", *st.Python, err, out)
	}
	if want := limits.Detected().String(); st.Limits != want || !strings.Contains(st.Limits, "memory_limit: ") {
		t.Errorf("limits %q, want %q", st.Limits, want)
	}

	r = none.millrace(t, append([]string{"dev", "status"}, dataDir...)...)
	wantCode(t, r, exitFailed)
	for _, want := range []string{"no dev service is running", "  python     " + st.Python.Path + " (" + st.Python.Version + ")", "  limits     " + st.Limits} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("dev status lacks %q: %s", want, r)
		}
	}

	// A MILLRACE_PYTHON that cannot run notebooks is named with the reason.
	bad := filepath.Join(t.TempDir(), "python3")
	if err := os.WriteFile(bad, []byte("#!/bin/sh\necho \"ModuleNotFoundError: No module named 'nbclient'\" >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(python.Env, bad)
	r = none.millrace(t, append([]string{"dev", "status"}, dataDir...)...)
	wantCode(t, r, exitFailed)
	if !strings.Contains(r.stdout, "  python     none: python \""+bad+"\"") || !strings.Contains(r.stdout, "No module named 'nbclient'") {
		t.Errorf("dev status with a broken %s: %s", python.Env, r)
	}
}
