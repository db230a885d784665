package devmode

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestServiceEnvIsAnAllowList(t *testing.T) {
	in := []string{
		"PATH=/usr/bin", "HOME=/home/u", "LC_ALL=C.UTF-8", "TMPDIR=/tmp/u",
		"MILLRACE_PYTHON=/opt/py/bin/python", "MILLRACE_MAX_RUNS=2", "MILLRACE_FILE_MODE=group",
		"MILLRACE_MCP_TOKEN=s3cret", "MILLRACE_METRICS_TOKEN=s3cret", "AWS_SECRET_ACCESS_KEY=s3cret",
		"TEMPORAL_ADDRESS=10.0.0.1:7233", "TEMPORAL_API_KEY=s3cret", "GITHUB_TOKEN=s3cret", "PATHX=1", "LC=1",
	}
	got := serviceEnv(in)
	want := []string{"PATH=/usr/bin", "HOME=/home/u", "LC_ALL=C.UTF-8", "TMPDIR=/tmp/u",
		"MILLRACE_PYTHON=/opt/py/bin/python", "MILLRACE_MAX_RUNS=2", "MILLRACE_FILE_MODE=group"}
	if !slices.Equal(got, want) {
		t.Errorf("serviceEnv =\n%q\nwant\n%q", got, want)
	}
}

func TestCheckServerRefusesTheCLI(t *testing.T) {
	t.Setenv(AllowCLIEnv, "")
	if err := checkServer("/usr/bin/millrace-temporal", false); err != nil {
		t.Errorf("millrace-temporal refused: %v", err)
	}
	err := checkServer("/usr/local/bin/temporal", true)
	if err == nil || !strings.Contains(err.Error(), AllowCLIEnv+"=1") || !strings.Contains(err.Error(), "make devserver") {
		t.Errorf("temporal CLI: %v, want a refusal naming the fix and the opt-in", err)
	}
	t.Setenv(AllowCLIEnv, "1")
	if err := checkServer("/usr/local/bin/temporal", true); err != nil {
		t.Errorf("with %s=1: %v", AllowCLIEnv, err)
	}
}

// TestTighten starts from a data dir an older millrace left open and checks
// the dev service's start closes it.
func TestTighten(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(Dir(data), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(data, 0o755)
	os.Chmod(Dir(data), 0o755)
	files := []string{filepath.Join(Dir(data), "service.log"), filepath.Join(Dir(data), portName),
		filepath.Join(data, DBName), filepath.Join(data, DBName+"-wal"), filepath.Join(data, DBName+"-shm")}
	for _, f := range files {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chmod(f, 0o644)
	}
	var log strings.Builder
	tighten(data, slog.New(slog.NewTextHandler(&log, nil)))
	mode := func(p string) os.FileMode { fi, _ := os.Stat(p); return fi.Mode().Perm() }
	if mode(data) != 0o700 || mode(Dir(data)) != 0o700 {
		t.Errorf("dirs %#o %#o, want 0700", mode(data), mode(Dir(data)))
	}
	for _, f := range files {
		if mode(f) != 0o600 {
			t.Errorf("%s: %#o, want 0600", f, mode(f))
		}
	}
	if !strings.Contains(log.String(), "changed the mode") {
		t.Errorf("nothing logged: %q", log.String())
	}
	log.Reset()
	tighten(data, slog.New(slog.NewTextHandler(&log, nil)))
	if log.Len() != 0 {
		t.Errorf("second pass logged %q", log.String())
	}
}

func TestEnsureTokenKeepsAPrivateToken(t *testing.T) {
	data := t.TempDir()
	os.MkdirAll(Dir(data), 0o700)
	if err := ensureToken(data); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(TokenFile(data))
	fi, _ := os.Stat(TokenFile(data))
	if len(strings.TrimSpace(string(first))) != 64 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token %q mode %#o", first, fi.Mode().Perm())
	}
	os.Chmod(TokenFile(data), 0o644)
	if err := ensureToken(data); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(TokenFile(data))
	fi, _ = os.Stat(TokenFile(data))
	if string(again) != string(first) || fi.Mode().Perm() != 0o600 {
		t.Errorf("restart changed the token or left it %#o", fi.Mode().Perm())
	}
}
