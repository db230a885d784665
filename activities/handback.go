package activities

import (
	"errors"
	"time"

	"millrace/internal/executor"
	"millrace/internal/failure"
	"millrace/internal/rundir"
	"millrace/workflows"
)

// workerStopped is why an attempt ended when its worker was told to stop
// (SIGTERM): the attempt had its grace to end by itself, was stopped, and
// is handed back to the server as a retryable failure. Without this, the
// SDK cancels the attempt only when its stop timeout ends and reports
// nothing, so the server noticed the attempt gone only at its heartbeat
// timeout (15 s by default) and recorded it as lost, as if the worker had
// crashed; handed back, the retry starts on another worker after the
// retry policy's first backoff, and the record says what happened.
type workerStopped struct{}

func (workerStopped) Error() string {
	return "the worker running this attempt was stopped (SIGTERM) before the run ended: it continues on another worker"
}

// asWorkerStopped reports whether watch ended the attempt for its
// worker's stop.
func asWorkerStopped(err error) bool {
	var w workerStopped
	return errors.As(err, &w)
}

// endStopped records an attempt its worker's stop ended, and returns the
// retryable failure that hands the run back to the server. It counts as
// an attempt, as a lost one does: the retry policy has no way to leave an
// attempt uncounted, and a run that resumes from its last checkpoint
// loses little by it.
func (a *Activities) endStopped(at *attempt, res *workflows.AttemptResult) error {
	msg := workerStopped{}.Error()
	res.ResumedFromCell = at.progress.read().ResumedFromCell
	_ = rundir.WriteEnd(at.dir, rundir.AttemptEnd{Attempt: at.n, EndedAt: res.EndedAt, Outcome: string(failure.KindLost), Message: msg, Retried: at.n < maxAttempts(at.in), ResumedFromCell: res.ResumedFromCell})
	at.log.Info("attempt handed back", "reason", msg)
	return a.fail(res, failure.TypeWorkerLost, msg, nil, false)
}

// HandBackWithin is how long a worker told to stop waits for its
// attempts (the SDK's WorkerStopTimeout), for a grace of grace: grace
// for a run to end by itself, grace for its stop (SIGTERM, then
// SIGKILL), and handBackMargin to clean up and report the hand-back. The
// SDK cancels what still runs after it and reports nothing, which would
// leave the server to find the attempt lost at its heartbeat timeout.
func HandBackWithin(grace time.Duration) time.Duration { return 2*grace + handBackMargin }

// handBackMargin is the part of HandBackWithin past the two graces: the
// sweep of the process tree, draining its output, the end record and
// the failure's trip to the server, which take well under a second.
const handBackMargin = 5 * time.Second

// grace is the attempt's SIGTERM-to-SIGKILL time.
func (a *Activities) grace() time.Duration {
	if a.Grace > 0 {
		return a.Grace
	}
	return executor.DefaultGrace
}
