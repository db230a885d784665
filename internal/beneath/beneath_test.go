package beneath

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tree makes root/{nb.txt, sub/inner.txt, link-in -> nb.txt, link-out ->
// outside/secret, dirlink -> outside, abs-in -> root/nb.txt (absolute)} and
// outside/secret.
func tree(t *testing.T) (root, outside string) {
	t.Helper()
	base := t.TempDir()
	root, outside = filepath.Join(base, "root"), filepath.Join(base, "outside")
	for _, d := range []string{filepath.Join(root, "sub"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(root, "nb.txt"), "inside")
	write(filepath.Join(root, "sub", "inner.txt"), "inner")
	write(filepath.Join(outside, "secret"), "SECRET")
	for link, target := range map[string]string{
		"link-in": "nb.txt", "link-out": filepath.Join(outside, "secret"),
		"dirlink": outside, "abs-in": filepath.Join(root, "nb.txt"),
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	return root, outside
}

// both runs f with openat2 (where the kernel has it) and with the portable
// O_NOFOLLOW walk.
func both(t *testing.T, f func(t *testing.T, portable bool)) {
	t.Run("openat2", func(t *testing.T) { f(t, false) })
	t.Run("portable", func(t *testing.T) {
		was := noOpenat2.Load()
		noOpenat2.Store(true)
		defer noOpenat2.Store(was)
		f(t, true)
	})
}

func TestOpenStaysBeneathRoot(t *testing.T) {
	both(t, func(t *testing.T, portable bool) {
		root, outside := tree(t)
		for _, p := range []string{"nb.txt", "sub/inner.txt"} {
			b, err := ReadFile(root, filepath.Join(root, p), 0)
			if err != nil || len(b) == 0 {
				t.Errorf("ReadFile(%s) = %q, %v; want its content", p, b, err)
			}
		}
		// A symlink that stays inside is followed by openat2; the portable
		// walk refuses every symlink.
		b, err := ReadFile(root, filepath.Join(root, "link-in"), 0)
		if portable && !errors.Is(err, ErrEscapes) || !portable && string(b) != "inside" {
			t.Errorf("ReadFile(link-in) = %q, %v", b, err)
		}
		for _, p := range []string{"link-out", "dirlink/secret", "abs-in", "sub/../../outside/secret"} {
			b, err := ReadFile(root, filepath.Join(root, p), 0)
			if p == "sub/../../outside/secret" {
				// Cleaned lexically, it is not beneath the root at all.
				b, err = ReadFile(root, filepath.Clean(filepath.Join(root, p)), 0)
			}
			if !errors.Is(err, ErrEscapes) {
				t.Errorf("ReadFile(%s) = %q, %v; want ErrEscapes", p, b, err)
			}
			if err != nil && p != "sub/../../outside/secret" && strings.Contains(err.Error(), outside) {
				t.Errorf("ReadFile(%s) error names the target: %v", p, err)
			}
		}
		if _, err := Open(root, filepath.Join(root, "sub")); !errors.Is(err, ErrNotRegular) {
			t.Errorf("Open(a folder) = %v, want ErrNotRegular", err)
		}
		if _, err := Open(root, filepath.Join(root, "missing")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Open(missing) = %v, want not-exist", err)
		}
		if _, err := ReadFile(root, filepath.Join(root, "nb.txt"), 3); err == nil {
			t.Error("ReadFile over its bound succeeded")
		}
		if d, err := OpenDir(root, root); err != nil {
			t.Errorf("OpenDir(root) = %v", err)
		} else {
			d.Close()
		}
	})
}

func TestMkdirAllCreatesNothingOutside(t *testing.T) {
	both(t, func(t *testing.T, portable bool) {
		root, outside := tree(t)
		d, err := MkdirAll(root, filepath.Join(root, "a", "b"), 0o755)
		if err != nil {
			t.Fatalf("MkdirAll(a/b) = %v", err)
		}
		d.Close()
		if st, err := os.Stat(filepath.Join(root, "a", "b")); err != nil || !st.IsDir() {
			t.Errorf("a/b not created: %v", err)
		}
		if _, err := MkdirAll(root, filepath.Join(root, "dirlink", "new"), 0o755); !errors.Is(err, ErrEscapes) {
			t.Errorf("MkdirAll through a symlink out = %v, want ErrEscapes", err)
		}
		if _, err := os.Stat(filepath.Join(outside, "new")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("a folder was created outside the root: %v", err)
		}
	})
}

func TestRel(t *testing.T) {
	for _, c := range []struct {
		root, p, want string
		ok            bool
	}{
		{"/a", "/a", ".", true}, {"/a", "/a/b/c", "b/c", true}, {"/a", "/ab", "", false},
		{"/a", "/b", "", false}, {"/", "/x", "x", true},
	} {
		if got, ok := Rel(c.root, c.p); got != c.want || ok != c.ok {
			t.Errorf("Rel(%q, %q) = %q, %v; want %q, %v", c.root, c.p, got, ok, c.want, c.ok)
		}
	}
}
