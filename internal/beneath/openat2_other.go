//go:build !linux

package beneath

import "os"

// openAt opens rel beneath dir one component at a time with O_NOFOLLOW:
// without openat2 no symlink is followed.
func openAt(dir *os.File, rel string, flags int) (*os.File, error) {
	return openNoFollow(dir, rel, flags)
}
