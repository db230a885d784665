package workflows

import (
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"millrace/internal/failure"
)

// Search attribute keys, typed for upserts and queries.
var (
	KeyNotebook = temporal.NewSearchAttributeKeyKeyword(AttrNotebook)
	KeyStatus   = temporal.NewSearchAttributeKeyKeyword(AttrStatus)
	KeyLabels   = temporal.NewSearchAttributeKeyKeywordList(AttrLabels)
	KeyBatchID  = temporal.NewSearchAttributeKeyKeyword(AttrBatchID)
	KeyKind     = temporal.NewSearchAttributeKeyKeyword(AttrKind)

	KeyNotebookDir = temporal.NewSearchAttributeKeyKeyword(AttrNotebookDir)
	KeyOutputDir   = temporal.NewSearchAttributeKeyKeyword(AttrOutputDir)
	KeyCwd         = temporal.NewSearchAttributeKeyKeyword(AttrCwd)
)

// nonRetryable lists the failure types no retry can fix. A cell error joins
// them unless the caller asked for retries on error.
var nonRetryable = []string{
	string(failure.TypeCellTimeout), string(failure.TypeNoSuchKernel), string(failure.TypeNoTranslator),
	string(failure.TypeBadInput), string(failure.TypeStorage), string(failure.TypeMemoryLimit),
	string(failure.TypeResumeFailed),
}

// ActivityOptions returns the options of a run's activity. The run timeout is
// the activity's ScheduleToClose timeout, so it spans every attempt and the
// waits between them; the heartbeat timeout finds a lost worker in seconds.
func ActivityOptions(in RunInput) workflow.ActivityOptions {
	timeout := in.Timeout
	if timeout <= 0 {
		timeout = DefaultRunTimeout
	}
	hb := in.HeartbeatTimeout
	if hb <= 0 {
		hb = DefaultHeartbeatTimeout
	}
	attempts := in.MaxAttempts
	if attempts <= 0 {
		attempts = DefaultMaxAttempts
	}
	types := nonRetryable
	if !in.RetryOnError {
		types = append(types[:len(types):len(types)], string(failure.TypeCellError))
	}
	return workflow.ActivityOptions{
		ScheduleToCloseTimeout: timeout,
		StartToCloseTimeout:    timeout,
		HeartbeatTimeout:       hb,
		WaitForCancellation:    true,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        time.Minute,
			MaximumAttempts:        int32(attempts),
			NonRetryableErrorTypes: types,
		},
	}
}

// NotebookRun runs one notebook: one activity, retried per the input's
// policy. It succeeds when the notebook does; otherwise it fails (or is
// canceled) with the RunResult as the failure's details, so the Temporal UI
// shows a failed notebook as a failed workflow.
func NotebookRun(ctx workflow.Context, in RunInput) (RunResult, error) {
	result := RunResult{Notebook: in.Notebook, OutputPath: in.Output, StartedAt: workflow.Now(ctx)}
	recordRunStarted(ctx)
	actx := workflow.WithActivityOptions(ctx, ActivityOptions(in))
	var attempt AttemptResult
	err := workflow.ExecuteActivity(actx, RunNotebookActivity, in).Get(actx, &attempt)
	result.EndedAt = workflow.Now(ctx)
	result.Duration = result.EndedAt.Sub(result.StartedAt).Seconds()
	result.Status, result.Error = classify(err, &attempt)
	result.merge(attempt)
	if len(in.Warnings) > 0 {
		result.Warnings = append(append([]string{}, in.Warnings...), result.Warnings...)
	}
	recordRunEnded(ctx, result)

	// A canceled workflow's context is done: record the end on a
	// disconnected one.
	uctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	if uerr := workflow.UpsertTypedSearchAttributes(uctx, KeyStatus.ValueSet(result.Status)); uerr != nil {
		workflow.GetLogger(ctx).Warn("record status", "error", uerr)
	}
	if in.NotifyURL != "" {
		startNotify(uctx, NotifyID(workflow.GetInfo(ctx).WorkflowExecution.ID, 0), NotifyInput{URL: in.NotifyURL, Payload: runPayload(ctx, result)})
	}

	switch result.Status {
	case StatusSucceeded:
		return result, nil
	case StatusCanceled:
		return result, temporal.NewCanceledError(result)
	case StatusTimedOut:
		return result, temporal.NewNonRetryableApplicationError(result.Error.Message, string(failure.TypeRunTimedOut), nil, result)
	default:
		return result, temporal.NewNonRetryableApplicationError(result.Error.Message, string(failure.TypeRunFailed), nil, result)
	}
}

func (r *RunResult) merge(a AttemptResult) {
	if a.Attempt > 0 {
		r.Attempts = a.Attempt
	}
	if a.OutputPath != "" {
		r.OutputPath = a.OutputPath
	}
	if a.Executor != "" {
		r.Executor, r.Kernel = a.Executor, a.Kernel
	}
	if a.CellsTotal > 0 {
		r.CellsExecuted, r.CellsTotal = a.CellsExecuted, a.CellsTotal
	}
	r.Warnings = a.Warnings
	r.Checkpoints = a.Checkpoints
}

// LastCheckpoint is the run's latest checkpoint, nil if it took none.
func (r *RunResult) LastCheckpoint() *Checkpoint {
	if n := len(r.Checkpoints); n > 0 {
		return &r.Checkpoints[n-1]
	}
	return nil
}

// classify turns the activity's outcome into a status and error, filling
// attempt from the failure's details where the activity reported them.
func classify(err error, attempt *AttemptResult) (string, *RunError) {
	if err == nil {
		return StatusSucceeded, nil
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.HasDetails() {
		_ = appErr.Details(attempt)
	}
	var timeoutErr *temporal.TimeoutError
	if errors.As(err, &timeoutErr) && timeoutErr.HasLastHeartbeatDetails() {
		var p Progress
		if timeoutErr.LastHeartbeatDetails(&p) == nil {
			attempt.Attempt, attempt.CellsExecuted, attempt.CellsTotal = p.Attempt, p.CellsDone, p.CellsTotal
			attempt.Executor, attempt.OutputPath = p.Executor, p.OutputPath
			attempt.ResumedFromCell = p.ResumedFromCell
			if p.Checkpoint != nil {
				attempt.Checkpoints = []Checkpoint{*p.Checkpoint}
			}
		}
	}
	switch {
	case temporal.IsCanceledError(err):
		return StatusCanceled, &RunError{Type: failure.TypeCanceled, Message: "the run was canceled"}
	case appErr != nil && attempt.Error != nil:
		status := StatusFailed
		if failure.Type(appErr.Type()) == failure.TypeCellTimeout {
			status = StatusTimedOut
		}
		return status, attempt.Error
	case appErr != nil:
		return StatusFailed, &RunError{Type: failure.Type(appErr.Type()), Message: appErr.Message()}
	case timeoutErr != nil && timeoutErr.TimeoutType() == enumspb.TIMEOUT_TYPE_HEARTBEAT:
		return StatusFailed, &RunError{Type: failure.TypeWorkerLost, Message: fmt.Sprintf(
			"the worker running attempt %d stopped heartbeating and no attempts are left", max(attempt.Attempt, 1))}
	case timeoutErr != nil:
		return StatusTimedOut, &RunError{Type: failure.TypeTimeout, Message: "the run exceeded its timeout"}
	}
	return StatusFailed, &RunError{Type: failure.TypeUnknown, Message: err.Error()}
}
