package jobs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"millrace/workflows"
)

// fakeServer answers status reads for the cache's tests: each read
// returns the job's current status, counted, optionally held until
// release is closed.
type fakeServer struct {
	mu      sync.Mutex
	status  map[string]string
	reads   atomic.Int64
	release chan struct{} // nil: answer at once
	began   chan struct{} // receives once per read, when not nil
}

func (f *fakeServer) read(jobID string) readStatusFunc {
	return func(ctx context.Context) (Status, error) {
		f.reads.Add(1)
		if f.began != nil {
			f.began <- struct{}{}
		}
		if f.release != nil {
			select {
			case <-f.release:
			case <-ctx.Done():
				return Status{}, ctx.Err()
			}
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		st, ok := f.status[jobID]
		if !ok {
			return Status{}, userErrorf("no job %q", jobID)
		}
		return Status{JobID: jobID, Status: st}, nil
	}
}

func (f *fakeServer) set(jobID, status string) {
	f.mu.Lock()
	f.status[jobID] = status
	f.mu.Unlock()
}

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newFakes() (*fakeServer, *fakeClock, *statusCache) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	return &fakeServer{status: map[string]string{}}, clock, &statusCache{now: clock.now}
}

// waitIdle waits for c's background reads to end.
func waitIdle(t *testing.T, c *statusCache) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		n := len(c.reads)
		c.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d reads still in flight", n)
		}
		time.Sleep(time.Millisecond)
	}
}

func mustGet(t *testing.T, c *statusCache, f *fakeServer, jobID string, maxAge time.Duration) Status {
	t.Helper()
	st, err := c.get(context.Background(), jobID, maxAge, f.read(jobID))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// A running job's answer is served until it is MaxStatusStaleness old,
// read again in the background from statusRefreshAfter, and never served
// older than the bound.
func TestStatusCacheStaleness(t *testing.T) {
	f, clock, c := newFakes()
	f.set("a", workflows.StatusRunning)
	t0 := clock.now()

	st := mustGet(t, c, f, "a", MaxStatusStaleness)
	if f.reads.Load() != 1 || !st.AsOf.Equal(t0) || st.MaxStalenessMS != int(MaxStatusStaleness.Milliseconds()) {
		t.Fatalf("first call: %d reads, as_of %s, max_staleness_ms %d; want 1 read as of %s, %d ms", f.reads.Load(), st.AsOf, st.MaxStalenessMS, t0, MaxStatusStaleness.Milliseconds())
	}
	clock.advance(statusRefreshAfter - time.Millisecond)
	if st := mustGet(t, c, f, "a", MaxStatusStaleness); f.reads.Load() != 1 || !st.AsOf.Equal(t0) {
		t.Fatalf("a young answer: %d reads, as_of %s; want it served as it is", f.reads.Load(), st.AsOf)
	}

	// Past statusRefreshAfter: the answer is served, and read again.
	clock.advance(2 * time.Millisecond)
	t1 := clock.now()
	f.set("a", workflows.StatusSucceeded)
	if st := mustGet(t, c, f, "a", MaxStatusStaleness); st.Status != workflows.StatusRunning {
		t.Fatalf("answer within the bound: got %s, want the kept RUNNING", st.Status)
	}
	waitIdle(t, c)
	if st := mustGet(t, c, f, "a", MaxStatusStaleness); f.reads.Load() != 2 || st.Status != workflows.StatusSucceeded || !st.AsOf.Equal(t1) || st.MaxStalenessMS != 0 {
		t.Fatalf("after the background read: %d reads, %s as of %s, max_staleness_ms %d; want 2 reads, SUCCEEDED as of %s, 0", f.reads.Load(), st.Status, st.AsOf, st.MaxStalenessMS, t1)
	}

	// An answer at the bound is never served: the caller waits for a
	// read.
	f.set("b", workflows.StatusRunning)
	mustGet(t, c, f, "b", MaxStatusStaleness)
	clock.advance(MaxStatusStaleness)
	f.set("b", workflows.StatusCanceled)
	if st := mustGet(t, c, f, "b", MaxStatusStaleness); st.Status != workflows.StatusCanceled || !st.AsOf.Equal(clock.now()) {
		t.Fatalf("answer past the bound: got %s as of %s, want CANCELED read now (%s)", st.Status, st.AsOf, clock.now())
	}

	// maxAge 0 always reads.
	before := f.reads.Load()
	f.set("c", workflows.StatusRunning)
	mustGet(t, c, f, "c", 0)
	mustGet(t, c, f, "c", 0)
	if n := f.reads.Load() - before; n != 2 {
		t.Fatalf("two fresh calls made %d reads, want 2", n)
	}
}

// A closed run's answer is kept for good; one whose webhook is still
// being delivered is not final; a read that says a closed run runs again
// is not believed.
func TestStatusCacheFinal(t *testing.T) {
	f, clock, c := newFakes()
	f.set("a", workflows.StatusFailed)
	mustGet(t, c, f, "a", MaxStatusStaleness)
	clock.advance(24 * time.Hour)
	if st := mustGet(t, c, f, "a", MaxStatusStaleness); f.reads.Load() != 1 || st.Status != workflows.StatusFailed {
		t.Fatalf("a day later: %d reads, %s; want the closed answer, 1 read", f.reads.Load(), st.Status)
	}

	// A read begun before the run was seen closed, and answering after,
	// gives its callers the closed answer.
	f.set("b", workflows.StatusRunning)
	f.release = make(chan struct{})
	f.began = make(chan struct{}, 1)
	got := make(chan Status)
	go func() {
		st, _ := c.get(context.Background(), "b", 0, f.read("b"))
		got <- st
	}()
	<-f.began
	c.mu.Lock()
	c.store(Status{JobID: "b", Status: workflows.StatusFailed})
	c.mu.Unlock()
	close(f.release)
	if st := <-got; st.Status != workflows.StatusFailed {
		t.Fatalf("a read saying a closed run is RUNNING: got %s, want FAILED kept", st.Status)
	}

	pending := Status{JobID: "n", Status: workflows.StatusSucceeded, Notification: &workflows.Notification{Status: workflows.NotifyPending}}
	if statusFinal(pending) {
		t.Errorf("a closed run whose webhook is PENDING: final, want not final")
	}
	pending.Notification.Status = workflows.NotifyDelivered
	if !statusFinal(pending) {
		t.Errorf("a closed run whose webhook was delivered: not final, want final")
	}
}

// Concurrent callers share one read, and one caller leaving does not fail
// the others.
func TestStatusCacheCoalesces(t *testing.T) {
	f, _, c := newFakes()
	f.set("a", workflows.StatusRunning)
	f.release = make(chan struct{})
	f.began = make(chan struct{}, 100)

	leaving, leave := context.WithCancel(context.Background())
	left := make(chan error)
	go func() {
		_, err := c.get(leaving, "a", MaxStatusStaleness, f.read("a"))
		left <- err
	}()
	<-f.began
	const callers = 50
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := c.get(context.Background(), "a", MaxStatusStaleness, f.read("a"))
			if err == nil && st.Status != workflows.StatusRunning {
				err = fmt.Errorf("got %s, want RUNNING", st.Status)
			}
			errs <- err
		}()
	}
	// The read is held until the leader has left: a caller arriving
	// meanwhile joins it; one arriving after finds its answer kept.
	leave()
	if err := <-left; !errors.Is(err, context.Canceled) {
		t.Fatalf("the caller that left: %v, want context.Canceled", err)
	}
	close(f.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := f.reads.Load(); n != 1 {
		t.Fatalf("%d concurrent callers made %d reads, want 1", callers+1, n)
	}
}

