package limits

import (
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
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

// Mechanisms that enforce a limit, as Support and run warnings name them.
const (
	Cgroup2 = "cgroup2" // a cgroup v2 leaf per run (memory.max, cpu.max)
	Cgroup1 = "cgroup1" // a cgroup per run in the v1 memory and cpu hierarchies
	Rlimit  = "rlimit"  // RLIMIT_DATA on the runner and on each process it starts
)

// WorkerCgroup is the leaf a worker moves itself into on cgroup v2, so that
// its own cgroup may hand the memory and cpu controllers down to the runs'
// cgroups (v2 allows no process in a cgroup that does). systemd's
// Delegate=yes expects exactly this of a service.
const WorkerCgroup = "millrace-worker"

// runPrefix starts the name of every run cgroup, so a worker can tell its
// own from others and sweep what a killed worker left.
const runPrefix = "millrace-run-"

// Support is how this worker enforces limits, detected once per process.
// A worker may create cgroups only when its own cgroup is writable to it:
// with cgroup v2, delegated with the memory and cpu controllers available
// (systemd Delegate=yes, a container with its own cgroup namespace); with
// cgroup v1, writable memory and cpu hierarchies (root on a v1 or hybrid
// host). Otherwise memory falls back to rlimits and CPU cannot be limited.
// The portable supervisor (package portable) uses no cgroups; on macOS,
// which enforces no memory rlimit, neither limit can be enforced.
type Support struct {
	Memory string // Cgroup2, Cgroup1, Rlimit, or "" when a memory_limit cannot be enforced (macOS)
	CPU    string // Cgroup2, Cgroup1, or "" when a cpu_limit cannot be enforced
	// Why says why a resource is not limited through cgroups; "" when both are.
	Why string

	v2     string // cgroup v2 directory that holds run cgroups
	memDir string // cgroup v1 memory directory that holds run cgroups
	cpuDir string // cgroup v1 cpu directory that holds run cgroups
	// track is the cgroup v2 directory that holds the cgroups of runs
	// without v2 limits: a cgroup with no controller still holds every
	// process the run starts, wherever it goes (a new session, a cleared
	// environment), and cgroup.kill ends them all at once. It is v2 when
	// v2 limits work, else this process's own v2 cgroup (on a hybrid host,
	// one without controllers), when it is writable.
	track string
}

// unenforced is the Support of a host with no cgroups and no memory rlimit
// it enforces (macOS), named goos; Detect returns it there, tests on Linux.
func unenforced(goos string) Support {
	return Support{Why: goos + " has no cgroups, and enforces no per-process memory limit (it accepts RLIMIT_AS, RLIMIT_DATA and RLIMIT_RSS but does not enforce them)"}
}

// Detected returns this process's Support, detected on first use. Detection
// may move the process into WorkerCgroup (cgroup v2), so it happens once.
var Detected = sync.OnceValue(Detect)

// Isolates reports whether every run gets a cgroup of its own, limits or
// not: then stopping a run kills every process it started, even one in a
// new session with a cleared environment. When it is false, Unisolated
// says why.
func (s Support) Isolates() bool { return s.track != "" || s.memDir != "" || s.cpuDir != "" }

// Unisolated says why runs get no cgroup of their own, for a run's
// warnings; "" when they do.
func (s Support) Unisolated() string {
	if s.Isolates() {
		return ""
	}
	why := s.Why
	if why == "" {
		why = "cgroups were not detected"
	}
	return NoCgroupWarning("this worker may not create one: " + why)
}

// NoCgroupWarning is a run's warning that it has no cgroup of its own, and
// what follows from it.
func NoCgroupWarning(why string) string {
	return "this run's processes are not in a cgroup of their own (" + why + "): when the run ends, its process group and the processes that kept its marker environment variable are killed, but a process it started in a new session with a cleared environment can outlive it"
}

// String says what enforces each limit, for the worker's start-up log.
func (s Support) String() string {
	mem := "memory_limit: " + s.Memory
	switch s.Memory {
	case "":
		mem = "memory_limit: refused (nothing here enforces one)"
	case Cgroup2:
		mem += " (" + s.v2 + ")"
	case Cgroup1:
		mem += " (" + s.memDir + ")"
	case Rlimit:
		mem += " (RLIMIT_DATA per process)"
	}
	cpu := "cpu_limit: refused (no writable cpu cgroup)"
	switch s.CPU {
	case Cgroup2:
		cpu = "cpu_limit: cgroup2 (" + s.v2 + ")"
	case Cgroup1:
		cpu = "cpu_limit: cgroup1 (" + s.cpuDir + ")"
	}
	out := mem + "; " + cpu
	switch {
	case s.track != "":
		out += "; every run in a cgroup v2 of its own (" + s.track + ")"
	case s.Isolates():
		out += "; every run in a cgroup v1 of its own"
	default:
		out += "; runs in no cgroup of their own"
	}
	if s.Why != "" {
		out += "; why not cgroups: " + s.Why
	}
	return out
}

// Parents lists the directories that hold this worker's run cgroups.
func (s Support) Parents() []string {
	var out []string
	for _, d := range []string{s.v2, s.memDir, s.cpuDir, s.track} {
		if d != "" && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

// RunCgroupPrefix is how the cgroups of the run named name start (each
// attempt has its own), for finding them.
func RunCgroupPrefix(name string) string { return runPrefix + cgroupName(name) }

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

func readWords(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}

// mkdir and rmdir create and remove cgroups. Tests of the cgroup v2
// protocol on a made-up tree replace them with ones that also create and
// remove the files the kernel would.
var (
	mkdir = os.Mkdir
	rmdir = os.Remove
)

// writeFile writes a cgroup interface file, which exists already: it is
// never created, so a missing controller file is an error, not a new file.
func writeFile(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
