package executor

import (
	"syscall"

	"millrace/internal/portable"
)

// setDeathSignal asks the Linux kernel to send sig to the child when the
// thread that forks it exits (Pdeathsig), unless the portable supervisor
// was chosen; it reports whether it did, else a watchdog must.
func setDeathSignal(attr *syscall.SysProcAttr, sig syscall.Signal) bool {
	if portable.Enabled() {
		return false
	}
	attr.Pdeathsig = sig
	return true
}
