package activities

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"millrace/internal/executor"
	"millrace/internal/executor/runner"
	"millrace/internal/failure"
	"millrace/internal/limits"
	"millrace/internal/notebook"
	"millrace/workflows"
)

func TestMemoryOutcome(t *testing.T) {
	const mib150 = 150 << 20
	died := func() executor.Outcome {
		return executor.Outcome{Result: runner.Result{Kind: failure.KindKernelDied, Message: "the kernel died while cell 3 was running", Cell: &notebook.CellFailure{Index: 3, EName: "DeadKernelError"}}}
	}
	memErr := executor.Outcome{Result: runner.Result{Kind: failure.KindCellError, Message: "cell 2 raised MemoryError", Cell: &notebook.CellFailure{Index: 2, EName: "MemoryError"}}}
	cases := []struct {
		name  string
		limit int64
		mech  string
		kills int64
		out   executor.Outcome
		kind  failure.Kind
		msg   string // msg: a substring of the new message
	}{
		{"cgroup kill of the kernel", mib150, limits.Cgroup1, 1, died(), failure.KindMemoryLimit,
			"the run exceeded its memory limit of 150 MiB (the kernel was killed while running cell 3)"},
		{"cgroup v2 the same", mib150, limits.Cgroup2, 2, died(), failure.KindMemoryLimit, "the kernel was killed while running cell 3"},
		{"the runner killed at start", mib150, limits.Cgroup1, 1, executor.Outcome{Result: runner.Result{Kind: failure.KindExited, Message: "the executor was killed by signal 9"}}, failure.KindMemoryLimit,
			"(the executor was killed before it ran any cell)"},
		{"the runner killed later", mib150, limits.Cgroup1, 1, executor.Outcome{Result: runner.Result{Kind: failure.KindExited, CellsExecuted: 2, CellsTotal: 5}}, failure.KindMemoryLimit,
			"(the executor was killed after 2 of 5 cells)"},
		{"a cell's subprocess killed", mib150, limits.Cgroup1, 1, executor.Outcome{Result: runner.Result{Kind: failure.KindCellError, Cell: &notebook.CellFailure{Index: 4, EName: "CalledProcessError"}}}, failure.KindMemoryLimit,
			"a process was killed while cell 4 ran, which then raised CalledProcessError"},
		{"kernel killed at start", mib150, limits.Cgroup2, 1, executor.Outcome{Result: runner.Result{Kind: failure.KindKernelStartFailed}}, failure.KindMemoryLimit, "killed while it started"},
		{"a dead kernel without an OOM kill is not blamed on memory", mib150, limits.Cgroup1, 0, died(), failure.KindKernelDied, "the kernel died while cell 3 was running"},
		{"no limit, no change", 0, limits.Cgroup1, 1, died(), failure.KindKernelDied, "the kernel died while cell 3 was running"},
		{"rlimit MemoryError", mib150, limits.Rlimit, 0, memErr, failure.KindMemoryLimit,
			"the run exceeded its memory limit of 150 MiB (cell 2 raised MemoryError; the limit applies to each process through RLIMIT_DATA)"},
		{"MemoryError under a cgroup is the notebook's own", mib150, limits.Cgroup1, 0, memErr, failure.KindCellError, "cell 2 raised MemoryError"},
		{"rlimit dead kernel gets a hint, stays retryable", mib150, limits.Rlimit, 0, died(), failure.KindKernelDied, "enforced per process by RLIMIT_DATA"},
	}
	for _, c := range cases {
		out := c.out
		memoryOutcome(c.limit, c.mech, c.kills, &out)
		if out.Kind != c.kind || !strings.Contains(out.Message, c.msg) {
			t.Errorf("%s: got %s %q, want %s with %q", c.name, out.Kind, out.Message, c.kind, c.msg)
		}
	}
	out := died()
	memoryOutcome(mib150, limits.Cgroup1, 1, &out)
	if out.Cell.EName != string(failure.TypeMemoryLimit) || !strings.Contains(out.Cell.EValue, "memory limit of 150 MiB") {
		t.Errorf("the killed cell's error %s: %s, want it to name the memory limit, not a bare dead kernel", out.Cell.EName, out.Cell.EValue)
	}
	ok := executor.Outcome{Result: runner.Result{Kind: failure.KindOK}}
	memoryOutcome(mib150, limits.Cgroup1, 1, &ok)
	if ok.Kind != failure.KindOK || len(ok.Warnings) != 1 || !strings.Contains(ok.Warnings[0], "yet the notebook ran to its end") {
		t.Errorf("a run that succeeded despite an OOM kill: %+v, want success with a warning", ok)
	}
}

// TestCheckInputLimits: a run started by another client than the job
// service (the Temporal CLI or UI) gets its limits checked by the activity.
func TestCheckInputLimits(t *testing.T) {
	dir := t.TempDir()
	nb := filepath.Join(dir, "n.ipynb")
	if err := os.WriteFile(nb, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	in := workflows.RunInput{Notebook: nb, Cwd: dir, MemoryLimit: 200 << 20, CPULimit: 0.5}
	if err := checkInput(in); err != nil {
		t.Fatalf("valid limits refused: %v", err)
	}
	for _, bad := range []workflows.RunInput{
		{Notebook: nb, Cwd: dir, MemoryLimit: 1 << 20},
		{Notebook: nb, Cwd: dir, MemoryLimit: -1},
		{Notebook: nb, Cwd: dir, CPULimit: -2},
		{Notebook: nb, Cwd: dir, CPULimit: math.NaN()},
	} {
		if err := checkInput(bad); err == nil || !strings.Contains(err.Error(), "_limit") {
			t.Errorf("limits %d bytes, %v cores: %v, want an error naming the limit", bad.MemoryLimit, bad.CPULimit, err)
		}
	}
}
