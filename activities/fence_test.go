package activities

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"
)

// fakeLog is a heartbeat log the test sets by hand.
type fakeLog struct {
	last  time.Time
	gone  error
	holds int
}

func (l *fakeLog) Last([]byte) (time.Time, error) { return l.last, l.gone }
func (l *fakeLog) Hold([]byte) func() {
	l.holds++
	var once sync.Once
	return func() { once.Do(func() { l.holds-- }) }
}

// fakeClock is a clock the test moves.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time               { return c.t }
func (c *fakeClock) add(d time.Duration)          { c.t = c.t.Add(d) }
func (c *fakeClock) at(d time.Duration) time.Time { return c.t.Add(d) }

func TestFenceTripsAfterHalfTheHeartbeatTimeoutWithoutAnAcceptedHeartbeat(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)}
	log := &fakeLog{}
	f := newFence(log, []byte("task"), 15*time.Second, time.Second, 5*time.Second, clock.now)
	if log.holds != 1 {
		t.Fatalf("the fence holds the task %d times, want 1", log.holds)
	}
	// No heartbeat known yet: the fence measures from its start.
	clock.add(7 * time.Second)
	if l := f.lost(nil); l != nil {
		t.Fatalf("tripped after 7s of a 15s heartbeat timeout: %v", l)
	}
	// Accepted heartbeats move the clock on.
	log.last = clock.at(-500 * time.Millisecond)
	clock.add(7 * time.Second)
	if l := f.lost(nil); l != nil {
		t.Fatalf("tripped 7.5s after an accepted heartbeat: %v", l)
	}
	clock.add(time.Second)
	l := f.lost(nil)
	if l == nil {
		t.Fatal("did not trip 8.5s after the last accepted heartbeat, with a 15s heartbeat timeout")
	}
	if l.grace != 5*time.Second {
		t.Errorf("the stop's grace is %s, want the worker's 5s (15s - 7.5s - 1s leaves more)", l.grace)
	}
	want := "lost contact with the Temporal server for 8s: stopped this attempt so that the retry on another worker does not run beside it"
	if l.Error() != want {
		t.Errorf("message %q, want %q", l.Error(), want)
	}
	if asLostContact(error(l)) != l {
		t.Error("asLostContact does not find the fence's reason")
	}
	f.close()
	f.close()
	if log.holds != 0 {
		t.Errorf("closing the fence left %d holds", log.holds)
	}
}

func TestFenceMeasuresFromAHeartbeatAcceptedBeforeItStarted(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)}
	// The attempt's last accepted heartbeat was sent while it was
	// starting, 3s before the executor (and the fence) started.
	log := &fakeLog{last: clock.at(-3 * time.Second)}
	f := newFence(log, []byte("task"), 6*time.Second, time.Second, 3*time.Second, clock.now)
	clock.add(time.Second)
	if l := f.lost(nil); l == nil || l.grace != 2*time.Second {
		t.Fatalf("4s after the last accepted heartbeat of a 6s timeout: %v, want a trip with 2s grace", l)
	}
}

func TestFenceStopsAtOnceWhenTheServerNoLongerKnowsTheAttempt(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)}
	notFound := serviceerror.NewNotFound("invalid activityID or activity already timed out or invoking workflow is completed")
	for name, tc := range map[string]struct {
		log   *fakeLog
		cause error
	}{
		"recorded by the log":         {log: &fakeLog{last: clock.now(), gone: notFound}},
		"the SDK's cause of the stop": {log: &fakeLog{last: clock.now()}, cause: notFound},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFence(tc.log, []byte("task"), 15*time.Second, time.Second, 5*time.Second, clock.now)
			l := f.lost(tc.cause)
			if l == nil || l.grace != 0 {
				t.Fatalf("lost = %v, want a trip with no grace", l)
			}
			if !strings.Contains(l.Error(), "no longer knows this attempt") {
				t.Errorf("message %q", l.Error())
			}
		})
	}
}

func TestFenceCountsAHeartbeatTheSDKGaveUpOnAsLostContact(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)}
	log := &fakeLog{last: clock.now()}
	f := newFence(log, []byte("task"), 15*time.Second, time.Second, 5*time.Second, clock.now)
	clock.add(2 * time.Second)
	unavailable := serviceerror.NewUnavailable("connection refused")
	if l := f.lost(unavailable); l == nil || l.grace != 5*time.Second || !strings.Contains(l.Error(), "for 2s") {
		t.Fatalf("a context ended by a failed heartbeat: %v, want lost contact for 2s", l)
	}
	// A cancel asked for by the server, a worker's stop or a timeout is
	// not the fence's.
	for _, cause := range []error{context.Canceled, context.DeadlineExceeded, errors.New("canceled")} {
		if l := f.lost(cause); l != nil {
			t.Errorf("cause %v: the fence tripped: %v", cause, l)
		}
	}
}

func TestNoFenceNeverTrips(t *testing.T) {
	var f *fence
	if l := f.lost(serviceerror.NewNotFound("gone")); l != nil {
		t.Fatal(l)
	}
	f.close()
}

// The fence's rule: the kernel is dead (fence, one heartbeat period to
// notice, the stop's grace) before the server can time the attempt out.
func TestFenceKillsTheKernelWithinTheHeartbeatTimeout(t *testing.T) {
	for _, hb := range []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 6 * time.Second, 15 * time.Second, time.Minute} {
		for _, every := range []time.Duration{200 * time.Millisecond, time.Second} {
			for _, grace := range []time.Duration{0, time.Second, 5 * time.Second, time.Minute} {
				g := fenceGrace(hb, every, grace)
				if g < 0 || g > grace {
					t.Errorf("T=%s p=%s grace=%s: fenced grace %s is outside [0, grace]", hb, every, grace, g)
				}
				if hb > 2*every && FenceAfter(hb)+every+g > hb {
					t.Errorf("T=%s p=%s grace=%s: F %s + p + g %s passes T", hb, every, grace, FenceAfter(hb), g)
				}
			}
		}
	}
	if g := fenceGrace(15*time.Second, time.Second, 5*time.Second); g != 5*time.Second {
		t.Errorf("default timeout and grace: fenced grace %s, want 5s", g)
	}
	if g := fenceGrace(6*time.Second, time.Second, 5*time.Second); g != 2*time.Second {
		t.Errorf("6s timeout: fenced grace %s, want 2s", g)
	}
}
