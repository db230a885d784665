package testenv

import (
	"bytes"
	"encoding/binary"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// macOS has no /proc: the process list and a process's arguments and
// environment come from sysctl (kern.proc.all, kern.procargs2; another
// user's environment only for root), its memory and processor time from ps.

// szomb is a zombie's p_stat (sys/proc.h).
const szomb = 5

// pids lists the live processes (zombies left out).
func pids() []int {
	procs, err := unix.SysctlKinfoProcSlice("kern.proc.all")
	if err != nil {
		return nil
	}
	var out []int
	for _, p := range procs {
		if p.Proc.P_pid > 0 && p.Proc.P_stat != szomb {
			out = append(out, int(p.Proc.P_pid))
		}
	}
	return out
}

// procArgs splits kern.procargs2: argc (int32), the executable path, NUL
// padding, then argc arguments and the environment, each NUL-terminated.
func procArgs(pid int) (args, env []string, ok bool) {
	b, err := unix.SysctlRaw("kern.procargs2", pid)
	if err != nil || len(b) < 4 {
		return nil, nil, false
	}
	argc := int(binary.LittleEndian.Uint32(b))
	b = b[4:]
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return nil, nil, false
	}
	b = bytes.TrimLeft(b[i:], "\x00")
	for _, s := range strings.Split(string(b), "\x00") {
		switch {
		case len(args) < argc:
			args = append(args, s)
		case s == "":
			return args, env, true
		default:
			env = append(env, s)
		}
	}
	return args, env, true
}

// cmdArgs is a process's command line.
func cmdArgs(pid int) ([]string, bool) {
	args, _, ok := procArgs(pid)
	return args, ok
}

// environ is a process's environment, as it was at exec.
func environ(pid int) ([]string, bool) {
	_, env, ok := procArgs(pid)
	return env, ok
}

// MemoryMB is pid's resident size in megabytes for "VmRSS". macOS keeps
// no peak for a live process, so "VmHWM" (and anything it cannot read)
// is 0.
func MemoryMB(pid int, field string) float64 {
	if field != "VmRSS" {
		return 0
	}
	kb, _ := strconv.ParseFloat(psField(pid, "rss"), 64)
	return kb / 1024
}

// CPUSeconds is the processor time pid has used so far (user and system,
// from ps's [[dd-]hh:]mm:ss.cc); 0 when it cannot be read.
func CPUSeconds(pid int) float64 { return psSeconds(pid) }

// CPUSecondsWithChildren is CPUSeconds with the time of the children pid
// has reaped (ps -S sums exited children into their parent).
func CPUSecondsWithChildren(pid int) float64 { return psSeconds(pid, "-S") }

// psSeconds reads ps's time field of pid, with extra ps flags.
func psSeconds(pid int, flags ...string) float64 {
	v := psField(pid, "time", flags...)
	if days, rest, ok := strings.Cut(v, "-"); ok {
		d, _ := strconv.ParseFloat(days, 64)
		return d*86400 + clockSeconds(rest)
	}
	return clockSeconds(v)
}

// clockSeconds parses ps's hh:mm:ss.cc or mm:ss.cc.
func clockSeconds(v string) float64 {
	var s float64
	for _, f := range strings.Split(v, ":") {
		n, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return 0
		}
		s = s*60 + n
	}
	return s
}

func psField(pid int, field string, flags ...string) string {
	args := append(slices.Clone(flags), "-o", field+"=", "-p", strconv.Itoa(pid))
	out, err := exec.Command("/bin/ps", args...).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
