//go:build linux

package activities

import (
	"fmt"
	"os"
	"path/filepath"
)

// On Linux the executor reaches the admitted folders through their
// descriptors, never through their paths again: the output folder is the
// child's descriptor 3 and the output path /proc/self/fd/3/<name>, so
// every save of the output notebook (the bundled runner and papermill
// alike, for the whole run) lands in the folder that was checked even if
// its path is swapped for a symlink meanwhile; and the child changes into
// its working directory through the worker's descriptor of it.

func (ad *admitted) files() []*os.File { return []*os.File{ad.outDir} }

func (ad *admitted) outputArg(output string) string {
	return fmt.Sprintf("/proc/self/fd/3/%s", filepath.Base(output))
}

// dirArg is resolved by the child between fork and exec, while it still
// has the worker's descriptors.
func (ad *admitted) dirArg(string) string {
	return fmt.Sprintf("/proc/self/fd/%d", ad.cwd.Fd())
}
