package limits

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

// Spec is one run's limits; a zero field is no limit.
type Spec struct {
	Memory int64   // bytes, for the runner and its kernel together
	CPU    float64 // cores: CPU time per second of wall time
}

// ErrUnsupported is returned for a limit this worker cannot enforce.
var ErrUnsupported = errors.New("cannot be enforced on this worker")

// CPUPeriod is the scheduling period a CPU quota is measured against
// (cgroup v1 cpu.cfs_period_us, v2 cpu.max), in microseconds: the kernel's
// default.
const CPUPeriod = 100_000

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
			return nil, fmt.Errorf("cpu_limit %s: %w: it needs a cgroup the worker may create (cgroup v2 with the cpu controller delegated to the worker, or a writable cgroup v1 cpu hierarchy), and here %s", FormatCPU(spec.CPU), ErrUnsupported, why)
		}
		g.cpuMech = s.CPU
	}
	if spec.Memory > 0 {
		g.memMech = s.Memory
		if g.memMech == "" {
			g.memMech = Rlimit
		}
	}
	if err := g.create(s, RunCgroupPrefix(name)); err != nil {
		_ = g.Close()
		return nil, err
	}
	return g, nil
}

func (g *Group) create(s Support, name string) error {
	v2 := s.track // a cgroup without limits, for cgroup.kill
	if g.memMech == Cgroup2 || g.cpuMech == Cgroup2 {
		v2 = s.v2
	}
	if v2 != "" {
		g.v2 = filepath.Join(v2, name)
		if err := mkdir(g.v2, 0o755); err != nil {
			g.v2 = ""
			return fmt.Errorf("create cgroup: %w", err)
		}
	}
	if g.memMech == Cgroup1 {
		if err := g.addV1(s.memDir, name); err != nil {
			return err
		}
	}
	if g.cpuMech == Cgroup1 {
		if err := g.addV1(s.cpuDir, name); err != nil {
			return err
		}
	}
	if parent := cmp.Or(s.memDir, s.cpuDir); g.v2 == "" && len(g.v1) == 0 && parent != "" {
		// No v2 and no v1 limit: a v1 cgroup without limits holds the run.
		if err := g.addV1(parent, name); err != nil {
			return err
		}
	}
	switch g.memMech {
	case Cgroup2:
		g.memDir = g.v2
		if err := writeFile(filepath.Join(g.v2, "memory.max"), strconv.FormatInt(g.spec.Memory, 10)); err != nil {
			return fmt.Errorf("set memory.max: %w", err)
		}
		// Swap would let a run exceed its limit slowly instead of failing.
		if exists(filepath.Join(g.v2, "memory.swap.max")) {
			if err := writeFile(filepath.Join(g.v2, "memory.swap.max"), "0"); err != nil {
				return fmt.Errorf("set memory.swap.max: %w", err)
			}
			g.noSwap = true
		}
	case Cgroup1:
		g.memDir = g.v1[0]
		if err := writeFile(filepath.Join(g.memDir, "memory.limit_in_bytes"), strconv.FormatInt(g.spec.Memory, 10)); err != nil {
			return fmt.Errorf("set memory.limit_in_bytes: %w", err)
		}
		// memsw (memory+swap) exists when swap is accounted; it must not be
		// below limit_in_bytes, which was written first.
		if exists(filepath.Join(g.memDir, "memory.memsw.limit_in_bytes")) {
			if err := writeFile(filepath.Join(g.memDir, "memory.memsw.limit_in_bytes"), strconv.FormatInt(g.spec.Memory, 10)); err != nil {
				return fmt.Errorf("set memory.memsw.limit_in_bytes: %w", err)
			}
			g.noSwap = true
		}
	}
	quota := strconv.FormatInt(cpuQuota(g.spec.CPU), 10)
	switch g.cpuMech {
	case Cgroup2:
		if err := writeFile(filepath.Join(g.v2, "cpu.max"), quota+" "+strconv.Itoa(CPUPeriod)); err != nil {
			return fmt.Errorf("set cpu.max: %w", err)
		}
	case Cgroup1:
		d := g.v1[len(g.v1)-1]
		if err := writeFile(filepath.Join(d, "cpu.cfs_period_us"), strconv.Itoa(CPUPeriod)); err != nil {
			return fmt.Errorf("set cpu.cfs_period_us: %w", err)
		}
		if err := writeFile(filepath.Join(d, "cpu.cfs_quota_us"), quota); err != nil {
			return fmt.Errorf("set cpu.cfs_quota_us: %w", err)
		}
	}
	if g.v2 != "" {
		fd, err := syscall.Open(g.v2, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open cgroup %s: %w", g.v2, err)
		}
		g.fd = fd
	}
	return nil
}

func (g *Group) addV1(parent, name string) error {
	d := filepath.Join(parent, name)
	if err := mkdir(d, 0o755); err != nil {
		return fmt.Errorf("create cgroup: %w", err)
	}
	g.v1 = append(g.v1, d)
	g.v1Parents = append(g.v1Parents, parent)
	return nil
}

// cpuQuota is the quota per CPUPeriod for cores, at least the 1 ms the
// kernel accepts.
func cpuQuota(cores float64) int64 {
	return max(1000, int64(math.Round(cores*CPUPeriod)))
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

// cgroupName makes a run's name safe as a directory name.
func cgroupName(name string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, name)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
