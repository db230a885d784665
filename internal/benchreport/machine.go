package benchreport

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
)

// Machine is what a table's figures depend on, read from the machine itself
// so that a published table always says where it was measured.
type Machine struct {
	CPU       string  // model name from /proc/cpuinfo
	Cores     int     // logical CPUs the benchmarks may use
	MemoryGiB float64 // MemTotal from /proc/meminfo
	Kernel    string  // uname -r
	Go        string  // the go command's version (it builds the benchmarks)
	Load      string  // /proc/loadavg's 1, 5 and 15 minute averages
}

// ReadMachine reads the machine's description. A field it cannot read says
// "unknown" rather than failing the run.
func ReadMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), CPU: "unknown", Kernel: "unknown", Load: LoadAverage()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				m.MemoryGiB = kb / (1 << 20)
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.Go = runtime.Version()
	if out, err := exec.Command("go", "env", "GOVERSION").Output(); err == nil {
		m.Go = strings.TrimSpace(string(out))
	}
	return m
}

// LoadAverage is /proc/loadavg's three averages ("0.52 1.10 2.03"): other
// work on the machine moves every figure, so the table records it.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// String is the machine in one line, as the table's header shows it.
func (m Machine) String() string {
	return fmt.Sprintf("%s, %d cores, %.1f GiB RAM, Linux %s, %s", m.CPU, m.Cores, m.MemoryGiB, m.Kernel, m.Go)
}

// Commit names the code that was measured: the checkout's HEAD, marked
// "+changes" when the work tree differs from it, or "unknown" outside git.
func Commit(dir string) string {
	out, err := exec.Command("git", "-C", dir, "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	commit := strings.TrimSpace(string(out))
	if diff, err := exec.Command("git", "-C", dir, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(diff) > 0 {
		commit += "+changes"
	}
	return commit
}
