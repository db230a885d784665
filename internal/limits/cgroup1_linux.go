//go:build linux

package limits

import (
	"cmp"
	"fmt"
	"path/filepath"
	"strconv"
)

// createV1 makes the run's cgroup v1 directories and sets the limits
// enforced through v1. A run with no v2 cgroup and no v1 limit still gets
// a v1 cgroup without limits, which holds all its processes.
func (g *Group) createV1(s Support, name string) error {
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
		if err := g.addV1(parent, name); err != nil {
			return err
		}
	}
	if g.memMech == Cgroup1 {
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
	if g.cpuMech == Cgroup1 {
		d := g.v1[len(g.v1)-1]
		if err := writeFile(filepath.Join(d, "cpu.cfs_period_us"), strconv.Itoa(CPUPeriod)); err != nil {
			return fmt.Errorf("set cpu.cfs_period_us: %w", err)
		}
		if err := writeFile(filepath.Join(d, "cpu.cfs_quota_us"), strconv.FormatInt(cpuQuota(g.spec.CPU), 10)); err != nil {
			return fmt.Errorf("set cpu.cfs_quota_us: %w", err)
		}
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
