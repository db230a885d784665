package main

import "golang.org/x/sys/unix"

// ephemeralLow is the first port of the kernel's ephemeral range, the
// sysctl net.inet.ip.portrange.first (macOS's default 49152 when it cannot
// be read).
func ephemeralLow() int {
	lo, err := unix.SysctlUint32("net.inet.ip.portrange.first")
	if err != nil || lo == 0 {
		return 49152
	}
	return int(lo)
}
