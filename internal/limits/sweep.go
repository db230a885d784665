package limits

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Remove kills the processes of the run named name and removes its
// cgroups: for an attempt whose worker died before it could (a lost
// attempt), found again on the same host.
func (s Support) Remove(name string) error {
	var dirs []string
	for _, parent := range s.Parents() {
		if d := filepath.Join(parent, RunCgroupPrefix(name)); exists(d) {
			dirs = append(dirs, d)
		}
	}
	return removeCgroups(dirs, removeWait)
}

// Sweep removes the empty run cgroups older than age: those of a worker
// killed before it could remove them. A cgroup with processes in it is
// left alone: it may belong to a live worker sharing this cgroup. It
// returns how many it removed.
func (s Support) Sweep(age time.Duration) int {
	n := 0
	for _, parent := range s.Parents() {
		entries, _ := os.ReadDir(parent)
		for _, e := range entries {
			if !e.IsDir() || !strings.HasPrefix(e.Name(), runPrefix) {
				continue
			}
			info, err := e.Info()
			if err != nil || time.Since(info.ModTime()) < age {
				continue
			}
			if rmdir(filepath.Join(parent, e.Name())) == nil {
				n++
			}
		}
	}
	return n
}

// removeCgroups kills every process in dirs, then removes them, retrying
// while the kernel finishes the exits. The worker's own process is never
// signalled (on v1 one of its threads could be listed, see BeforeFork).
func removeCgroups(dirs []string, wait time.Duration) error {
	if len(dirs) == 0 {
		return nil
	}
	self := os.Getpid()
	deadline := time.Now().Add(wait)
	for _, d := range dirs {
		if exists(filepath.Join(d, "cgroup.kill")) {
			_ = writeFile(filepath.Join(d, "cgroup.kill"), "1")
		}
	}
	for pause := 5 * time.Millisecond; ; pause = min(2*pause, 100*time.Millisecond) {
		left := 0
		for _, d := range dirs {
			for _, f := range readWords(filepath.Join(d, "cgroup.procs")) {
				pid, err := strconv.Atoi(f)
				if err != nil || pid == self {
					continue
				}
				left++
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		var first error
		if left == 0 {
			for _, d := range dirs {
				if err := rmdir(d); err != nil && !errors.Is(err, os.ErrNotExist) && first == nil {
					first = err
				}
			}
			if first == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			if first == nil {
				first = fmt.Errorf("%d process(es) still in it", left)
			}
			return fmt.Errorf("remove the run's cgroups %s: %w", strings.Join(dirs, ", "), first)
		}
		time.Sleep(pause)
	}
}
