package workflows

import (
	"errors"
	"strconv"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"millrace/internal/failure"
)

// NotifyWorkflow delivers one completion webhook. A run or batch with a
// notify_url starts it as an abandoned child when it ends, so its own record
// closes at once while the delivery is retried for as long as NotifyWindow,
// surviving worker deaths like any workflow.
const NotifyWorkflow = "Notify"

// NotifyIDPrefix starts the id of a notification workflow: the prefix plus
// the job id (and the round, for a batch), so a job's status finds it.
const NotifyIDPrefix = "notify-"

// NotifyWindow is how long a failing delivery is retried, with exponential
// backoff capped at NotifyMaxBackoff, before it is recorded as failed: long
// enough for a receiver to be redeployed or a holiday outage to end.
const (
	NotifyWindow     = 24 * time.Hour
	NotifyMaxBackoff = 10 * time.Minute
)

// NotifyID is the notification workflow id of a job.
func NotifyID(jobID string, round int) string {
	if round > 1 {
		return NotifyIDPrefix + jobID + "." + strconv.Itoa(round)
	}
	return NotifyIDPrefix + jobID
}

// NotifyPayload is the JSON body of a completion webhook.
type NotifyPayload struct {
	Event string `json:"event"` // "run.ended" or "batch.ended"
	// DeliveryID is the same on every attempt of one delivery (the X-Millrace-Delivery
	// header too): a receiver that saw it already can drop a repeat.
	DeliveryID string       `json:"delivery_id"`
	JobID      string       `json:"job_id"`
	Status     string       `json:"status"`
	Name       string       `json:"name,omitempty"` // a batch's name
	Notebook   string       `json:"notebook,omitempty"`
	OutputPath string       `json:"output_path,omitempty"`
	StartedAt  time.Time    `json:"started_at"`
	EndedAt    time.Time    `json:"ended_at"`
	Duration   float64      `json:"duration_seconds"`
	Attempts   int          `json:"attempts,omitempty"`
	Error      *NotifyError `json:"error,omitempty"`
	Nodes      []NotifyNode `json:"nodes,omitempty"` // a batch's nodes
	// Checkpoint is a run's last complete checkpoint: a rerun with
	// from_cell above its cell can go on from it.
	Checkpoint *CheckpointSummary `json:"checkpoint,omitempty"`
}

// NotifyError summarizes why a run did not succeed.
type NotifyError struct {
	Type      failure.Type `json:"type"`
	Message   string       `json:"message"`
	CellIndex *int         `json:"cell_index,omitempty"`
	EName     string       `json:"ename,omitempty"`
	EValue    string       `json:"evalue,omitempty"`
}

// NotifyNode is a batch node in a webhook.
type NotifyNode struct {
	ID         string `json:"id"`
	JobID      string `json:"job_id"`
	Status     string `json:"status"`
	OutputPath string `json:"output_path,omitempty"`
}

// NotifyInput is the input of the Notify workflow and its activity.
type NotifyInput struct {
	URL     string        `json:"url"`
	Payload NotifyPayload `json:"payload"`
}

// NotifyAttempt is what a successful delivery attempt returns.
type NotifyAttempt struct {
	Attempt int       `json:"attempt"`
	At      time.Time `json:"at"`
	Code    int       `json:"code"`
}

func notifyError(e *RunError) *NotifyError {
	if e == nil {
		return nil
	}
	n := &NotifyError{Type: e.Type, Message: e.Message}
	if len(n.Message) > 2000 {
		n.Message = n.Message[:2000] + "..."
	}
	if c := e.Cell; c != nil {
		idx := c.Index
		n.CellIndex, n.EName, n.EValue = &idx, c.EName, c.EValue
	}
	return n
}

// Notify delivers a webhook: one activity, retried with backoff within
// NotifyWindow. It records a delivery that never got through as a
// Notification with status FAILED (its own result), not as a workflow
// failure: the job did not fail, its webhook did.
func Notify(ctx workflow.Context, in NotifyInput) (Notification, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		ScheduleToCloseTimeout: NotifyWindow,
		// Covers one POST (its client times out at 30 s).
		StartToCloseTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        NotifyMaxBackoff,
			NonRetryableErrorTypes: []string{string(failure.TypeNotifyRejected)},
		},
	})
	var got NotifyAttempt
	err := workflow.ExecuteActivity(ctx, NotifyActivity, in).Get(ctx, &got)
	n := Notification{URL: in.URL, Status: NotifyDelivered, Attempts: got.Attempt, Delivered: got.At}
	if err != nil {
		n.Status, n.Delivered = NotifyFailed, time.Time{}
		n.Error = err.Error()
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) {
			n.Error = appErr.Message()
			if appErr.HasDetails() {
				_ = appErr.Details(&n.Attempts)
			}
		}
	}
	return n, nil
}

// startNotify starts the Notify child for a job that ended and waits only
// until it has started: abandoned, it outlives the job's workflow.
func startNotify(ctx workflow.Context, id string, in NotifyInput) {
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:        id,
		ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_ABANDON,
	})
	f := workflow.ExecuteChildWorkflow(cctx, NotifyWorkflow, in)
	if err := f.GetChildWorkflowExecution().Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Error("start the completion webhook", "id", id, "error", err)
	}
}

// runPayload is the webhook of a run that ended.
func runPayload(ctx workflow.Context, r RunResult) NotifyPayload {
	ex := workflow.GetInfo(ctx).WorkflowExecution
	return NotifyPayload{
		Event: "run.ended", DeliveryID: ex.ID + "/" + ex.RunID, JobID: ex.ID, Status: r.Status,
		Notebook: r.Notebook, OutputPath: r.OutputPath, StartedAt: r.StartedAt, EndedAt: r.EndedAt,
		Duration: r.Duration, Attempts: r.Attempts, Error: notifyError(r.Error), Checkpoint: r.LastCheckpoint().Summary(),
	}
}

// batchPayload is the webhook of a batch that ended.
func batchPayload(ctx workflow.Context, s BatchState) NotifyPayload {
	info := workflow.GetInfo(ctx)
	ex := info.WorkflowExecution
	start, end := info.WorkflowStartTime, workflow.Now(ctx)
	p := NotifyPayload{
		Event: "batch.ended", DeliveryID: ex.ID + "/" + ex.RunID, JobID: ex.ID, Status: s.Status, Name: s.Name,
		StartedAt: start, EndedAt: end, Duration: end.Sub(start).Seconds(),
	}
	for _, n := range s.Nodes {
		p.Nodes = append(p.Nodes, NotifyNode{ID: n.ID, JobID: n.JobID, Status: n.Status, OutputPath: n.Output})
		if p.Error == nil && n.Error != nil && n.Status != StatusSucceeded {
			p.Error = notifyError(n.Error)
			p.Error.Message = "node " + n.ID + ": " + p.Error.Message
		}
	}
	return p
}
