package workflows

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"millrace/internal/failure"
	"millrace/internal/notebook"
)

// runActivity stands in for the real activity's signature.
func runActivity(ctx context.Context, in RunInput) (AttemptResult, error) {
	return AttemptResult{}, errors.New("not mocked")
}

func newEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterActivityWithOptions(runActivity, activity.RegisterOptions{Name: RunNotebookActivity})
	return env
}

func attemptErr(typ failure.Type, msg string, attempt int, nonRetryable bool) error {
	res := AttemptResult{Attempt: attempt, Executor: "millrace-runner", CellsExecuted: 1, CellsTotal: 3,
		Error:       &RunError{Type: typ, Message: msg, Cell: &notebook.CellFailure{Index: 2, EName: "ValueError", EValue: "boom"}},
		Checkpoints: []Checkpoint{{Cell: 1, Attempt: attempt, Path: "/data/runs/nb-1/attempt-1/checkpoints/cell-1.ckpt", SHA256: "ab", SizeBytes: 10}}}
	return temporal.NewApplicationErrorWithOptions(msg, string(typ), temporal.ApplicationErrorOptions{NonRetryable: nonRetryable, Details: []any{res}})
}

func runResult(t *testing.T, env *testsuite.TestWorkflowEnvironment) (RunResult, error) {
	t.Helper()
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	err := env.GetWorkflowError()
	var res RunResult
	if err == nil {
		if gerr := env.GetWorkflowResult(&res); gerr != nil {
			t.Fatal(gerr)
		}
		return res, nil
	}
	var appErr *temporal.ApplicationError
	var canceled *temporal.CanceledError
	switch {
	case errors.As(err, &appErr):
		if derr := appErr.Details(&res); derr != nil {
			t.Fatalf("failure has no RunResult details: %v", derr)
		}
	case errors.As(err, &canceled):
		if derr := canceled.Details(&res); derr != nil {
			t.Fatalf("cancel has no RunResult details: %v", derr)
		}
	}
	return res, err
}

var input = RunInput{Notebook: "/nb/a.ipynb", Output: "/out/a.ipynb", Cwd: "/nb"}

func TestNotebookRunSucceeds(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(RunNotebookActivity, mock.Anything, input).Return(AttemptResult{
		Attempt: 1, Executor: "millrace-runner", Kernel: "python3", OutputPath: "/out/a.ipynb", CellsExecuted: 3, CellsTotal: 3,
	}, nil).Once()
	env.ExecuteWorkflow(NotebookRun, input)
	res, err := runResult(t, env)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != StatusSucceeded || res.CellsExecuted != 3 || res.Attempts != 1 || res.Kernel != "python3" {
		t.Fatalf("got %+v, want SUCCEEDED with 3 cells on attempt 1", res)
	}
	env.AssertExpectations(t)
}

func TestNotebookRunCellErrorIsNotRetried(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(RunNotebookActivity, mock.Anything, mock.Anything).
		Return(AttemptResult{}, attemptErr(failure.TypeCellError, "ValueError: boom", 1, false)).Once()
	env.ExecuteWorkflow(NotebookRun, input)
	res, err := runResult(t, env)
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || failure.Type(appErr.Type()) != failure.TypeRunFailed {
		t.Fatalf("got error %v, want %s", err, failure.TypeRunFailed)
	}
	if res.Status != StatusFailed || res.Error == nil || res.Error.Cell == nil || res.Error.Cell.EName != "ValueError" || res.Attempts != 1 {
		t.Fatalf("got %+v, want FAILED with the cell's ValueError after 1 attempt", res)
	}
	env.AssertNumberOfCalls(t, RunNotebookActivity, 1)
}

func TestNotebookRunRetriesCellErrorWhenAsked(t *testing.T) {
	env := newEnv(t)
	in := input
	in.RetryOnError, in.MaxAttempts = true, 2
	env.OnActivity(RunNotebookActivity, mock.Anything, mock.Anything).
		Return(AttemptResult{}, attemptErr(failure.TypeCellError, "ValueError: boom", 1, false)).Times(2)
	env.ExecuteWorkflow(NotebookRun, in)
	if res, _ := runResult(t, env); res.Status != StatusFailed {
		t.Fatalf("got %s, want FAILED", res.Status)
	}
	env.AssertNumberOfCalls(t, RunNotebookActivity, 2)
}

func TestNotebookRunRetriesDeadKernel(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(RunNotebookActivity, mock.Anything, mock.Anything).
		Return(AttemptResult{}, attemptErr(failure.TypeKernelDied, "the kernel died", 1, false)).Once()
	env.OnActivity(RunNotebookActivity, mock.Anything, mock.Anything).
		Return(AttemptResult{Attempt: 2, CellsExecuted: 3, CellsTotal: 3}, nil).Once()
	env.ExecuteWorkflow(NotebookRun, input)
	res, err := runResult(t, env)
	if err != nil || res.Status != StatusSucceeded || res.Attempts != 2 {
		t.Fatalf("got %+v %v, want SUCCEEDED on attempt 2", res, err)
	}
}

