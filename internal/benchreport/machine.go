package benchreport

import (
	"fmt"
	"os/exec"
	"runtime"
	"strings"
)

// Machine is what a table's figures depend on, read from the machine itself
// so that a published table always says where it was measured.
type Machine struct {
	CPU       string  // processor model (Linux: /proc/cpuinfo; macOS: machdep.cpu.brand_string)
	Cores     int     // logical CPUs the benchmarks may use
	MemoryGiB float64 // physical memory (Linux: MemTotal; macOS: hw.memsize)
	OS        string  // Linux or macOS
	Kernel    string  // Linux: uname -r; macOS: the product version (14.5)
	Go        string  // the go command's version (it builds the benchmarks)
	Load      string  // the 1, 5 and 15 minute load averages
}

// ReadMachine reads the machine's description. A field it cannot read says
// "unknown" rather than failing the run.
func ReadMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), CPU: "unknown", OS: runtime.GOOS, Kernel: "unknown", Load: LoadAverage()}
	readHost(&m)
	m.Go = runtime.Version()
	if out, err := exec.Command("go", "env", "GOVERSION").Output(); err == nil {
		m.Go = strings.TrimSpace(string(out))
	}
	return m
}

// LoadAverage is the machine's three load averages ("0.52 1.10 2.03"), or
// "unknown": other work on the machine moves every figure, so the table
// records it.
func LoadAverage() string {
	avg, ok := loadAverage()
	if !ok {
		return "unknown"
	}
	return fmt.Sprintf("%.2f %.2f %.2f", avg[0], avg[1], avg[2])
}

// String is the machine in one line, as the table's header shows it.
func (m Machine) String() string {
	return fmt.Sprintf("%s, %d cores, %.1f GiB RAM, %s %s, %s", m.CPU, m.Cores, m.MemoryGiB, m.OS, m.Kernel, m.Go)
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
