// Package beneath opens files beneath a root directory, resolving the path
// at the moment of the open. A path checked once (paths.Roots) can be
// swapped for a symlink before it is used; every open here walks the path
// again from the root's own descriptor and refuses any step that would
// leave the root, so a file served or executed is one beneath the root at
// the time it was opened.
//
// On Linux 5.6+ this is openat2(RESOLVE_BENEATH|RESOLVE_NO_MAGICLINKS):
// symlinks that stay beneath the root are followed, absolute symlinks and
// ".." out of the root are refused by the kernel. Elsewhere (or where a
// seccomp filter hides openat2) the path is opened one component at a time
// with O_NOFOLLOW, which refuses every symlink: stricter, never looser.
package beneath

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// ErrEscapes means the path leaves its root once resolved: a symlink out of
// it, an absolute symlink, a magic link, or (on the portable path) any
// symlink. The error never names where the symlink points.
var ErrEscapes = errors.New("leaves its root (a symlink pointing elsewhere)")

// noOpenat2 is set once openat2 turned out to be missing (ENOSYS: a kernel
// before 5.6, or a seccomp filter that refuses it), and by tests of the
// portable walk.
var noOpenat2 atomic.Bool

// ErrNotRegular means a file that should be read is a directory, a device,
// a fifo or a socket.
var ErrNotRegular = errors.New("is not a regular file")

// Rel returns p relative to root when p lies lexically beneath root (or is
// root, as "."). Both must be absolute and clean.
func Rel(root, p string) (string, bool) {
	if p == root {
		return ".", true
	}
	prefix := root
	if !strings.HasSuffix(prefix, string(os.PathSeparator)) {
		prefix += string(os.PathSeparator)
	}
	if !strings.HasPrefix(p, prefix) {
		return "", false
	}
	return p[len(prefix):], true
}

// Open opens the regular file p, which must lie beneath root, for reading.
func Open(root, p string) (*os.File, error) {
	f, err := open(root, p, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: p, Err: ErrNotRegular}
	}
	return f, nil
}

// OpenDir opens the directory p, which must lie beneath root (or be root).
func OpenDir(root, p string) (*os.File, error) {
	return open(root, p, unix.O_RDONLY|unix.O_DIRECTORY)
}

// ReadFile reads the regular file p beneath root, refusing one bigger than
// max bytes (max <= 0: no bound).
func ReadFile(root, p string, max int64) ([]byte, error) {
	f, err := Open(root, p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if max <= 0 {
		return io.ReadAll(f)
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err == nil && int64(len(b)) > max {
		return nil, &fs.PathError{Op: "read", Path: p, Err: fmt.Errorf("bigger than %d bytes", max)}
	}
	return b, err
}

// MkdirAll creates the directory p beneath root with its missing parents,
// each created relative to its parent's descriptor, and returns it open.
// An existing component that leaves the root stops it: nothing is created
// outside.
func MkdirAll(root, p string, perm os.FileMode) (*os.File, error) {
	rel, err := relOf(root, p)
	if err != nil {
		return nil, err
	}
	dir, err := os.Open(root)
	if err != nil {
		return nil, err
	}
	if rel == "." {
		return dir, nil
	}
	for _, name := range strings.Split(rel, string(os.PathSeparator)) {
		next, err := openAt(dir, name, unix.O_RDONLY|unix.O_DIRECTORY)
		if errors.Is(err, unix.ENOENT) {
			if merr := unix.Mkdirat(int(dir.Fd()), name, uint32(perm.Perm())); merr != nil && !errors.Is(merr, unix.EEXIST) {
				dir.Close()
				return nil, &fs.PathError{Op: "mkdir", Path: p, Err: merr}
			}
			next, err = openAt(dir, name, unix.O_RDONLY|unix.O_DIRECTORY)
		}
		dir.Close()
		if err != nil {
			return nil, pathError(p, err)
		}
		dir = next
	}
	return dir, nil
}

// open opens p beneath root with flags.
func open(root, p string, flags int) (*os.File, error) {
	rel, err := relOf(root, p)
	if err != nil {
		return nil, err
	}
	dir, err := os.Open(root)
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	if rel == "." {
		return openAt(dir, ".", flags)
	}
	f, err := openAt(dir, rel, flags)
	if err != nil {
		return nil, pathError(p, err)
	}
	return f, nil
}

func relOf(root, p string) (string, error) {
	if !filepath.IsAbs(root) || !filepath.IsAbs(p) {
		return "", fmt.Errorf("%s: root and path must be absolute", p)
	}
	rel, ok := Rel(filepath.Clean(root), filepath.Clean(p))
	if !ok {
		return "", &fs.PathError{Op: "open", Path: p, Err: ErrEscapes}
	}
	return rel, nil
}

// pathError names the caller's path, never a symlink's target, and maps
// the kernel's refusals to ErrEscapes.
func pathError(p string, err error) error {
	if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ELOOP) {
		err = ErrEscapes
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return &fs.PathError{Op: "open", Path: p, Err: err}
}

// openNoFollow is the portable walk: every component opened relative to its
// parent with O_NOFOLLOW, so no symlink is followed at all.
func openNoFollow(dir *os.File, rel string, flags int) (*os.File, error) {
	if rel == "." {
		fd, err := unix.Openat(int(dir.Fd()), ".", flags|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		return os.NewFile(uintptr(fd), dir.Name()), nil
	}
	parts := strings.Split(rel, string(os.PathSeparator))
	cur := int(dir.Fd())
	for i, name := range parts {
		if name == ".." || name == "" {
			closeIfNot(cur, dir)
			return nil, ErrEscapes
		}
		f := unix.O_RDONLY | unix.O_DIRECTORY
		if i == len(parts)-1 {
			f = flags
		}
		fd, err := unix.Openat(cur, name, f|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			var st unix.Stat_t
			if (errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP)) &&
				unix.Fstatat(cur, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
				err = ErrEscapes
			}
			closeIfNot(cur, dir)
			return nil, err
		}
		closeIfNot(cur, dir)
		cur = fd
	}
	return os.NewFile(uintptr(cur), filepath.Join(dir.Name(), rel)), nil
}

func closeIfNot(fd int, dir *os.File) {
	if fd != int(dir.Fd()) {
		unix.Close(fd)
	}
}
