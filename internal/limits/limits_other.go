//go:build !linux

package limits

import (
	"runtime"
	"syscall"
)

// Detect reports what this host can enforce: nothing. There are no
// cgroups, so a cpu_limit is refused; and macOS accepts RLIMIT_AS,
// RLIMIT_DATA and RLIMIT_RSS but does not enforce them (an allocation past
// them succeeds), so a memory_limit is refused too rather than silently
// ignored. Runs get no cgroup of their own: their stop relies on the
// process group, the marker sweep and the supervisor's watchdog.
func Detect() Support { return unenforced(runtime.GOOS) }

// create has nothing to create: without cgroups a Group only carries the
// spec, and NewGroup refused every limit this host cannot enforce.
func (g *Group) create(Support, string) error { return nil }

// BeforeFork does nothing: there is no cgroup to be born in.
func (g *Group) BeforeFork(*syscall.SysProcAttr) (func(), error) { return func() {}, nil }

// Started does nothing: no limit here is applied after the fork.
func (g *Group) Started(int) error { return nil }