func TestNotebookRunGivesUpAfterMaxAttempts(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(RunNotebookActivity, mock.Anything, mock.Anything).
		Return(AttemptResult{}, attemptErr(failure.TypeKernelDied, "the kernel died", 3, false))
	env.ExecuteWorkflow(NotebookRun, input)
	res, _ := runResult(t, env)
	if res.Status != StatusFailed || res.Error.Type != failure.TypeKernelDied {
		t.Fatalf("got %+v, want FAILED with %s", res, failure.TypeKernelDied)
	}
	env.AssertNumberOfCalls(t, RunNotebookActivity, DefaultMaxAttempts)
}

func TestNotebookRunCellTimeoutIsTimedOut(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(RunNotebookActivity, mock.Anything, mock.Anything).
		Return(AttemptResult{}, attemptErr(failure.TypeCellTimeout, "a cell ran longer than 2s", 1, true)).Once()
	env.ExecuteWorkflow(NotebookRun, input)
	res, err := runResult(t, env)
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || failure.Type(appErr.Type()) != failure.TypeRunTimedOut || res.Status != StatusTimedOut {
		t.Fatalf("got %+v %v, want TIMED_OUT", res, err)
	}
}

func TestNotebookRunCancel(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(RunNotebookActivity, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in RunInput) (AttemptResult, error) {
			<-ctx.Done() // the real activity stops its process tree here
			return AttemptResult{}, ctx.Err()
		}).Once()
	env.RegisterDelayedCallback(env.CancelWorkflow, time.Second)
	env.ExecuteWorkflow(NotebookRun, input)
	res, err := runResult(t, env)
	if !temporal.IsCanceledError(err) || res.Status != StatusCanceled {
		t.Fatalf("got %+v %v, want CANCELED", res, err)
	}
}

func TestNotebookRunTimeout(t *testing.T) {
	env := newEnv(t)
	in := input
	in.Timeout = 2 * time.Second
	env.OnActivity(RunNotebookActivity, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in RunInput) (AttemptResult, error) {
			<-ctx.Done()
			return AttemptResult{}, ctx.Err()
		})
	env.ExecuteWorkflow(NotebookRun, in)
	res, err := runResult(t, env)
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || failure.Type(appErr.Type()) != failure.TypeRunTimedOut || res.Status != StatusTimedOut {
		t.Fatalf("got %+v %v, want TIMED_OUT", res, err)
	}
}

func TestActivityOptions(t *testing.T) {
	o := ActivityOptions(RunInput{})
	if o.ScheduleToCloseTimeout != DefaultRunTimeout || o.HeartbeatTimeout != DefaultHeartbeatTimeout || o.RetryPolicy.MaximumAttempts != DefaultMaxAttempts {
		t.Fatalf("defaults: got %+v", o)
	}
	has := func(types []string, typ string) bool {
		for _, x := range types {
			if x == typ {
				return true
			}
		}
		return false
	}
	if !has(o.RetryPolicy.NonRetryableErrorTypes, string(failure.TypeCellError)) {
		t.Fatal("cell errors retried by default")
	}
	o = ActivityOptions(RunInput{RetryOnError: true, MaxAttempts: 5, Timeout: time.Hour})
	if has(o.RetryPolicy.NonRetryableErrorTypes, string(failure.TypeCellError)) || o.RetryPolicy.MaximumAttempts != 5 || o.ScheduleToCloseTimeout != time.Hour {
		t.Fatalf("with retry_on_error: got %+v", o.RetryPolicy)
	}
}

// A lost worker's last heartbeat carries the run's last checkpoint: the
// run's result keeps it, so that a rerun with from_cell can use it.
func TestNotebookRunKeepsTheLostAttemptsCheckpoint(t *testing.T) {
	env := newEnv(t)
	cp := Checkpoint{Cell: 7, Attempt: 3, Path: "/data/runs/nb-1/attempt-3/checkpoints/cell-7.ckpt", SHA256: "cd", SizeBytes: 200 << 20}
	env.OnActivity(RunNotebookActivity, mock.Anything, mock.Anything).Return(AttemptResult{},
		temporal.NewHeartbeatTimeoutError(Progress{Attempt: 3, CellsDone: 8, CellsTotal: 10, Checkpoint: &cp, ResumedFromCell: 5}))
	env.ExecuteWorkflow(NotebookRun, RunInput{Notebook: "/n.ipynb", MaxAttempts: 1})
	res, err := runResult(t, env)
	if err == nil || res.Status != StatusFailed || res.Error.Type != failure.TypeWorkerLost {
		t.Fatalf("run: %v %s %+v, want FAILED WorkerLost", err, res.Status, res.Error)
	}
	if len(res.Checkpoints) != 1 || !reflect.DeepEqual(res.Checkpoints[0], cp) || res.LastCheckpoint().Cell != 7 {
		t.Errorf("checkpoints %+v, want the last heartbeat's %+v", res.Checkpoints, cp)
	}
}
