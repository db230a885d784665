package filemode

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestApply checks each setting's modes and umask, through a file made
// with the permissive 0666 that a child process would use.
func TestApply(t *testing.T) {
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old); Dir, File = PrivateDir, PrivateFile })
	for _, tc := range []struct {
		env           string
		dir, file, mk os.FileMode
	}{
		{"", 0o700, 0o600, 0o600},
		{"private", 0o700, 0o600, 0o600},
		{"group", 0o750, 0o640, 0o640},
	} {
		t.Setenv(Env, tc.env)
		if err := Apply(); err != nil {
			t.Fatalf("%q: %v", tc.env, err)
		}
		p := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(p, nil, 0o666); err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(p)
		if Dir != tc.dir || File != tc.file || fi.Mode().Perm() != tc.mk {
			t.Errorf("%q: Dir %#o File %#o, a 0666 file %#o; want %#o %#o %#o", tc.env, Dir, File, fi.Mode().Perm(), tc.dir, tc.file, tc.mk)
		}
	}
	t.Setenv(Env, "world")
	Dir, File = PrivateDir, PrivateFile
	if err := Apply(); err == nil || !strings.Contains(err.Error(), "want private") || Dir != PrivateDir {
		t.Errorf("bad value: %v, Dir %#o", err, Dir)
	}
}
