package executor

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// Marked lists the pids of processes whose environment carries MarkerEnv set
// to marker. It reads /proc, so it sees only this machine and processes this
// user may inspect: enough for the kernels a worker started.
func Marked(marker string) []int {
	if marker == "" {
		return nil
	}
	want := []byte(MarkerEnv + "=" + marker + "\x00")
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	self := os.Getpid()
	var pids []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile(filepath.Join(d, "environ"))
		if err != nil {
			continue
		}
		if bytes.HasPrefix(env, want) || bytes.Contains(env, append([]byte{0}, want...)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// KillMarked sends SIGKILL to every process carrying the marker, and to its
// process group (a kernel leads a session of its own and may have children).
func KillMarked(marker string) int {
	pids := Marked(marker)
	for _, pid := range pids {
		if pgid, err := syscall.Getpgid(pid); err == nil && pgid == pid {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	return len(pids)
}
