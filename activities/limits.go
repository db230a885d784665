package activities

import (
	"errors"
	"fmt"
	"log/slog"

	"millrace/internal/executor"
	"millrace/internal/failure"
	"millrace/internal/limits"
	"millrace/workflows"
)

// limitSupport is how this worker enforces limits: Activities.Limits, or
// what the process detected.
func (a *Activities) limitSupport() limits.Support {
	if a.Limits != nil {
		return *a.Limits
	}
	return limits.Detected()
}

// confine sets up the attempt's cgroups and resource limits: nil when it
// has no limits and the worker cannot give it a cgroup, which warning
// then says. A run without limits whose cgroup could not be made runs
// without one (with the warning) rather than fail: the cgroup only makes
// its stop surer.
func (a *Activities) confine(in workflows.RunInput, marker string, log *slog.Logger) (grp *limits.Group, warning string, err error) {
	s := a.limitSupport()
	spec := limits.Spec{Memory: in.MemoryLimit, CPU: in.CPULimit}
	grp, err = s.NewGroup(marker, spec)
	switch {
	case err != nil && spec == (limits.Spec{}):
		log.Warn("a run's cgroup could not be created; it runs without one", "err", err)
		return nil, limits.NoCgroupWarning(err.Error()), nil
	case err != nil:
		return nil, "", err
	case grp == nil:
		return nil, s.Unisolated(), nil
	}
	return grp, "", nil
}

// confineFailure ends an attempt whose limits could not be set up: a limit
// this worker cannot enforce is the caller's to change (not retried); a
// cgroup that could not be created is the worker's trouble (retried).
func (a *Activities) confineFailure(dir string, res *workflows.AttemptResult, err error) error {
	if errors.Is(err, limits.ErrUnsupported) {
		return a.end(dir, res, failure.TypeBadInput, err.Error(), nil, true)
	}
	return a.end(dir, res, failure.TypeExecutorExited, "cannot set up the run's resource limits: "+err.Error(), nil, false)
}

// confiner is grp as an executor.Confiner, nil when there are no limits (a
// nil *Group in the interface would not compare equal to nil).
func confiner(grp *limits.Group) executor.Confiner {
	if grp == nil {
		return nil
	}
	return grp
}

// release removes the attempt's cgroups once its process tree is gone, and
// returns how many of its processes the kernel killed for memory.
func (a *Activities) release(grp *limits.Group, log *slog.Logger) int64 {
	if grp == nil {
		return 0
	}
	kills, peak := grp.OOMKills(), grp.Peak()
	if err := grp.Close(); err != nil {
		log.Warn("a run's cgroup could not be removed", "err", err)
	}
	log.Info("run limits released", "oom_kills", kills, "peak_bytes", peak)
	return kills
}

// limitOutcome adds what enforced the run's limits to its warnings and
// explains a failure caused by the memory limit (memoryOutcome).
func limitOutcome(grp *limits.Group, oomKills int64, out *executor.Outcome) {
	if grp == nil {
		return
	}
	out.Warnings = append(out.Warnings, grp.Notes()...)
	memoryOutcome(grp.Spec().Memory, grp.MemoryMechanism(), oomKills, out)
}

// memoryOutcome turns a failure caused by the memory limit into
// KindMemoryLimit with a message that names the limit, instead of a dead
// kernel with no reason. Under cgroups the proof is the cgroup's OOM kill
// count; under an rlimit an allocation past the limit fails, so the proof
// is the cell's MemoryError.
func memoryOutcome(limit int64, mech string, oomKills int64, out *executor.Outcome) {
	if limit == 0 {
		return
	}
	if out.Succeeded() {
		if oomKills > 0 {
			out.Warnings = append(out.Warnings, fmt.Sprintf("%d process(es) of the run were killed for going past its memory limit of %s, yet the notebook ran to its end", oomKills, limits.FormatSize(limit)))
		}
		return
	}
	cell, ename := "?", ""
	if out.Cell != nil {
		cell, ename = fmt.Sprint(out.Cell.Index), out.Cell.EName
	}
	var what string
	switch {
	case oomKills > 0 && out.Kind == failure.KindKernelDied:
		what = "the kernel was killed while running cell " + cell
	case oomKills > 0 && out.Kind == failure.KindKernelStartFailed:
		what = "the kernel was killed while it started"
	case oomKills > 0 && out.Kind == failure.KindCellError:
		what = fmt.Sprintf("a process was killed while cell %s ran, which then raised %s", cell, ename)
	case oomKills > 0 && out.CellsExecuted > 0:
		what = fmt.Sprintf("the executor was killed after %d of %d cells", out.CellsExecuted, out.CellsTotal)
	case oomKills > 0:
		what = "the executor was killed before it ran any cell"
	case mech == limits.Rlimit && out.Kind == failure.KindCellError && ename == "MemoryError":
		what = "cell " + cell + " raised MemoryError; the limit applies to each process through RLIMIT_DATA"
	default:
		if mech == limits.Rlimit && (out.Kind == failure.KindKernelDied || out.Kind == failure.KindKernelStartFailed) {
			out.Message += fmt.Sprintf(" (the run's memory limit of %s is enforced per process by RLIMIT_DATA, which counts reserved thread stacks too: a kernel needs about 150 MiB of it to start, and some libraries abort instead of raising MemoryError)", limits.FormatSize(limit))
		}
		return
	}
	out.Kind = failure.KindMemoryLimit
	out.Message = fmt.Sprintf("the run exceeded its memory limit of %s (%s)", limits.FormatSize(limit), what)
	if out.Cell != nil && ename == "DeadKernelError" {
		// The runner's DeadKernelError says only that the kernel is gone;
		// a person reading the cell's error must see why.
		out.Cell.EName = string(failure.TypeMemoryLimit)
		out.Cell.EValue = fmt.Sprintf("the kernel was killed: the run went past its memory limit of %s", limits.FormatSize(limit))
	}
}
