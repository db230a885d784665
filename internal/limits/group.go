package limits

import (
	"cmp"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// removeWait bounds how long Close waits for a run's processes to die
// and its cgroups to go.
const removeWait = 10 * time.Second

// Group is one run's limits, set up before its executor starts. With
// cgroups it is a cgroup per hierarchy that the executor is born in
// (so its kernel is too); with rlimits it sets RLIMIT_DATA on the
// executor as it starts. A nil *Group is no limit. It implements
// executor.Confiner.
type Group struct {
	spec      Spec
	memMech   string // Memory's mechanism, "" when no memory limit
	cpuMech   string
	v2        string   // the run's cgroup v2 directory, "" for none
	fd        int      // open v2 directory for CLONE_INTO_CGROUP, -1 for none
	v1        []string // the run's cgroup v1 directories
	v1Parents []string // where the forking thread goes back to, by v1 index
	memDir    string   // the directory whose memory files count this run
	noSwap    bool     // swap is capped too (memory.swap.max, memory.memsw)
}

// NewGroup sets up the cgroups and limits of the run named name (its job
// id and attempt). Every run gets a cgroup of its own where the worker may
// create one (Isolates), limits or not, so that Close kills every process
// it started. It returns nil for a spec with no limits on a worker that
// cannot isolate runs, and an error wrapping ErrUnsupported for a limit
// this worker cannot enforce. The caller has checked spec (CheckMemory,
// CheckCPU).
func (s Support) NewGroup(name string, spec Spec) (*Group, error) {
	if spec.Memory == 0 && spec.CPU == 0 && !s.Isolates() {
		return nil, nil
	}
	g := &Group{spec: spec, fd: -1}
	if spec.CPU > 0 {
		if s.CPU == "" {
			why := s.Why
			if why == "" {
				why = "limits were not detected"
			}
			return nil, fmt.Errorf("cpu_limit %s: %w: it needs a cgroup the worker may create (cgroup v2 with the cpu controller delegated to the worker, or a writable cgroup v1 cpu hierarchy), and here %s; run it without cpu_limit, or on a Linux worker that has such a cgroup", FormatCPU(spec.CPU), ErrUnsupported, why)
		}
		g.cpuMech = s.CPU
	}
	if spec.Memory > 0 {
		if s.Memory == "" {
			return nil, fmt.Errorf("memory_limit %s: %w: %s; run it without memory_limit, or on a Linux worker", FormatSize(spec.Memory), ErrUnsupported, cmp.Or(s.Why, "no mechanism to enforce it was detected"))
		}
		g.memMech = s.Memory
	}
	if err := g.create(s, RunCgroupPrefix(name)); err != nil {
		_ = g.Close()
		return nil, err
	}
	return g, nil
}

// cpuQuota is the quota per CPUPeriod for cores, at least the 1 ms the
// kernel accepts.
func cpuQuota(cores float64) int64 {
	return max(1000, int64(math.Round(cores*CPUPeriod)))
}

// Dirs lists the run's cgroup directories (none under rlimits).
func (g *Group) Dirs() []string {
	if g == nil {
		return nil
	}
	var dirs []string
	if g.v2 != "" {
		dirs = append(dirs, g.v2)
	}
	return append(dirs, g.v1...)
}

// MemoryMechanism is what enforces the memory limit ("" for none).
func (g *Group) MemoryMechanism() string {
	if g == nil {
		return ""
	}
	return g.memMech
}

// Spec returns the group's limits.
func (g *Group) Spec() Spec {
	if g == nil {
		return Spec{}
	}
	return g.spec
}

// OOMKills counts the processes of the run the kernel killed for reaching
// its memory cgroup's limit (memory.events on v2, memory.oom_control on v1).
// Read it after the executor exited and before Close.
func (g *Group) OOMKills() int64 {
	if g == nil {
		return 0
	}
	switch g.memMech {
	case Cgroup2:
		return keyed(filepath.Join(g.memDir, "memory.events"), "oom_kill")
	case Cgroup1:
		return keyed(filepath.Join(g.memDir, "memory.oom_control"), "oom_kill")
	}
	return 0
}

// Peak is the most memory the run's cgroup held, -1 when unknown
// (rlimits, or a v2 kernel before 5.19 without memory.peak).
func (g *Group) Peak() int64 {
	if g == nil {
		return -1
	}
	var f string
	switch g.memMech {
	case Cgroup2:
		f = "memory.peak"
	case Cgroup1:
		f = "memory.max_usage_in_bytes"
	default:
		return -1
	}
	b, err := os.ReadFile(filepath.Join(g.memDir, f))
	if err != nil {
		return -1
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// keyed reads "key value" lines and returns key's value, 0 when absent.
func keyed(path, key string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+" "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// Notes say what enforces each limit, for the run's warnings.
func (g *Group) Notes() []string {
	if g == nil {
		return nil
	}
	var out []string
	mem := "memory_limit " + FormatSize(g.spec.Memory)
	swap := ""
	if g.noSwap {
		swap = ", swap included"
	}
	switch g.memMech {
	case Cgroup2:
		out = append(out, mem+" is enforced by a cgroup v2 (memory.max"+swap+") on the runner and its kernel together")
	case Cgroup1:
		out = append(out, mem+" is enforced by a cgroup v1 (memory.limit_in_bytes"+swap+") on the runner and its kernel together")
	case Rlimit:
		out = append(out, mem+" is enforced per process by RLIMIT_DATA, because this worker may not create memory cgroups: the runner and its kernel may each use up to it, an allocation past it raises MemoryError, and a kernel needs about 150 MiB of it to start")
	}
	cpu := "cpu_limit " + FormatCPU(g.spec.CPU)
	switch g.cpuMech {
	case Cgroup2:
		out = append(out, cpu+" is enforced by a cgroup v2 (cpu.max "+strconv.FormatInt(cpuQuota(g.spec.CPU), 10)+" "+strconv.Itoa(CPUPeriod)+")")
	case Cgroup1:
		out = append(out, cpu+" is enforced by a cgroup v1 (cpu.cfs_quota_us "+strconv.FormatInt(cpuQuota(g.spec.CPU), 10)+" per "+strconv.Itoa(CPUPeriod)+")")
	}
	if n := runtime.NumCPU(); g.cpuMech != "" && g.spec.CPU >= float64(n) {
		out = append(out, fmt.Sprintf("cpu_limit %s is not below this worker's %d CPUs, so it limits nothing", FormatCPU(g.spec.CPU), n))
	}
	return out
}

// Close kills whatever is left in the run's cgroups, waits for them to be
// empty and removes them. Call it once the executor has been reaped (and
// its process tree stopped). It is safe on nil and to call twice.
func (g *Group) Close() error {
	if g == nil {
		return nil
	}
	if g.fd >= 0 {
		_ = syscall.Close(g.fd)
		g.fd = -1
	}
	dirs := g.Dirs()
	g.v2, g.v1, g.v1Parents = "", nil, nil
	return removeCgroups(dirs, removeWait)
}
