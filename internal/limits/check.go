package limits

import (
	"fmt"
	"math"
	"strconv"
)

// MaxCPU is the largest cpu_limit accepted. It is not this machine's core
// count: the request may be checked on another host than the worker that
// runs it, and a limit above a worker's cores merely limits nothing there
// (the run's warnings say so).
const MaxCPU = 1024

// MinCPU is the smallest cpu_limit: the kernel's smallest quota, 1 ms per
// 100 ms period.
const MinCPU = 0.01

// CheckMemory validates a memory_limit in bytes; 0 is no limit.
func CheckMemory(b int64) error {
	switch {
	case b < 0:
		return fmt.Errorf("memory_limit %d is negative: give a size such as 512MiB, or 0 for none", b)
	case b > 0 && b < MinMemory:
		return fmt.Errorf("memory_limit %s is below the minimum of %s: the runner and its kernel cannot start in less", FormatSize(b), FormatSize(MinMemory))
	}
	return nil
}

// CheckCPU validates a cpu_limit in cores; 0 is no limit.
func CheckCPU(c float64) error {
	switch {
	case math.IsNaN(c) || math.IsInf(c, 0):
		return fmt.Errorf("cpu_limit %v is not a number of cores: give one such as 0.5 or 2", c)
	case c < 0:
		return fmt.Errorf("cpu_limit %s is negative: give a number of cores such as 0.5 or 2, or 0 for none", FormatCPU(c))
	case c > 0 && c < MinCPU:
		return fmt.Errorf("cpu_limit %s is below the minimum of %s cores", FormatCPU(c), FormatCPU(MinCPU))
	case c > MaxCPU:
		return fmt.Errorf("cpu_limit %s is above the maximum of %d cores", FormatCPU(c), MaxCPU)
	}
	return nil
}

// FormatCPU renders cores as the user would write them (0.5, 2).
func FormatCPU(c float64) string {
	return strconv.FormatFloat(c, 'f', -1, 64)
}
