// Package paths confines caller-given paths to configured roots. A path is
// accepted only if, after resolving symlinks, it lies inside a root: `..`
// tricks and symlinks pointing out of a root are refused.
package paths

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrOutsideRoots is returned (wrapped) for a path outside every root.
var ErrOutsideRoots = errors.New("outside the allowed roots")

// Roots is a set of directories that caller paths must stay inside.
type Roots struct {
	dirs []string // absolute, symlinks resolved
}

// NewRoots resolves each directory. They must exist.
func NewRoots(dirs []string) (*Roots, error) {
	if len(dirs) == 0 {
		return nil, errors.New("no roots configured")
	}
	r := &Roots{}
	for _, d := range dirs {
		abs, err := filepath.Abs(d)
		if err != nil {
			return nil, fmt.Errorf("root %q: %w", d, err)
		}
		real, err := filepath.EvalSymlinks(abs)
		if err != nil {
			return nil, fmt.Errorf("root %q: %w", d, err)
		}
		r.dirs = append(r.dirs, real)
	}
	return r, nil
}

// Dirs returns the resolved roots.
func (r *Roots) Dirs() []string { return append([]string(nil), r.dirs...) }

// Base is the directory relative paths are taken from: the first root.
func (r *Roots) Base() string { return r.dirs[0] }

// Existing resolves p (relative paths against Base) to an absolute path with
// symlinks resolved, which must exist and lie inside a root.
func (r *Roots) Existing(p string) (string, error) {
	abs, err := r.abs(p)
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%s does not exist", p)
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", p, err)
	}
	return real, r.check(p, real)
}

// Writable resolves p like Existing, but p itself may not exist yet: its
// deepest existing ancestor is resolved and must lie inside a root. An
// existing symlink at p is resolved too, so it cannot point outside.
func (r *Roots) Writable(p string) (string, error) {
	abs, err := r.abs(p)
	if err != nil {
		return "", err
	}
	rest := ""
	dir := abs
	for {
		real, err := filepath.EvalSymlinks(dir)
		if err == nil {
			full := filepath.Join(real, rest)
			return full, r.check(p, full)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%s: %w", p, err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%s: no existing parent directory", p)
		}
		rest = filepath.Join(filepath.Base(dir), rest)
		dir = parent
	}
}

func (r *Roots) abs(p string) (string, error) {
	if strings.TrimSpace(p) == "" {
		return "", errors.New("empty path")
	}
	if strings.ContainsRune(p, 0) {
		return "", errors.New("path contains a NUL byte")
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(r.Base(), p)
	}
	return filepath.Clean(p), nil
}

func (r *Roots) check(given, real string) error {
	for _, d := range r.dirs {
		if real == d || strings.HasPrefix(real, d+string(os.PathSeparator)) {
			return nil
		}
	}
	return fmt.Errorf("%s resolves to %s, %w (%s); start the server with --roots to allow it", given, real, ErrOutsideRoots, strings.Join(r.dirs, ", "))
}
