package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"

	"millrace/internal/failure"
	"millrace/internal/rundir"
	"millrace/workflows"
)

// HeartbeatLog tells a worker when the Temporal server last accepted a
// heartbeat of an attempt; connect.Heartbeats is the worker's, fed by its
// client's connection.
type HeartbeatLog interface {
	// Last is when the server last accepted a heartbeat of the task (the
	// moment that heartbeat was sent), or before any was accepted when
	// the first was sent; zero when none was sent. gone is the server's
	// answer that it no longer knows the task.
	Last(token []byte) (at time.Time, gone error)
	// Hold keeps the task's record until release is called.
	Hold(token []byte) (release func())
}

// FenceAfter is how long a running attempt goes on without an accepted
// heartbeat before its worker stops it: half the attempt's heartbeat
// timeout T.
//
// A worker cut off from the server (a network partition) keeps running
// its attempt: a heartbeat that times out is only logged by the SDK,
// which ends the activity's context only on the server's NotFound or an
// error its retries outlast (connection refused). The server
// times the attempt out T after the last heartbeat it recorded and
// another worker starts the retry, so without a fence two kernels would
// run the same notebook side by side, writing the same files. The fence
// stops the attempt before the server can even time it out:
//
//   - S is when the server recorded the attempt's last heartbeat; it times
//     the attempt out at S+T at the earliest, and the retry starts later
//     still (the retry policy's first interval, then a poll).
//   - The worker measures from L, when it sent that heartbeat, so L <= S.
//   - It looks once every heartbeat period p, so it stops the attempt by
//     L+F+p, and the stop ends the kernel within its grace g (SIGTERM,
//     then SIGKILL): the kernel is dead by S+F+p+g.
//
// Only durations are compared, so the two hosts' clocks need not agree.
// F+p+g <= T keeps the kernel dead before the retry can start. F = T/2
// rides out a silence of half the timeout (7.5 s of the default 15 s),
// counted from the last accepted heartbeat: a quiet attempt sends one only
// every keep-alive K = T/4 (heartbeat.ScheduleFor) and again at every look
// after one fails, so it rides out T/2-K of lost contact, a busy one
// T/2-p. F = T/2 leaves the stop g = T-F-p, capped at the worker's grace
// (fenceGrace: 5 s by default; 2 s with a 6 s timeout). A timeout of 2p or less leaves
// no grace: the kernel is killed at once.
func FenceAfter(heartbeatTimeout time.Duration) time.Duration {
	return heartbeatTimeout / 2
}

// fenceGrace is the grace of a fenced attempt's stop: the worker's grace,
// cut to what the heartbeat timeout leaves after FenceAfter and one
// heartbeat period (see FenceAfter).
func fenceGrace(heartbeatTimeout, every, grace time.Duration) time.Duration {
	return max(0, min(grace, heartbeatTimeout-FenceAfter(heartbeatTimeout)-every))
}

// fence watches one attempt's contact with the server. A nil fence (no
// heartbeat log, or no heartbeat timeout: the server then never gives
// the attempt to another worker while it runs) never trips.
type fence struct {
	log     HeartbeatLog
	token   []byte
	after   time.Duration // FenceAfter the heartbeat timeout
	grace   time.Duration // fenceGrace
	start   time.Time     // the fence's start: the clock before any heartbeat
	now     func() time.Time
	release func()
}

// fence starts the fence of the attempt ctx runs; close it when the
// executor is gone.
func (a *Activities) fence(ctx context.Context, every, grace time.Duration) *fence {
	info := activity.GetInfo(ctx)
	if a.Heartbeats == nil || info.HeartbeatTimeout <= 0 {
		return nil
	}
	return newFence(a.Heartbeats, info.TaskToken, info.HeartbeatTimeout, every, grace, time.Now)
}

func newFence(log HeartbeatLog, token []byte, heartbeatTimeout, every, grace time.Duration, now func() time.Time) *fence {
	return &fence{
		log: log, token: token, now: now, start: now(),
		after:   FenceAfter(heartbeatTimeout),
		grace:   fenceGrace(heartbeatTimeout, every, grace),
		release: log.Hold(token),
	}
}

// lost says whether the attempt must stop: nil while the server accepted
// a heartbeat within the fence's interval, else why and with what grace.
// cause is why the activity's context ended, nil while it runs: the SDK
// ends it when a heartbeat failed with a server's or connection's error
// (NotFound at once, Unavailable once its retries are spent), and that
// too is lost contact, not a cancel.
func (f *fence) lost(cause error) *lostContact {
	if f == nil {
		return nil
	}
	last, gone := f.log.Last(f.token)
	var se serviceerror.ServiceError
	if gone == nil && errors.As(cause, &se) {
		if _, ok := se.(*serviceerror.NotFound); ok {
			gone = cause
		}
	}
	if gone != nil {
		// The server already timed the attempt out: its retry may be
		// starting now, so the kernel goes at once.
		return &lostContact{gone: gone}
	}
	if last.IsZero() {
		last = f.start
	}
	if silent := f.now().Sub(last); silent > f.after || se != nil {
		return &lostContact{silent: silent, grace: f.grace}
	}
	return nil
}

func (f *fence) close() {
	if f != nil {
		f.release()
	}
}

// lostContact is why a fence stopped an attempt.
type lostContact struct {
	silent time.Duration // since the last accepted heartbeat
	gone   error         // the server's answer that it no longer knows the attempt
	grace  time.Duration // of the stop
}

func (l *lostContact) Error() string {
	const why = "so that the retry on another worker does not run beside it"
	if l.gone != nil {
		return "the Temporal server no longer knows this attempt (its heartbeat timeout passed): stopped it " + why
	}
	silent := l.silent.Truncate(time.Second)
	if silent == 0 {
		silent = l.silent.Truncate(time.Millisecond)
	}
	return fmt.Sprintf("lost contact with the Temporal server for %s: stopped this attempt %s", silent, why)
}

// asLostContact is the fence's reason when watch ended the attempt for it.
func asLostContact(err error) *lostContact {
	var l *lostContact
	if errors.As(err, &l) {
		return l
	}
	return nil
}

// endFenced records an attempt its fence stopped as lost, as the next
// attempt would have (closeLostAttempts), and returns a retryable failure:
// should the server still hear it, the run is retried, not failed.
func (a *Activities) endFenced(at *attempt, res *workflows.AttemptResult, l *lostContact) error {
	msg := l.Error()
	res.ResumedFromCell = at.progress.read().ResumedFromCell
	_ = rundir.WriteEnd(at.dir, rundir.AttemptEnd{Attempt: at.n, EndedAt: res.EndedAt, Outcome: string(failure.KindLost), Message: msg, Retried: at.n < maxAttempts(at.in), ResumedFromCell: res.ResumedFromCell})
	at.log.Warn("attempt fenced", "reason", msg)
	return a.fail(res, failure.TypeWorkerLost, msg, nil, false)
}
