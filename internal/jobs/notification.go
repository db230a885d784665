package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/converter"

	"millrace/internal/notify"
	"millrace/workflows"
)

// memoNotifyURL reads the notify_url a job was started with ("" = none).
// It is shown only redacted (notify.Redact): its path and query often hold
// the receiver's secret, and every client may read a job's status.
func memoNotifyURL(memo *commonpb.Memo, dc converter.DataConverter) string {
	var u string
	if p, ok := memo.GetFields()[memoNotify]; ok {
		_ = dc.FromPayload(p, &u)
	}
	return u
}

// notification reads how a job's completion webhook is going from its
// Notify workflow: PENDING with the last attempt's error while it is
// retried, then the workflow's result. Before the job ends there is
// nothing to say yet (nil).
func (s *Service) notification(ctx context.Context, id, url string, ended bool) *workflows.Notification {
	if url == "" || !ended {
		return nil
	}
	shown := notify.Redact(url)
	n := &workflows.Notification{URL: shown, Status: workflows.NotifyPending}
	desc, err := s.describe(ctx, id)
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		// The job's workflow starts the delivery as it closes.
		return n
	case err != nil:
		n.Error = "could not read the delivery: " + err.Error()
		return n
	}
	if desc.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		for _, pa := range desc.GetPendingActivities() {
			n.Attempts = int(pa.GetAttempt()) - 1
			if pa.GetState() == enumspb.PENDING_ACTIVITY_STATE_STARTED {
				n.Attempts = int(pa.GetAttempt())
			}
			if lf := pa.GetLastFailure(); lf != nil {
				n.Error = strings.TrimSpace(s.failureMessage(lf))
				if t := pa.GetNextAttemptScheduleTime(); t != nil {
					n.Error += fmt.Sprintf(" (attempt %d of delivery failed; next attempt at %s)", pa.GetAttempt()-1, t.AsTime().UTC().Format("15:04:05Z"))
				}
			}
		}
		return n
	}
	if err := s.Client.GetWorkflow(ctx, id, "").Get(ctx, n); err != nil {
		return &workflows.Notification{URL: shown, Status: workflows.NotifyFailed, Error: "the delivery workflow ended without a record: " + err.Error()}
	}
	n.URL = shown // the record holds the URL as given
	return n
}
