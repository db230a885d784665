package executor

import (
	"fmt"
	"strings"

	"millrace/internal/executor/runner"
	"millrace/internal/failure"
)

// Outcome is how one execution ended: the bundled runner's result file, or
// the same facts derived from papermill's exit, output notebook and stderr,
// with the executor's exit status.
type Outcome struct {
	runner.Result
	ExitCode int
}

// Succeeded reports whether the notebook ran to its end (or to a SystemExit
// that papermill counts as success).
func (o Outcome) Succeeded() bool { return o.Kind == failure.KindOK }

// ReadResultFile reads the bundled runner's result. A missing file means the
// runner died before it could write one.
func ReadResultFile(path string) (Outcome, bool, error) {
	res, ok, err := runner.ReadResult(path)
	return Outcome{Result: res}, ok, err
}

// FromExit explains an exit that came with no result file (papermill, or a
// runner killed before it could write one). stderrTail is the end of the
// executor's stderr, where papermill and jupyter_client name their errors.
func FromExit(code int, stderrTail []string) Outcome {
	o := Outcome{ExitCode: code, Result: runner.Result{Status: "failed"}}
	tail := strings.Join(stderrTail, "\n")
	switch {
	case code == 0:
		o.Status, o.Kind = "succeeded", failure.KindOK
	case code == runner.ExitKernelDied || strings.Contains(tail, "DeadKernelError"):
		o.Kind, o.Message = failure.KindKernelDied, "the kernel died while a cell was running"
	case strings.Contains(tail, "NoSuchKernel") || strings.Contains(tail, "No such kernel"):
		o.Kind, o.Message = failure.KindNoSuchKernel, lastMatching(stderrTail, "kernel")
	case strings.Contains(tail, "No parameter translator"):
		o.Kind, o.Message = failure.KindNoTranslator, lastMatching(stderrTail, "translator")
	case strings.Contains(tail, "CellTimeoutError"):
		o.Kind, o.Message = failure.KindCellTimeout, "a cell ran longer than the per-cell timeout"
	case strings.Contains(tail, "PapermillExecutionError"):
		o.Kind, o.Message = failure.KindCellError, lastMatching(stderrTail, "Error")
	case code > 128:
		o.Kind, o.Message = failure.KindExited, fmt.Sprintf("the executor was killed by signal %d", code-128)
	default:
		o.Kind, o.Message = failure.KindExited, fmt.Sprintf("the executor exited with status %d", code)
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
