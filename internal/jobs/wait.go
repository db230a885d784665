package jobs

import (
	"context"
	"errors"
	"time"

	"go.temporal.io/api/serviceerror"
)

// pollEvery is how often waiting polls a job. Heartbeats arrive about once
// a second, so polling faster would show nothing new.
const pollEvery = 500 * time.Millisecond

// WaitEnded polls a job until it ends or wait passes, calling onChange (if
// not nil) whenever its status or progress changes. It returns the last
// status seen; a job still running after wait is not an error.
func (s *Service) WaitEnded(ctx context.Context, jobID string, wait time.Duration, onChange func(Status)) (Status, error) {
	deadline := time.Now().Add(wait)
	// The workflow result long-polls: it answers the moment the run closes,
	// where polling alone would add up to pollEvery to every wait.
	closed, stop := s.WatchClose(ctx, jobID)
	defer stop()
	var last Status
	for first := true; ; first = false {
		st, err := s.FreshStatus(ctx, jobID)
		if err != nil {
			// A wait may last hours: one status read that timed out or
			// found the server unavailable (a loaded host, a restarting
			// server) is tried again at the next poll, until the wait's
			// deadline, rather than ending the wait.
			if !transient(ctx, err) || !time.Now().Before(deadline) {
				return last, err
			}
			select {
			case <-ctx.Done():
				return last, ctx.Err()
			case <-time.After(pollEvery):
			}
			continue
		}
		if onChange != nil && (first || st.Status != last.Status || st.Progress != last.Progress) {
			onChange(st)
		}
		last = st
		if st.Ended() || !time.Now().Before(deadline) {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-closed:
			closed = nil // once: if Get failed, fall back to polling
		case <-time.After(min(pollEvery, time.Until(deadline))):
		}
	}
}

// transient reports whether err is a status read that may succeed if tried
// again: the call's own deadline passed (not the caller's), or the server
// was unavailable.
func transient(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var unavailable *serviceerror.Unavailable
	var deadline *serviceerror.DeadlineExceeded
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &unavailable) || errors.As(err, &deadline)
}

// WatchClose long-polls a workflow until it closes: the channel is closed
// then, or when the poll fails or stop is called. Call stop when done. A
// follower selects on it beside its poll timer, to read the end at once
// rather than at its next poll; once the poll has returned, this service's
// status answers read the run again instead of serving a cached RUNNING.
//
// The poll's context has no deadline, only cancellation. Given a deadline,
// the server answers the long poll empty a second before it, and the SDK
// polls again at once, which the server answers at once: about 550 calls
// in that last second (measured on the embedded server). Cancelled
// instead, the poll ends with the one call in flight.
func (s *Service) WatchClose(ctx context.Context, id string) (closed <-chan struct{}, stop func()) {
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	unlink := context.AfterFunc(ctx, cancel)
	done := make(chan struct{})
	go func() {
		_ = s.Client.GetWorkflow(pctx, id, "").Get(pctx, nil)
		if pctx.Err() == nil {
			// Closed, or the poll failed: either way a fresh read costs
			// one Describe and cannot be wrong.
			s.statuses.closed(id)
		}
		close(done)
	}()
	return done, func() { unlink(); cancel() }
}
