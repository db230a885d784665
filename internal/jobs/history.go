package jobs

import (
	"context"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"

	"millrace/workflows"
)

// firstEvent returns the first event of a workflow's latest run: its
// WorkflowExecutionStarted, which holds the input.
func (s *Service) firstEvent(ctx context.Context, id string) (*historypb.HistoryEvent, error) {
	it := s.Client.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	if !it.HasNext() {
		return nil, fmt.Errorf("%s has no history", id)
	}
	ev, err := it.Next()
	if err != nil {
		return nil, s.notFound(id, err)
	}
	return ev, nil
}

// StartedInput is the input a run's workflow started with, as its history
// records it: what the worker was given, every option included. A job
// outside this server's roots is answered as an unknown one.
func (s *Service) StartedInput(ctx context.Context, jobID string) (workflows.RunInput, error) {
	var in workflows.RunInput
	if _, err := s.Status(ctx, jobID); err != nil {
		return in, err
	}
	ev, err := s.firstEvent(ctx, jobID)
	if err != nil {
		return in, err
	}
	attrs := ev.GetWorkflowExecutionStartedEventAttributes()
	if attrs.GetWorkflowType().GetName() != workflows.NotebookRunWorkflow || len(attrs.GetInput().GetPayloads()) == 0 {
		return in, userErrorf("%s is not a notebook run", jobID)
	}
	if err := s.dc().FromPayload(attrs.GetInput().GetPayloads()[0], &in); err != nil {
		return in, fmt.Errorf("read input of %s: %w", jobID, err)
	}
	return in, nil
}
