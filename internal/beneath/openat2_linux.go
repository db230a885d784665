//go:build linux

package beneath

import (
	"errors"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// openAt opens rel beneath dir with openat2, which follows symlinks only
// while they stay beneath dir; without openat2, the O_NOFOLLOW walk.
func openAt(dir *os.File, rel string, flags int) (*os.File, error) {
	if !noOpenat2.Load() {
		how := unix.OpenHow{
			Flags:   uint64(flags | unix.O_CLOEXEC),
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
		}
		for {
			fd, err := unix.Openat2(int(dir.Fd()), rel, &how)
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
				continue
			}
			if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) && fd < 0 && probeMissing() {
				noOpenat2.Store(true)
				break
			}
			if err != nil {
				return nil, err
			}
			return os.NewFile(uintptr(fd), filepath.Join(dir.Name(), rel)), nil
		}
	}
	return openNoFollow(dir, rel, flags)
}

// probeMissing tells a seccomp filter's EPERM for openat2 itself from a
// file's own EPERM: an O_PATH openat2 of the working directory needs no
// permission on it.
func probeMissing() bool {
	how := unix.OpenHow{Flags: unix.O_DIRECTORY | unix.O_CLOEXEC | unix.O_PATH, Resolve: unix.RESOLVE_BENEATH}
	fd, err := unix.Openat2(unix.AT_FDCWD, ".", &how)
	if err == nil {
		unix.Close(fd)
		return false
	}
	return errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOSYS)
}
