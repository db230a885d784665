package jobs

import (
	"container/list"
	"context"
	"sync"
	"time"

	"millrace/workflows"
)

// Reading a job's status costs the Temporal server a
// DescribeWorkflowExecution (and, for a closed run, its result and its
// webhook's workflow): with 50 callers while 10 runs execute on a 2-core
// host, that alone measured 100 ms p99. So the service keeps each job's
// last answer and serves it while it is young enough:
//
//   - A running job's answer is served until it is MaxStatusStaleness old.
//     Past statusRefreshAfter it is still served, and read again in the
//     background, so a job polled steadily makes no caller wait for the
//     server unless that read takes longer than the rest of the bound.
//   - Callers that need a read nobody has started yet share one: concurrent
//     status calls for a job cost one Describe, not one each.
//   - A closed run's answer is kept for good: a closed workflow does not
//     change (millrace never resets a run, continues one as new, or reuses
//     a job id). Its webhook's delivery may still be PENDING; such an
//     answer is not final and ages like a running one.
//   - This service's own cancel forgets the job's answer, and a read that
//     began before it is not kept, so the next call reads the run again.
//     So does another view showing the run closed (a batch's status, a
//     listing): a status call never contradicts what the caller has just
//     been shown.
//
// What a caller is guaranteed: every answer says when its read began
// (as_of), and for a run not yet closed that is at most MaxStatusStaleness
// before the call was made; once this service has read a run closed, or
// shown it closed in a batch's status or a listing, or canceled it, it
// never shows that run PENDING or RUNNING again. So a run
// terminated from outside (the Temporal CLI, another server) never shows
// RUNNING to a call made MaxStatusStaleness after it closed, and a run
// this service canceled shows CANCELED as soon as the cancel returns it.

// MaxStatusStaleness is how old a running job's status may be when it is
// served. Heartbeats, and so progress, reach the server about once a
// second: a fresher answer would rarely show anything new, and one second
// is short next to any poll a person or a model makes.
const MaxStatusStaleness = time.Second

// statusRefreshAfter is the age from which a served answer is also read
// again in the background, so the next caller finds a young one. It leaves
// three quarters of the bound for that read: on a saturated 2-core host a
// Describe took up to 800 ms (p99, 50 callers). A job asked about without
// pause costs at most four reads a second.
const statusRefreshAfter = MaxStatusStaleness / 4

// statusCacheSize bounds how many jobs' answers are kept; the least
// recently asked go first. An answer is a few KB at most (its traceback is
// cut to maxTraceback lines), so the cache stays under a few tens of MB
// whatever ids callers send; unknown ids are not kept at all.
const statusCacheSize = 4096

// statusReadTimeout bounds one shared read. It runs on its own context,
// not its first caller's, so that caller leaving does not fail the others
// waiting on it.
const statusReadTimeout = 30 * time.Second

// statusCache holds the latest status answer of each recently asked job.
// Its zero value is ready to use.
type statusCache struct {
	mu      sync.Mutex
	entries map[string]*list.Element // values *statusEntry
	recent  list.List                // most recently asked first
	reads   map[string]*statusRead   // the latest read started per job
	// now is the clock (time.Now); tests set it.
	now func() time.Time
	// size bounds entries (statusCacheSize when 0); tests set it.
	size int
}

type statusEntry struct {
	jobID string
	st    Status
	final bool
}

// statusRead is one read of a job's status, shared by every caller that
// waits for it. st and err are set before done is closed.
type statusRead struct {
	began time.Time
	done  chan struct{}
	st    Status
	err   error
}

// readStatusFunc reads a job's status from the server.
type readStatusFunc func(ctx context.Context) (Status, error)

