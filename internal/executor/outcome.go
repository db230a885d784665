package executor

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"millrace/internal/notebook"
)

// Outcome kinds: why an execution ended. The bundled runner reports them in
// its result file; for papermill they are derived from the exit code, the
// output notebook and the end of stderr.
const (
	KindOK                = "ok"
	KindCellError         = "cell_error"
	KindCellTimeout       = "cell_timeout"
	KindKernelDied        = "kernel_died"
	KindKernelStartFailed = "kernel_start_failed"
	KindNoSuchKernel      = "no_such_kernel"
	KindNoTranslator      = "no_translator"
	KindBadNotebook       = "bad_notebook"
	KindCancelled         = "cancelled"
	KindInternal          = "internal"
	// KindMemoryLimit is a run whose runner or kernel went past the run's
	// memory limit: the activity sets it from the cgroup's OOM kill count
	// (or a MemoryError under an rlimit); no executor reports it.
	KindMemoryLimit = "memory_limit"
	// KindExited is an exit the executor did not explain (killed by a
	// signal it did not catch, the OOM killer, a crash).
	KindExited = "exited"
)

// ExitDeadKernel is papermill's exit status for a kernel that died.
const ExitDeadKernel = 138

// Outcome is how one execution ended.
type Outcome struct {
	Status           string                `json:"status"`
	Kind             string                `json:"kind"`
	Message          string                `json:"message"`
	ExitCode         int                   `json:"exit_code"`
	KernelName       string                `json:"kernel_name"`
	KernelDefaulted  bool                  `json:"kernel_defaulted"`
	Language         string                `json:"language"`
	CellsTotal       int                   `json:"cells_total"`
	CellsExecuted    int                   `json:"cells_executed"`
	Warnings         []string              `json:"warnings,omitempty"`
	AvailableKernels []string              `json:"available_kernels,omitempty"`
	Cell             *notebook.CellFailure `json:"cell,omitempty"`
}

// Succeeded reports whether the notebook ran to its end (or to a SystemExit
// that papermill counts as success).
func (o Outcome) Succeeded() bool { return o.Kind == KindOK }

// ReadResultFile reads the bundled runner's result. A missing file means the
// runner died before it could write one.
func ReadResultFile(path string) (Outcome, bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Outcome{}, false, nil
	}
	if err != nil {
		return Outcome{}, false, fmt.Errorf("read runner result: %w", err)
	}
	var o Outcome
	if err := json.Unmarshal(b, &o); err != nil {
		return Outcome{}, false, fmt.Errorf("read runner result %s: %w", path, err)
	}
	return o, true, nil
}

// FromExit explains an exit that came with no result file (papermill, or a
// runner killed before it could write one). stderrTail is the end of the
// executor's stderr, where papermill and jupyter_client name their errors.
func FromExit(code int, stderrTail []string) Outcome {
	o := Outcome{ExitCode: code, Status: "failed"}
	tail := strings.Join(stderrTail, "\n")
	switch {
	case code == 0:
		o.Status, o.Kind = "succeeded", KindOK
	case code == ExitDeadKernel || strings.Contains(tail, "DeadKernelError"):
		o.Kind, o.Message = KindKernelDied, "the kernel died while a cell was running"
	case strings.Contains(tail, "NoSuchKernel") || strings.Contains(tail, "No such kernel"):
		o.Kind, o.Message = KindNoSuchKernel, lastMatching(stderrTail, "kernel")
	case strings.Contains(tail, "No parameter translator"):
		o.Kind, o.Message = KindNoTranslator, lastMatching(stderrTail, "translator")
	case strings.Contains(tail, "CellTimeoutError"):
		o.Kind, o.Message = KindCellTimeout, "a cell ran longer than the per-cell timeout"
	case strings.Contains(tail, "PapermillExecutionError"):
		o.Kind, o.Message = KindCellError, lastMatching(stderrTail, "Error")
	case code > 128:
		o.Kind, o.Message = KindExited, fmt.Sprintf("the executor was killed by signal %d", code-128)
	default:
		o.Kind, o.Message = KindExited, fmt.Sprintf("the executor exited with status %d", code)
	}
	if o.Message == "" {
		o.Message = strings.TrimSpace(tail)
	}
	return o
}

func lastMatching(lines []string, word string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], word) {
			return strings.TrimSpace(lines[i])
		}
	}
	return ""
}
