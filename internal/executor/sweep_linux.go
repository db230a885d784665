package executor

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
)

// markedNative reads each process's /proc/<pid>/environ, where entries are
// NUL-separated, so the match is exact.
func markedNative(marker string) []int {
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
