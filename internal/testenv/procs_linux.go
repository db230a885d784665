package testenv

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// pids lists the live processes (zombies left out).
func pids() []int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var out []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err == nil && Alive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// cmdArgs is a process's command line.
func cmdArgs(pid int) ([]string, bool) { return nulList(fmt.Sprintf("/proc/%d/cmdline", pid)) }

// environ is a process's environment, as it was at exec.
func environ(pid int) ([]string, bool) { return nulList(fmt.Sprintf("/proc/%d/environ", pid)) }

func nulList(path string) ([]string, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00"), true
}

// MemoryMB reads a memory field of /proc/<pid>/status in megabytes:
// "VmRSS" (resident now) or "VmHWM" (the peak resident size, kept by the
// kernel, so no sampling can miss it). It returns 0 when it cannot read it.
func MemoryMB(pid int, field string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return float64(kb) / 1024
		}
	}
	return 0
}

// CPUSeconds is the processor time pid has used so far (user and system,
// from /proc/<pid>/stat); 0 when it cannot be read.
func CPUSeconds(pid int) float64 { return statSeconds(pid, 2) }

// CPUSecondsWithChildren is CPUSeconds with the time of the children pid
// has reaped (a worker's runners and kernels, once they ended).
func CPUSecondsWithChildren(pid int) float64 { return statSeconds(pid, 4) }

// statSeconds sums the first n of utime, stime, cutime and cstime, the
// 14th to 17th fields of /proc/<pid>/stat, in seconds.
func statSeconds(pid, n int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name: state is the 3rd field
	// of the stat line, utime the 14th.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 11+n {
		return 0
	}
	var ticks float64
	for _, v := range f[11 : 11+n] {
		t, _ := strconv.ParseFloat(v, 64)
		ticks += t
	}
	return ticks / clockTicks
}

// clockTicks is the kernel's USER_HZ, the unit of /proc's times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100
