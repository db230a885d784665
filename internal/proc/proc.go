// Package proc answers whether a process is alive, which the dev service's
// state and the tests need on every platform: a signal 0 says a process
// exists, but a zombie (killed, not yet reaped by its parent) exists too,
// and only the process table says which it is (/proc on Linux, sysctl on
// macOS).
package proc

import (
	"errors"
	"syscall"
)

// Alive reports whether pid is a live process: not gone, and not a zombie.
// A process of another user (EPERM) exists.
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	return !zombie(pid)
}
