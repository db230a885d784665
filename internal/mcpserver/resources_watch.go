package mcpserver

import (
	"context"
	"runtime/pprof"
	"time"

	"millrace/internal/jobs"
)

// ResourceProgressEvery bounds progress notifications: a subscriber is sent
// at most one per job per ResourceProgressEvery for cell changes (status
// changes are sent at once).
const ResourceProgressEvery = 5 * time.Second

// WatchLabel is the pprof label, valued with the job id, on the goroutines
// that watch a job for its subscribers: a goroutine profile says which job
// each one follows (and tests find them by it).
const WatchLabel = "millrace_resource_watch"

// watcher follows one job for all its subscribers. It polls the job
// service through jobs.Service.WaitEnded (a Status call every half second,
// and a long poll that sees the end at once), whatever the number of
// subscribers, and stops when the last one leaves or the job ends.
//
// What is sent, to every subscribed URI of the job:
//   - a status change (PENDING, RUNNING, a retry, the end), at once;
//   - a progress change (cell k/n), at most once per progressEvery: a
//     client that follows a run wants to see it move (that is what a
//     person watching a long notebook asks for), but each notification
//     costs the client a read, and a notebook of many quick cells would
//     otherwise send several a second;
//   - the end, once, after which the watcher is gone and the
//     subscriptions to that job with it.
type watcher struct {
	s      *subscriptions
	jobID  string
	cancel context.CancelFunc
	// subs are the subscribers and the URIs of this job each follows;
	// guarded by s.mu.
	subs map[subscriber]map[string]bool
}

// startWatcher registers and starts a watcher for jobID, whose status is
// last. s.mu is held.
func (s *subscriptions) startWatcher(jobID string, last jobs.Status) *watcher {
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{s: s, jobID: jobID, cancel: cancel, subs: map[subscriber]map[string]bool{}}
	s.watchers[jobID] = w
	go pprof.Do(ctx, pprof.Labels(WatchLabel, jobID), func(ctx context.Context) { w.run(ctx, last) })
	return w
}

// run polls in windows of progressEvery: a status change is sent as soon
// as it is seen, a progress change when its window closes.
func (w *watcher) run(ctx context.Context, last jobs.Status) {
	defer w.cancel()
	for {
		var moved *jobs.Status
		st, err := w.s.svc.WaitEnded(ctx, w.jobID, w.s.progressEvery, func(st jobs.Status) {
			switch {
			case st.Ended():
				// Sent below, once the watcher is out of the registry.
			case st.Status != last.Status:
				last, moved = st, nil
				w.notify()
			case st.Progress != last.Progress:
				moved = &st
			}
		})
		switch {
		case ctx.Err() != nil:
			return
		case jobs.IsUserError(err):
			// The job is gone (past the namespace's retention): a read
			// now says so. Tell the subscribers once, and stop.
			w.finish()
			return
		case err != nil:
			w.s.logger.Warn("watching a job for its subscribers", "job", w.jobID, "error", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(w.s.retryEvery):
			}
			continue
		case st.Ended():
			w.finish()
			return
		}
		if moved != nil {
			last = *moved
			w.notify()
		}
	}
}

// notify sends every subscriber of the job a notification for each URI it
// follows.
func (w *watcher) notify() {
	w.s.mu.Lock()
	ns := w.notifications()
	w.s.mu.Unlock()
	w.s.send(w.jobID, ns)
}

// finish takes the watcher out of the registry and sends the last
// notifications. A subscriber added from then on starts a new watcher from
// the status it read when subscribing, which sees the end in its first
// poll: no subscriber misses it.
func (w *watcher) finish() {
	w.s.mu.Lock()
	if w.s.watchers[w.jobID] == w {
		delete(w.s.watchers, w.jobID)
	}
	ns := w.notifications()
	w.subs = nil
	w.s.mu.Unlock()
	w.s.send(w.jobID, ns)
}
