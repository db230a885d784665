//go:build !linux

package executor

import "syscall"

// setDeathSignal does nothing: only Linux has Pdeathsig, so elsewhere a
// watchdog always takes the child down with this process.
func setDeathSignal(*syscall.SysProcAttr, syscall.Signal) bool { return false }
