package jobs

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"millrace/internal/limits"
	"millrace/internal/notify"
	"millrace/workflows"
)

// priorityKey turns a priority name into Temporal's priority key.
func priorityKey(name string) (int, error) {
	if name == "" {
		return 0, nil
	}
	if k, ok := workflows.PriorityNames[strings.ToLower(strings.TrimSpace(name))]; ok {
		return k, nil
	}
	names := make([]string, 0, len(workflows.PriorityNames))
	for n := range workflows.PriorityNames {
		names = append(names, n)
	}
	sort.Strings(names)
	return 0, fmt.Errorf("priority %q: use one of %s", name, strings.Join(names, ", "))
}

// notifyURL checks a completion webhook URL against the allow-list. The
// worker checks it again before each delivery: its own list decides.
func (s *Service) notifyURL(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	if err := notify.CheckURL(raw, s.NotifyAllow); err != nil {
		return "", fmt.Errorf("notify_url: %w", err)
	}
	return raw, nil
}

// MaxCPULimit caps cpu_limit: more cores than any machine has is a typo.
const MaxCPULimit = 1024

// resourceLimits parses memory_limit and checks cpu_limit.
func resourceLimits(memory string, cpu float64) (int64, float64, error) {
	var problems []string
	mem, err := limits.ParseSize(memory)
	switch {
	case err != nil:
		problems = append(problems, fmt.Sprintf("memory_limit: %v", err))
	case mem > 0 && mem < limits.MinMemory:
		problems = append(problems, fmt.Sprintf("memory_limit %s: at least %s (a Python kernel needs that much to start)", limits.FormatSize(mem), limits.FormatSize(limits.MinMemory)))
	}
	if cpu < 0 || math.IsNaN(cpu) || math.IsInf(cpu, 0) || cpu > MaxCPULimit {
		problems = append(problems, fmt.Sprintf("cpu_limit %g: a number of cores such as 0.5 or 2; 0 or absent: no limit", cpu))
	}
	if len(problems) > 0 {
		return 0, 0, fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return mem, cpu, nil
}
