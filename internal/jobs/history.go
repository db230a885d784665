package jobs

import (
	"context"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
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
