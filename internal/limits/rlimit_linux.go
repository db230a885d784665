//go:build linux

package limits

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"syscall"
	"unsafe"
)

// Started applies the rlimit of a run whose memory is limited by rlimits,
// to the executor (pid) and to any process it has already started. The
// executor is the Python runner or papermill: it needs hundreds of
// milliseconds of imports before it can start a kernel, which then
// inherits the limit; the walk over its children covers a start that
// beat this call.
func (g *Group) Started(pid int) error {
	if g == nil || g.memMech != Rlimit {
		return nil
	}
	lim := syscall.Rlimit{Cur: uint64(g.spec.Memory), Max: uint64(g.spec.Memory)}
	seen := map[int]bool{}
	var walk func(p int) error
	walk = func(p int) error {
		if seen[p] {
			return nil
		}
		seen[p] = true
		if err := prlimit(p, syscall.RLIMIT_DATA, &lim); err != nil {
			if p != pid && errors.Is(err, syscall.ESRCH) {
				return nil // a child that already exited
			}
			return fmt.Errorf("set RLIMIT_DATA on process %d: %w", p, err)
		}
		for _, c := range children(p) {
			if err := walk(c); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(pid)
}

func prlimit(pid, resource int, lim *syscall.Rlimit) error {
	_, _, e := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, uintptr(pid), uintptr(resource), uintptr(unsafe.Pointer(lim)), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// children lists pid's child processes (of all its threads).
func children(pid int) []int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, t := range tasks {
		for _, f := range readWords(t) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}
