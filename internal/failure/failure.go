// Package failure is millrace's one vocabulary for how a run ends badly. It
// has two layers, each spelled once here:
//
//   - Kind says why an execution or an attempt ended: the bundled runner
//     writes it to its result file, the executor derives it from papermill's
//     exit, and the worker records it as the attempt's outcome (get_job_status
//     shows it in attempts[].outcome).
//   - Type is the Temporal application error type a failure carries. Recorded
//     histories hold it and retry policies match on it (NonRetryableErrorTypes),
//     and clients see it as error.type.
//
// Every value is on the wire (result files, end records, histories, tool
// answers): a value never changes once released; a new failure gets a new
// constant. The package imports nothing, so workflow code may use it.
package failure

// Kind says why an execution or an attempt ended.
type Kind string

// Kinds of the bundled runner's result file; the runner lists the ones it
// writes (runner.Kinds) and a test holds that list equal to the Python
// runner's KIND_* constants. Only KindOK is a success.
const (
	KindOK                Kind = "ok"
	KindCellError         Kind = "cell_error"
	KindCellTimeout       Kind = "cell_timeout"
	KindKernelDied        Kind = "kernel_died"
	KindKernelStartFailed Kind = "kernel_start_failed"
	KindNoSuchKernel      Kind = "no_such_kernel"
	KindNoTranslator      Kind = "no_translator"
	KindBadNotebook       Kind = "bad_notebook"
	// KindCanceled is an execution stopped by a signal (the worker's stop,
	// or an operator's), or an attempt the workflow canceled. Spelled as
	// Temporal spells it (CANCELED), like every cancel in millrace.
	KindCanceled Kind = "canceled"
	KindInternal Kind = "internal"
	// KindResumeFailed is a run told to resume from a checkpoint, and to
	// fail rather than start from its first cell, that could not resume:
	// the notebook changed before the checkpoint's cell, the checkpoint is
	// partial, or its file is not the one recorded.
	KindResumeFailed Kind = "resume_failed"
)

// Kinds no executor reports: the worker sets them from what it saw.
const (
	// KindMemoryLimit is a run whose runner or kernel went past the run's
	// memory limit: the activity sets it from the cgroup's OOM kill count
	// (or a MemoryError under an rlimit).
	KindMemoryLimit Kind = "memory_limit"
	// KindExited is an exit the executor did not explain (killed by a
	// signal it did not catch, the OOM killer, a crash).
	KindExited Kind = "exited"
	// KindTimedOut is an attempt stopped because the run passed its timeout.
	KindTimedOut Kind = "timed_out"
	// KindLost is an attempt whose worker stopped heartbeating (killed,
	// cut off, hung); the next attempt records it.
	KindLost Kind = "lost"
)

// Type is the type of a Temporal application error that a failed attempt,
// run or batch carries.
type Type string

// Failure types of an attempt (the RunNotebook activity).
const (
	TypeCellError         Type = "NotebookCellError"
	TypeCellTimeout       Type = "CellTimeout"
	TypeKernelDied        Type = "KernelDied"
	TypeKernelStartFailed Type = "KernelStartFailed"
	TypeNoSuchKernel      Type = "NoSuchKernel"
	TypeNoTranslator      Type = "NoTranslator"
	// TypeBadInput is an input the worker refused (a notebook it cannot
	// read, a path outside its roots, a forged option) before or as the
	// executor started.
	TypeBadInput       Type = "BadInput"
	TypeExecutorExited Type = "ExecutorExited"
	// TypeStorage is a run whose directory, parameters or log could not be
	// written.
	TypeStorage Type = "StorageError"
	// TypeMemoryLimit: the runner or its kernel exceeded the run's
	// memory_limit and was killed. Not retried: the next attempt would
	// need the same memory.
	TypeMemoryLimit Type = "MemoryLimitExceeded"
	// TypeResumeFailed: a required resume could not happen. Not retried:
	// the next attempt would find the same checkpoint and notebook.
	TypeResumeFailed Type = "ResumeFailed"
)

// Failure types the workflows give a run or a batch.
const (
	TypeRunFailed   Type = "RunFailed"
	TypeRunTimedOut Type = "RunTimedOut"
	TypeBatchFailed Type = "BatchFailed"
	// TypeNotifyRejected is a webhook delivery the receiver refused (a 4xx
	// answer other than 408 and 429) or that can never succeed: retrying
	// cannot change its mind.
	TypeNotifyRejected Type = "NotifyRejected"
	// TypeWorkerLost is a run whose last attempt's worker stopped
	// heartbeating.
	TypeWorkerLost Type = "WorkerLost"
	TypeCanceled   Type = "Canceled"
	TypeTerminated Type = "Terminated"
	TypeTimeout    Type = "Timeout"
	TypeUnknown    Type = "Unknown"
)

// Type is the failure type of an attempt that ended with kind k, and
// whether no retry could ever help (the next attempt would fail the same
// way). A cell error is retryable here: the retry policy decides, from the
// run's retry_on_error.
func (k Kind) Type() (t Type, nonRetryable bool) {
	switch k {
	case KindCellError:
		return TypeCellError, false
	case KindCellTimeout:
		return TypeCellTimeout, true
	case KindKernelDied:
		return TypeKernelDied, false
	case KindKernelStartFailed:
		return TypeKernelStartFailed, false
	case KindNoSuchKernel:
		return TypeNoSuchKernel, true
	case KindNoTranslator:
		return TypeNoTranslator, true
	case KindBadNotebook:
		return TypeBadInput, true
	case KindMemoryLimit:
		return TypeMemoryLimit, true
	case KindResumeFailed:
		return TypeResumeFailed, true
	}
	return TypeExecutorExited, false
}
