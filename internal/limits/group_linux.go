//go:build linux

package limits

import (
	"fmt"
	"path/filepath"
	"strconv"
	"syscall"
)

// create makes the run's cgroups and sets their limits: a cgroup v2 leaf
// when limits use v2 or runs are tracked in v2 (cgroup2_linux.go), cgroup
// v1 directories otherwise (cgroup1_linux.go).
func (g *Group) create(s Support, name string) error {
	v2 := s.track // a cgroup without limits, for cgroup.kill
	if g.memMech == Cgroup2 || g.cpuMech == Cgroup2 {
		v2 = s.v2
	}
	if v2 != "" {
		if err := g.createV2(v2, name); err != nil {
			return err
		}
	}
	return g.createV1(s, name)
}

// BeforeFork makes the next process this thread forks be born inside the
// run's cgroups, so that no instruction of the executor runs outside its
// limits: with cgroup v2 through CLONE_INTO_CGROUP (attr's CgroupFD); with
// cgroup v1, which has no such flag, by moving the forking thread itself
// into the run's cgroups (v1 places threads one by one, and a child starts
// in the cgroups of the thread that forked it). The returned function
// moves the thread back; call it on the same thread right after the fork.
// The caller must run this on a locked OS thread and let that thread end
// with its goroutine: a thread that failed to move back then never runs
// other code, and leaves the run's cgroup when the run is over.
func (g *Group) BeforeFork(attr *syscall.SysProcAttr) (func(), error) {
	if g == nil {
		return func() {}, nil
	}
	if g.fd >= 0 {
		attr.UseCgroupFD, attr.CgroupFD = true, g.fd
	}
	tid := strconv.Itoa(syscall.Gettid())
	back := func() {
		for i := range g.v1 {
			_ = writeFile(filepath.Join(g.v1Parents[i], "tasks"), tid)
		}
	}
	for _, d := range g.v1 {
		if err := writeFile(filepath.Join(d, "tasks"), tid); err != nil {
			back()
			return nil, fmt.Errorf("move the forking thread into cgroup %s: %w", d, err)
		}
	}
	return back, nil
}
