package mcpserver

import (
	"context"
	"errors"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"millrace/internal/jobs"
	"millrace/workflows"
)

// CancelJobArgs are cancel_job's arguments.
type CancelJobArgs struct {
	JobID  string `json:"job_id" jsonschema:"the job (nb-...) or batch (batch-...) to stop"`
	Reason string `json:"reason,omitempty" jsonschema:"why, recorded with the cancellation"`
}

func (t *tools) cancelJob() server.ServerTool {
	tool := mcp.NewTool("cancel_job",
		mcp.WithToolTitle("Cancel a job"),
		mcp.WithDescription(`Stop a PENDING or RUNNING notebook job: its kernel and every process it started are stopped, the output notebook keeps the cells executed so far, and the job ends CANCELED. Waits up to about 15 seconds for the stop and returns the job's status after it.

A batch id cancels the batch: every running node is stopped the same way and waiting nodes are SKIPPED; the answer is the batch's overall status (get_batch_status has the nodes).

Canceling a job that already ended SUCCEEDED, FAILED or TIMED_OUT is an error (there is nothing to stop); canceling a job that is already CANCELED is harmless and returns its status.`),
		inputSchema[CancelJobArgs](nil),
		mcp.WithOutputSchema[jobs.Status](),
		annotations("Cancel a job", false, true, true),
	)
	return server.ServerTool{Tool: tool, Handler: handle(t, t.cancel)}
}

func (t *tools) cancel(ctx context.Context, _ mcp.CallToolRequest, args CancelJobArgs) (jobs.Status, string, []mcp.Content, error) {
	if jobs.IsBatchID(args.JobID) {
		return t.cancelBatch(ctx, args)
	}
	st, err := t.svc.Cancel(ctx, args.JobID, args.Reason)
	var u *jobs.UserError
	if errors.As(err, &u) && st.JobID != "" && st.Status == workflows.StatusCanceled {
		// A second cancel: the job is where the caller wants it.
		return st, statusLine(st) + "\nthe job was already canceled; nothing more to do", nil, nil
	}
	if err != nil {
		return st, "", nil, err
	}
	text := statusLine(st)
	if !st.Ended() {
		text += "\nthe cancel was requested but the run has not stopped yet: check get_job_status in a few seconds"
	}
	return st, text, nil, nil
}

// cancelBatch cancels a batch; its answer is the batch's overall status in
// the shape of a job status, with the nodes in the text.
func (t *tools) cancelBatch(ctx context.Context, args CancelJobArgs) (jobs.Status, string, []mcp.Content, error) {
	bst, err := t.svc.CancelBatch(ctx, args.JobID, args.Reason)
	var u *jobs.UserError
	if errors.As(err, &u) && bst.Status == workflows.StatusCanceled {
		err = nil // a second cancel: the batch is where the caller wants it
	}
	if err != nil {
		return jobs.Status{}, "", nil, err
	}
	st := jobs.Status{JobID: bst.BatchID, Status: bst.Status, CreatedAt: bst.CreatedAt, EndedAt: bst.EndedAt, Message: "batch: get_batch_status shows its nodes"}
	return st, batchText(bst), nil, nil
}