// forget drops the answer and disowns the read in flight: an answer read
// before a cancel is never served after it.
func TestStatusCacheForget(t *testing.T) {
	f, _, c := newFakes()
	f.set("a", workflows.StatusRunning)
	mustGet(t, c, f, "a", MaxStatusStaleness)

	// A read in flight when the job is forgotten answers its callers but
	// is not kept.
	f.release = make(chan struct{})
	f.began = make(chan struct{}, 10)
	got := make(chan Status)
	go func() {
		st, _ := c.get(context.Background(), "a", 0, f.read("a"))
		got <- st
	}()
	<-f.began
	c.forget("a")
	close(f.release)
	if st := <-got; st.Status != workflows.StatusRunning {
		t.Fatalf("the read begun before forget: %s, want RUNNING", st.Status)
	}
	f.set("a", workflows.StatusCanceled)
	before := f.reads.Load()
	if st := mustGet(t, c, f, "a", MaxStatusStaleness); st.Status != workflows.StatusCanceled || f.reads.Load() != before+1 {
		t.Fatalf("after forget: %s with %d reads, want CANCELED from a new read", st.Status, f.reads.Load()-before)
	}
}

// closed drops an answer that has the run open, and keeps a final one.
func TestStatusCacheClosedElsewhere(t *testing.T) {
	f, _, c := newFakes()
	f.set("open", workflows.StatusRunning)
	f.set("done", workflows.StatusSucceeded)
	mustGet(t, c, f, "open", MaxStatusStaleness)
	mustGet(t, c, f, "done", MaxStatusStaleness)
	f.set("open", workflows.StatusFailed)
	c.closed("open")
	c.closed("done")
	before := f.reads.Load()
	if st := mustGet(t, c, f, "open", MaxStatusStaleness); st.Status != workflows.StatusFailed {
		t.Errorf("after another view showed it closed: %s, want FAILED read again", st.Status)
	}
	if st := mustGet(t, c, f, "done", MaxStatusStaleness); st.Status != workflows.StatusSucceeded {
		t.Errorf("a final answer: %s, want SUCCEEDED kept", st.Status)
	}
	if n := f.reads.Load() - before; n != 1 {
		t.Errorf("%d reads, want 1 (the open run's)", n)
	}
}

// The cache holds at most its size of jobs, the least recently asked
// going first, and keeps no answer for an unknown job.
func TestStatusCacheBounded(t *testing.T) {
	f, _, c := newFakes()
	c.size = 3
	for i := range 5 {
		id := fmt.Sprintf("j%d", i)
		f.set(id, workflows.StatusSucceeded)
		mustGet(t, c, f, id, MaxStatusStaleness)
		if i == 2 {
			mustGet(t, c, f, "j0", MaxStatusStaleness) // j0 asked again: j1 is now the oldest
		}
	}
	c.mu.Lock()
	var kept []string
	for el := c.recent.Front(); el != nil; el = el.Next() {
		kept = append(kept, el.Value.(*statusEntry).jobID)
	}
	n := len(c.entries)
	c.mu.Unlock()
	if want := "[j4 j3 j0]"; fmt.Sprint(kept) != want || n != 3 {
		t.Fatalf("kept %v (%d entries), want %s", kept, n, want)
	}

	for range 3 {
		if _, err := c.get(context.Background(), "missing", MaxStatusStaleness, f.read("missing")); !IsUserError(err) {
			t.Fatalf("unknown job: %v, want a user error", err)
		}
	}
	c.mu.Lock()
	_, cached := c.entries["missing"]
	c.mu.Unlock()
	if cached {
		t.Fatalf("an unknown job's error was kept")
	}
}