// get returns jobID's status from a read begun less than maxAge ago, or a
// final one of any age, calling read when it has none. maxAge 0 asks for
// a read that begins now.
func (c *statusCache) get(ctx context.Context, jobID string, maxAge time.Duration, read readStatusFunc) (Status, error) {
	c.mu.Lock()
	now := c.clock()
	if el, ok := c.entries[jobID]; ok {
		e := el.Value.(*statusEntry)
		age := now.Sub(e.st.AsOf)
		if e.final || age < maxAge {
			c.recent.MoveToFront(el)
			if !e.final && age >= statusRefreshAfter && c.reads[jobID] == nil {
				c.start(ctx, jobID, now, read)
			}
			c.mu.Unlock()
			return e.st, nil
		}
	}
	r := c.reads[jobID]
	if r == nil || now.Sub(r.began) >= maxAge {
		r = c.start(ctx, jobID, now, read)
	}
	c.mu.Unlock()
	select {
	case <-r.done:
		return r.st, r.err
	case <-ctx.Done():
		return Status{}, ctx.Err()
	}
}

// start begins a read of jobID's status, which becomes the job's latest.
// Called with c.mu held.
func (c *statusCache) start(ctx context.Context, jobID string, now time.Time, read readStatusFunc) *statusRead {
	if c.reads == nil {
		c.reads = map[string]*statusRead{}
	}
	r := &statusRead{began: now, done: make(chan struct{})}
	c.reads[jobID] = r
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), statusReadTimeout)
	go func() {
		defer cancel()
		st, err := read(rctx)
		if err == nil {
			// The answer is as old as the read: the server's state may be
			// from any moment after it began.
			st.AsOf = r.began
			if !statusFinal(st) {
				st.MaxStalenessMS = int(MaxStatusStaleness.Milliseconds())
			}
		}
		c.mu.Lock()
		// A closed run does not reopen: a read that says otherwise
		// (an operator's reset outside millrace) is not believed.
		if el, ok := c.entries[jobID]; ok && err == nil && !statusFinal(st) && el.Value.(*statusEntry).final {
			st = el.Value.(*statusEntry).st
		}
		// A read replaced by a later one, or begun before the job was
		// forgotten, answers its own callers but is not kept.
		if c.reads[jobID] == r {
			delete(c.reads, jobID)
			if err == nil {
				c.store(st)
			}
		}
		r.st, r.err = st, err
		c.mu.Unlock()
		close(r.done)
	}()
	return r
}

// store keeps st as its job's latest answer. Called with c.mu held.
func (c *statusCache) store(st Status) {
	if c.entries == nil {
		c.entries = map[string]*list.Element{}
	}
	final := statusFinal(st)
	if el, ok := c.entries[st.JobID]; ok {
		e := el.Value.(*statusEntry)
		e.st, e.final = st, final
		c.recent.MoveToFront(el)
		return
	}
	c.entries[st.JobID] = c.recent.PushFront(&statusEntry{jobID: st.JobID, st: st, final: final})
	size := c.size
	if size <= 0 {
		size = statusCacheSize
	}
	for c.recent.Len() > size {
		oldest := c.recent.Back()
		c.recent.Remove(oldest)
		delete(c.entries, oldest.Value.(*statusEntry).jobID)
	}
}

// forget drops jobID's answer and disowns its read in flight: the next
// call reads the job again. The service calls it when it changes a job.
func (c *statusCache) forget(jobID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[jobID]; ok {
		c.recent.Remove(el)
		delete(c.entries, jobID)
	}
	delete(c.reads, jobID)
}

// closed is told that jobID's run has closed, as another read showed it (a
// batch's node states, a listing): an answer that still has it open, and
// the read in flight that may return one, are dropped, so that the next
// status call agrees with what the caller has just been shown.
func (c *statusCache) closed(jobID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[jobID]; ok {
		if el.Value.(*statusEntry).final {
			return
		}
		c.recent.Remove(el)
		delete(c.entries, jobID)
	}
	delete(c.reads, jobID)
}

func (c *statusCache) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

// statusFinal reports whether a status can no longer change: the run has
// closed and its webhook, if any, is no longer being delivered.
func statusFinal(st Status) bool {
	return st.Ended() && (st.Notification == nil || st.Notification.Status != workflows.NotifyPending)
}
