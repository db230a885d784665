package jobs

import (
	"context"
	"fmt"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/workflowservice/v1"
)

// cancelWait is how long Cancel waits for the run to reach CANCELED before
// it answers with the status it has.
const cancelWait = 15 * time.Second

// Cancel asks a running job to stop: its workflow is canceled, its activity
// stops the process tree (SIGTERM, grace, SIGKILL), and the job ends
// CANCELED. Canceling an ended job is an error; canceling twice is not.
func (s *Service) Cancel(ctx context.Context, jobID, reason string) (Status, error) {
	st, err := s.FreshStatus(ctx, jobID)
	if err != nil {
		return Status{}, err
	}
	if st.Ended() {
		return st, userErrorf("job %s already ended %s; there is nothing to cancel", jobID, st.Status)
	}
	if err := s.requestCancel(ctx, jobID, reason); err != nil {
		return Status{}, err
	}
	// No answer read before the request may be served after it.
	s.statuses.forget(jobID)
	return s.WaitEnded(ctx, jobID, cancelWait, nil)
}

// CancelBatch cancels a running batch: every running node is canceled and
// its processes stopped before the batch ends CANCELED.
func (s *Service) CancelBatch(ctx context.Context, batchID, reason string) (BatchStatus, error) {
	st, err := s.BatchStatus(ctx, batchID)
	if err != nil {
		return BatchStatus{}, err
	}
	if st.Ended() {
		return st, userErrorf("batch %s already ended %s; there is nothing to cancel", batchID, st.Status)
	}
	if err := s.requestCancel(ctx, batchID, reason); err != nil {
		return BatchStatus{}, err
	}
	closed, stop := s.WatchClose(ctx, batchID)
	select {
	case <-closed:
	case <-time.After(2 * cancelWait):
	case <-ctx.Done():
	}
	stop()
	return s.BatchStatus(ctx, batchID)
}

func (s *Service) requestCancel(ctx context.Context, id, reason string) error {
	if reason == "" {
		reason = "canceled by a millrace client"
	}
	_, err := s.Client.WorkflowService().RequestCancelWorkflowExecution(ctx, &workflowservice.RequestCancelWorkflowExecutionRequest{
		Namespace:         s.Namespace,
		WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: id},
		Identity:          "millrace",
		Reason:            reason,
	})
	if err != nil {
		return fmt.Errorf("cancel %s: %w", id, err)
	}
	return nil
}
