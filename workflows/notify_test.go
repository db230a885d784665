package workflows

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"millrace/internal/failure"
)

func notifyActivity(ctx context.Context, in NotifyInput) (NotifyAttempt, error) {
	return NotifyAttempt{}, errors.New("not mocked")
}

func newNotifyEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	env := newEnv(t)
	env.RegisterActivityWithOptions(notifyActivity, activity.RegisterOptions{Name: NotifyActivity})
	env.RegisterWorkflowWithOptions(Notify, workflow.RegisterOptions{Name: NotifyWorkflow})
	return env
}

// A receiver that is down is retried with backoff until it answers.
func TestNotifyRetriesUntilDelivered(t *testing.T) {
	env := newNotifyEnv(t)
	calls := 0
	env.OnActivity(NotifyActivity, mock.Anything, mock.Anything).Return(func(_ context.Context, in NotifyInput) (NotifyAttempt, error) {
		calls++
		if calls < 3 {
			return NotifyAttempt{}, temporal.NewApplicationError("POST: the receiver answered 503", "NotifyFailed", calls)
		}
		return NotifyAttempt{Attempt: calls, Code: 200}, nil
	})
	env.ExecuteWorkflow(Notify, NotifyInput{URL: "http://hooks.test/x", Payload: NotifyPayload{JobID: "nb-1"}})
	var n Notification
	if err := env.GetWorkflowResult(&n); err != nil {
		t.Fatal(err)
	}
	if n.Status != NotifyDelivered || n.Attempts != 3 || calls != 3 {
		t.Errorf("notification %+v after %d calls, want DELIVERED on attempt 3", n, calls)
	}
}

// A refusal is final and recorded with its attempt, not a workflow failure.
func TestNotifyRejectedIsRecorded(t *testing.T) {
	env := newNotifyEnv(t)
	env.OnActivity(NotifyActivity, mock.Anything, mock.Anything).Return(NotifyAttempt{},
		temporal.NewNonRetryableApplicationError("the receiver answered 404 Not Found", string(failure.TypeNotifyRejected), nil, 1)).Once()
	env.ExecuteWorkflow(Notify, NotifyInput{URL: "http://hooks.test/x"})
	var n Notification
	if err := env.GetWorkflowResult(&n); err != nil {
		t.Fatal(err)
	}
	if n.Status != NotifyFailed || n.Attempts != 1 || n.Error != "the receiver answered 404 Not Found" {
		t.Errorf("notification = %+v", n)
	}
	env.AssertExpectations(t)
}

// A failed run with a notify_url starts the Notify child with the run's
// outcome; the run's own result is unchanged.
func TestNotebookRunStartsNotify(t *testing.T) {
	env := newNotifyEnv(t)
	env.OnActivity(RunNotebookActivity, mock.Anything, mock.Anything).Return(AttemptResult{}, attemptErr(failure.TypeCellError, "cell 2 raised ValueError", 1, true))
	var got NotifyInput
	env.OnWorkflow(NotifyWorkflow, mock.Anything, mock.Anything).Return(func(_ workflow.Context, in NotifyInput) (Notification, error) {
		got = in
		return Notification{Status: NotifyDelivered}, nil
	})
	env.ExecuteWorkflow(NotebookRun, RunInput{Notebook: "/n.ipynb", Output: "/o.ipynb", NotifyURL: "http://hooks.test/x"})
	res, err := runResult(t, env)
	if err == nil || res.Status != StatusFailed {
		t.Fatalf("run: %v %s, want FAILED", err, res.Status)
	}
	p := got.Payload
	if got.URL != "http://hooks.test/x" || p.Event != "run.ended" || p.Status != StatusFailed || p.OutputPath != "/o.ipynb" ||
		p.Error == nil || p.Error.EName != "ValueError" || p.Error.CellIndex == nil || *p.Error.CellIndex != 2 || p.DeliveryID == "" ||
		p.Checkpoint == nil || p.Checkpoint.Cell != 1 || p.Checkpoint.SizeBytes != 10 {
		t.Errorf("notify input = %+v", got)
	}
}

// Without notify_url nothing is started: old histories replay unchanged.
func TestNotebookRunWithoutNotify(t *testing.T) {
	env := newNotifyEnv(t)
	env.OnActivity(RunNotebookActivity, mock.Anything, mock.Anything).Return(AttemptResult{Attempt: 1, CellsExecuted: 1, CellsTotal: 1}, nil)
	started := false
	env.OnWorkflow(NotifyWorkflow, mock.Anything, mock.Anything).Return(func(workflow.Context, NotifyInput) (Notification, error) {
		started = true
		return Notification{}, nil
	})
	env.ExecuteWorkflow(NotebookRun, RunInput{Notebook: "/n.ipynb"})
	if _, err := runResult(t, env); err != nil || started {
		t.Errorf("err %v, notify started %v", err, started)
	}
}

func TestNotifyID(t *testing.T) {
	if NotifyID("nb-1", 0) != "notify-nb-1" || NotifyID("batch-1", 1) != "notify-batch-1" || NotifyID("batch-1", 3) != "notify-batch-1.3" {
		t.Error(NotifyID("nb-1", 0), NotifyID("batch-1", 1), NotifyID("batch-1", 3))
	}
}
