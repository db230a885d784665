package rundir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckCheckpoint accepts only a job's own checkpoint files, reached
// without symbolic links.
func TestCheckCheckpoint(t *testing.T) {
	data := t.TempDir()
	dir := CheckpointsDir(data, "nb-a", 2)
	other := CheckpointsDir(data, "nb-b", 1)
	for _, d := range []string{dir, other} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	good := filepath.Join(dir, "cell-7.ckpt")
	foreign := filepath.Join(other, "cell-3.ckpt")
	for _, f := range []string{good, foreign, filepath.Join(dir, "notes.txt")} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(foreign, filepath.Join(dir, "cell-8.ckpt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "cell-9.ckpt"), 0o700); err != nil {
		t.Fatal(err)
	}
	linkedJob := filepath.Join(data, "runs", "nb-c")
	if err := os.Symlink(filepath.Join(data, "runs", "nb-b"), linkedJob); err != nil {
		t.Fatal(err)
	}
	if err := CheckCheckpoint(data, "nb-a", good); err != nil {
		t.Errorf("the job's own checkpoint refused: %v", err)
	}
	for _, tc := range []struct{ job, path, want string }{
		{"nb-a", foreign, "not a checkpoint of job nb-a"},
		{"nb-a", filepath.Join(dir, "notes.txt"), "not a checkpoint"},
		{"nb-a", filepath.Join(dir, "..", "..", "..", "nb-b", "attempt-1", "checkpoints", "cell-3.ckpt"), "not a checkpoint of job nb-a"},
		{"nb-a", "cell-7.ckpt", "not a checkpoint"},
		{"nb-a", filepath.Join(dir, "cell-8.ckpt"), "symbolic link"},
		{"nb-a", filepath.Join(dir, "cell-9.ckpt"), "not a regular file"},
		{"nb-a", filepath.Join(dir, "cell-10.ckpt"), "no such file"},
		{"nb-c", filepath.Join(CheckpointsDir(data, "nb-c", 1), "cell-3.ckpt"), "symbolic link"},
	} {
		err := CheckCheckpoint(data, tc.job, tc.path)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckCheckpoint(%s, %s) = %v; want an error with %q", tc.job, tc.path, err, tc.want)
		}
	}
}
