//go:build linux

package limits

import (
	"fmt"
	"path/filepath"
	"strconv"
	"syscall"
)

// createV2 makes the run's cgroup v2 leaf under parent, sets the limits
// enforced through v2, and opens it for CLONE_INTO_CGROUP (BeforeFork).
func (g *Group) createV2(parent, name string) error {
	g.v2 = filepath.Join(parent, name)
	if err := mkdir(g.v2, 0o755); err != nil {
		g.v2 = ""
		return fmt.Errorf("create cgroup: %w", err)
	}
	if g.memMech == Cgroup2 {
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
	}
	if g.cpuMech == Cgroup2 {
		quota := strconv.FormatInt(cpuQuota(g.spec.CPU), 10)
		if err := writeFile(filepath.Join(g.v2, "cpu.max"), quota+" "+strconv.Itoa(CPUPeriod)); err != nil {
			return fmt.Errorf("set cpu.max: %w", err)
		}
	}
	fd, err := syscall.Open(g.v2, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open cgroup %s: %w", g.v2, err)
	}
	g.fd = fd
	return nil
}
