package benchreport

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// readHost reads the processor, memory and macOS version from sysctl.
func readHost(m *Machine) {
	m.OS = "macOS"
	if v, err := unix.Sysctl("machdep.cpu.brand_string"); err == nil && v != "" {
		m.CPU = v
	}
	if b, err := unix.SysctlUint64("hw.memsize"); err == nil {
		m.MemoryGiB = float64(b) / (1 << 30)
	}
	if v, err := unix.Sysctl("kern.osproductversion"); err == nil && v != "" {
		m.Kernel = v
	} else if v, err := unix.Sysctl("kern.osrelease"); err == nil {
		m.Kernel = "(Darwin " + v + ")"
	}
}

// loadAverage reads vm.loadavg: struct loadavg { fixpt_t ldavg[3]; long
// fscale; }, three uint32 then (after padding) an int64, on arm64 and amd64.
func loadAverage() ([3]float64, bool) {
	var avg [3]float64
	b, err := unix.SysctlRaw("vm.loadavg")
	if err != nil || len(b) < 24 {
		return avg, false
	}
	scale := float64(binary.LittleEndian.Uint64(b[16:24]))
	if scale == 0 {
		return avg, false
	}
	for i := range avg {
		avg[i] = float64(binary.LittleEndian.Uint32(b[4*i:])) / scale
	}
	return avg, true
}
