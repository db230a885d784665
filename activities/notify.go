package activities

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"millrace/internal/failure"
	"millrace/internal/notify"
	"millrace/workflows"
)

// DeliverNotification POSTs a completion webhook once; the Notify workflow
// retries it. A refusal by the receiver is final (non-retryable, with the
// attempt number as details). A missing secret or a host this worker's
// allow-list does not permit is retried: the operator can fix the worker's
// configuration within the delivery window, and nothing is lost meanwhile.
func (a *Activities) DeliverNotification(ctx context.Context, in workflows.NotifyInput) (workflows.NotifyAttempt, error) {
	attempt := int(activity.GetInfo(ctx).Attempt)
	if err := notify.CheckURL(in.URL, a.NotifyAllow); err != nil {
		return workflows.NotifyAttempt{}, errors.New("this worker does not allow the webhook: " + err.Error())
	}
	if a.NotifySecret == "" {
		return workflows.NotifyAttempt{}, errors.New("this worker has no webhook secret to sign with: set MILLRACE_NOTIFY_SECRET or --notify-secret-file on the workers")
	}
	body, err := json.Marshal(in.Payload)
	if err != nil {
		return workflows.NotifyAttempt{}, temporal.NewNonRetryableApplicationError("encode the webhook: "+err.Error(), string(failure.TypeNotifyRejected), err, attempt)
	}
	code, err := notify.Post(ctx, notify.NewClient(a.NotifyNetworks), notify.Delivery{
		URL: in.URL, Body: body, Secret: []byte(a.NotifySecret), ID: in.Payload.DeliveryID, Event: in.Payload.Event,
	})
	var rejected *notify.RejectedError
	switch {
	case errors.As(err, &rejected):
		return workflows.NotifyAttempt{}, temporal.NewNonRetryableApplicationError(err.Error(), string(failure.TypeNotifyRejected), nil, attempt)
	case err != nil:
		a.logger().Warn("webhook delivery failed; it will be retried", "url", notify.Redact(in.URL), "job_id", in.Payload.JobID, "attempt", attempt, "error", err)
		return workflows.NotifyAttempt{}, temporal.NewApplicationError(err.Error(), "NotifyFailed", attempt)
	}
	return workflows.NotifyAttempt{Attempt: attempt, At: time.Now(), Code: code}, nil
}
