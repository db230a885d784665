package paths

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRootsConfinePaths(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "root")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{root, outside, filepath.Join(root, "sub")} {
		os.MkdirAll(d, 0o755)
	}
	os.WriteFile(filepath.Join(root, "nb.ipynb"), []byte("{}"), 0o644)
	os.WriteFile(filepath.Join(outside, "secret.ipynb"), []byte("{}"), 0o644)
	os.Symlink(filepath.Join(outside, "secret.ipynb"), filepath.Join(root, "escape.ipynb"))
	os.Symlink(outside, filepath.Join(root, "linkdir"))
	os.Symlink(filepath.Join(root, "nb.ipynb"), filepath.Join(root, "sub", "inside-link.ipynb"))

	r, err := NewRoots([]string{root})
	if err != nil {
		t.Fatal(err)
	}
	ok := []string{"nb.ipynb", filepath.Join(root, "nb.ipynb"), "sub/../nb.ipynb", "sub/inside-link.ipynb"}
	for _, p := range ok {
		if _, err := r.Existing(p); err != nil {
			t.Errorf("Existing(%q) = %v, want ok", p, err)
		}
	}
	outsideErr := []string{"../outside/secret.ipynb", "escape.ipynb", "linkdir/secret.ipynb", filepath.Join(outside, "secret.ipynb"), "sub/../../outside/secret.ipynb"}
	for _, p := range outsideErr {
		if _, err := r.Existing(p); !errors.Is(err, ErrOutsideRoots) {
			t.Errorf("Existing(%q) = %v, want ErrOutsideRoots", p, err)
		}
	}
	if _, err := r.Existing("missing.ipynb"); err == nil || errors.Is(err, ErrOutsideRoots) {
		t.Errorf("Existing(missing) = %v, want a does-not-exist error", err)
	}
	if got, err := r.Writable("new/dir/out.ipynb"); err != nil || got != filepath.Join(root, "new/dir/out.ipynb") {
		t.Errorf("Writable(new) = %q, %v", got, err)
	}
	for _, p := range []string{"linkdir/new.ipynb", "../outside/new.ipynb", "escape.ipynb"} {
		if _, err := r.Writable(p); !errors.Is(err, ErrOutsideRoots) {
			t.Errorf("Writable(%q) = %v, want ErrOutsideRoots", p, err)
		}
	}
	for _, p := range []string{"", "a\x00b"} {
		if _, err := r.Existing(p); err == nil {
			t.Errorf("Existing(%q) accepted", p)
		}
	}
}

// TestOutsideAnswerTellsNothing: a path outside the roots gets the same
// message whether the file exists, and a symlink's target is never named.
func TestOutsideAnswerTellsNothing(t *testing.T) {
	base := t.TempDir()
	root, outside := filepath.Join(base, "root"), filepath.Join(base, "outside")
	os.MkdirAll(root, 0o755)
	os.MkdirAll(outside, 0o755)
	os.WriteFile(filepath.Join(outside, "exists.ipynb"), []byte("{}"), 0o644)
	os.Symlink(filepath.Join(outside, "exists.ipynb"), filepath.Join(root, "l1.ipynb"))
	os.Symlink(filepath.Join(outside, "missing.ipynb"), filepath.Join(root, "l2.ipynb"))
	r, err := NewRoots([]string{root})
	if err != nil {
		t.Fatal(err)
	}
	msg := func(p string) string {
		_, err := r.Existing(p)
		if !errors.Is(err, ErrOutsideRoots) {
			t.Fatalf("Existing(%s) = %v, want ErrOutsideRoots", p, err)
		}
		return strings.ReplaceAll(err.Error(), p, "P")
	}
	if a, b := msg(filepath.Join(outside, "exists.ipynb")), msg(filepath.Join(outside, "missing.ipynb")); a != b {
		t.Errorf("existing and missing outside files answer differently:\n%s\n%s", a, b)
	}
	if a, b := msg("l1.ipynb"), msg("l2.ipynb"); a != b || strings.Contains(a, outside) {
		t.Errorf("symlinks out answer differently or name their target:\n%s\n%s", a, b)
	}
}
