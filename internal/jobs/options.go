package jobs

import (
	"errors"
	"fmt"
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

// resourceLimits parses memory_limit and checks both limits with the
// rules the worker applies again before a run starts.
func resourceLimits(memory string, cpu float64) (int64, float64, error) {
	mem, err := limits.ParseSize(memory)
	if err != nil {
		err = fmt.Errorf("memory_limit: %w", err)
	} else {
		err = limits.CheckMemory(mem)
	}
	if cerr := limits.CheckCPU(cpu); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("%s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return mem, cpu, nil
}

// checkpointPolicy checks a run's checkpoint options: the policy's name
// (kept as given, "" for the default) and the size cap in bytes (0 for the
// default).
func checkpointPolicy(policy, maxSize string) (string, int64, error) {
	var errs []error
	switch policy {
	case "", workflows.CheckpointAuto, workflows.CheckpointEveryCell, workflows.CheckpointOff:
	default:
		errs = append(errs, fmt.Errorf("checkpoint %q: must be %s, %s or %s", policy, workflows.CheckpointAuto, workflows.CheckpointEveryCell, workflows.CheckpointOff))
	}
	size, err := limits.ParseSize(maxSize)
	if err != nil {
		errs = append(errs, fmt.Errorf("checkpoint_max_size: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return "", 0, fmt.Errorf("%s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return policy, size, nil
}
