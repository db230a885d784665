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
	"syscall"

	"millrace/internal/beneath"
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
// symlinks resolved, which must exist and lie inside a root. A path outside
// the roots gets the same answer whether or not it exists, and the answer
// never says where a symlink points: neither tells a caller anything about
// files outside the roots.
func (r *Roots) Existing(p string) (string, error) {
	real, err := r.Writable(p)
	if err != nil {
		return "", err
	}
	if _, err := os.Lstat(real); errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%s does not exist", p)
	} else if err != nil {
		return "", fmt.Errorf("%s: %w", p, errors.Unwrap(err))
	}
	return real, nil
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
	for links := 0; ; {
		real, err := filepath.EvalSymlinks(dir)
		if err == nil {
			full := filepath.Join(real, rest)
			return full, r.check(p, full)
		}
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return "", fmt.Errorf("%s: %w", p, errors.Unwrap(err))
		}
		// A dangling symlink is judged by where it points, like any other:
		// otherwise one out of the roots would answer "does not exist".
		if target, lerr := os.Readlink(dir); lerr == nil {
			if links++; links > 40 {
				return "", fmt.Errorf("%s: too many levels of symbolic links", p)
			}
			if !filepath.IsAbs(target) {
				target = filepath.Join(filepath.Dir(dir), target)
			}
			dir = filepath.Clean(target)
			continue
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
	if _, ok := r.Contains(real); ok {
		return nil
	}
	return r.outside(given)
}

// outside is the one answer for every path outside the roots: it names the
// path as the caller gave it, never what it resolved to.
func (r *Roots) outside(given string) error {
	return fmt.Errorf("%s is %w (%s); start the server with --roots to allow it", given, ErrOutsideRoots, strings.Join(r.dirs, ", "))
}

// Contains reports whether the absolute, clean path p lies lexically inside
// a root, and which one (the deepest). It resolves nothing: it is for
// paths recorded already resolved (a job's paths), and for choosing the
// root to open beneath.
func (r *Roots) Contains(p string) (string, bool) {
	best := ""
	for _, d := range r.dirs {
		if _, ok := beneath.Rel(d, p); ok && len(d) > len(best) {
			best = d
		}
	}
	return best, best != ""
}

// Open opens the regular file p (absolute, as recorded at start) for
// reading, resolving it beneath its root at this moment: a symlink swapped
// in since the path was checked cannot lead out of the roots.
func (r *Roots) Open(p string) (*os.File, error) {
	root, ok := r.Contains(filepath.Clean(p))
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: p, Err: ErrOutsideRoots}
	}
	return beneath.Open(root, filepath.Clean(p))
}
