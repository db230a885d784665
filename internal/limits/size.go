// Package limits parses and enforces a run's resource limits (memory_limit,
// cpu_limit) on the runner and its kernel.
package limits

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// units are the suffixes ParseSize takes, lower-cased. K, M, G and T alone
// are binary, as in Kubernetes' Ki/Mi and docker's -m: users who write "4g"
// mean the RAM sizes their tools print.
var units = map[string]float64{
	"": 1, "b": 1,
	"k": 1 << 10, "kb": 1e3, "kib": 1 << 10, "ki": 1 << 10,
	"m": 1 << 20, "mb": 1e6, "mib": 1 << 20, "mi": 1 << 20,
	"g": 1 << 30, "gb": 1e9, "gib": 1 << 30, "gi": 1 << 30,
	"t": 1 << 40, "tb": 1e12, "tib": 1 << 40, "ti": 1 << 40,
}

// MinMemory is the smallest memory limit accepted: below it the Python
// runner and kernel cannot even start. Measured with the bundled runner
// and a bare ipykernel under a cgroup v1 limit: 96 MiB killed the runner
// at start, 112 MiB ran a notebook. (Under RLIMIT_DATA, which counts
// reserved thread stacks, a kernel needs about 150 MiB per process.)
const MinMemory = 128 << 20

// ParseSize reads a memory size: a number of bytes, or a number with a unit
// (512MiB, 4GB, 1.5g). "" is 0 (no limit).
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, nil
	}
	i := strings.IndexFunc(t, func(r rune) bool { return !(r >= '0' && r <= '9' || r == '.') })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	}
	mult, ok := units[unit]
	f, err := strconv.ParseFloat(num, 64)
	if !ok || err != nil || f < 0 || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not a size: write bytes or a number with a unit, such as 512MiB, 4GB or 2g", s)
	}
	b := f * mult
	if b > math.MaxInt64/2 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return int64(b), nil
}

// FormatSize renders bytes in binary units, to at most two decimals
// (512 MiB, 1.5 GiB).
func FormatSize(b int64) string {
	for _, u := range []struct {
		name string
		size float64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if float64(b) >= u.size {
			return strconv.FormatFloat(math.Round(float64(b)/u.size*100)/100, 'f', -1, 64) + " " + u.name
		}
	}
	return strconv.FormatInt(b, 10) + " B"
}
