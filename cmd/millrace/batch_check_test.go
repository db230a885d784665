package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"millrace/internal/devmode"
	"millrace/internal/testenv"
)

// TestInvalidBatchFileStartsNoService runs the built binary in dev mode
// (no Temporal address) on a fresh data dir and HOME with a batch file
// that has every kind of problem: it exits with one error naming each, and
// no dev service was spawned (no service folder, no process).
func TestInvalidBatchFileStartsNoService(t *testing.T) {
	bin := builtBinary(t)
	serverBin, err := testenv.ServerBin()
	if err != nil {
		t.Fatal(err)
	}
	dataDir, root, home := t.TempDir(), t.TempDir(), t.TempDir()
	t.Cleanup(func() { _, _ = devmode.Stop(dataDir, 30*time.Second) })
	testenv.CopyFile(t, testenv.Testdata("typed_parameters.ipynb"), root)
	batch := filepath.Join(root, "bad.yaml")
	if err := os.WriteFile(batch, []byte(`nodes:
  - {id: a, path: typed_parameters.ipynb, depends_on: [b]}
  - {id: b, path: typed_parameters.ipynb, depends_on: [a]}
  - {id: c, path: missing.ipynb}
  - {id: d, path: typed_parameters.ipynb, depends_on: [ghost]}
  - {id: e, path: typed_parameters.ipynb, parameters: {bogus: 1}}
  - {id: f, path: typed_parameters.ipynb, parameters: {epochs: five}}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	// Every process the command starts inherits the marker.
	marker := "MILLRACE_TEST_MARK=" + uuid.NewString()
	cmd := exec.Command(bin, "batch", batch, "--data-dir", dataDir, "--roots", root, "--temporal-bin", serverBin)
	cmd.Env = append(withoutEnv("TEMPORAL_ADDRESS", "MILLRACE_DATA_DIR", "HOME"), "HOME="+home, marker)
	var out, errs strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errs
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitUsage {
		t.Fatalf("exit %v, want %d\nstdout: %s\nstderr: %s", err, exitUsage, out.String(), errs.String())
	}
	for _, want := range []string{
		"the dependencies form a cycle: a -> b -> a",
		"node c: notebook:",
		`node d depends on "ghost"`,
		`node e: unknown parameter "bogus"`,
		`node f: parameter "epochs" expects int (declared int), got string "five"`,
	} {
		if !strings.Contains(errs.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs.String())
		}
	}
	if strings.Contains(errs.String(), "starting the local dev service") {
		t.Errorf("the command announced a dev service start:\n%s", errs.String())
	}
	if _, err := os.Stat(devmode.Dir(dataDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the data dir has a dev service folder (%v): a service was started", err)
	}
	if procs := testenv.ProcessesWithEnv(marker); len(procs) > 0 {
		t.Errorf("processes left by the command: %+v", procs)
	}
}
