package heartbeat

import (
	"strings"
	"testing"
	"time"
)

func TestCheckRefusesIntervalsTheTimeoutCannotCarry(t *testing.T) {
	const timeout = 15 * time.Second
	for _, every := range []time.Duration{time.Millisecond, time.Second, DefaultCluster, 7499 * time.Millisecond} {
		if err := Check(every, timeout); err != nil {
			t.Errorf("Check(%s, %s) = %v, want nil", every, timeout, err)
		}
	}
	for every, want := range map[time.Duration][]string{
		0:                       {"--heartbeat-every 0s", "more than 0"},
		-time.Second:            {"--heartbeat-every -1s", "more than 0"},
		7500 * time.Millisecond: {"--heartbeat-every 7.5s", "half the heartbeat timeout", "(15s)", "less than 7.5s"},
		30 * time.Second:        {"--heartbeat-every 30s", "half the heartbeat timeout", "(15s)"},
	} {
		err := Check(every, timeout)
		if err == nil {
			t.Errorf("Check(%s, %s) = nil, want an error", every, timeout)
			continue
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Check(%s): %q does not say %q", every, err, w)
			}
		}
	}
}

func TestScheduleFor(t *testing.T) {
	s := time.Second
	for _, c := range []struct {
		every, timeout time.Duration
		want           Schedule
	}{
		// The defaults: a quiet run sends every T/4.
		{DefaultDev, 15 * s, Schedule{Every: s, KeepAlive: 3750 * time.Millisecond}},
		{DefaultCluster, 15 * s, Schedule{Every: 3 * s, KeepAlive: 3750 * time.Millisecond}},
		// An interval past T/4 is its own keep-alive: nothing is skipped.
		{5 * s, 15 * s, Schedule{Every: 5 * s, KeepAlive: 5 * s}},
		// The tests' short timeouts keep today's one heartbeat a second.
		{s, 3 * s, Schedule{Every: s, KeepAlive: s}},
		// A timeout too short for the interval shortens it, not the run.
		{5 * s, 6 * s, Schedule{Every: 2 * s, KeepAlive: 2 * s, Shortened: true}},
		{30 * s, 15 * s, Schedule{Every: 5 * s, KeepAlive: 5 * s, Shortened: true}},
		// No timeout: every look is sent, or a cancel would never land.
		{s, 0, Schedule{Every: s, KeepAlive: s}},
	} {
		if got := ScheduleFor(c.every, c.timeout); got != c.want {
			t.Errorf("ScheduleFor(%s, %s) = %+v, want %+v", c.every, c.timeout, got, c.want)
		}
	}
}

// TestScheduleKeepsTheFence: every schedule looks, and keeps a quiet
// attempt alive, more often than the fence trips (T/2 without an accepted
// heartbeat), and is shortened exactly when Check refuses the interval.
func TestScheduleKeepsTheFence(t *testing.T) {
	for timeout := 2 * time.Second; timeout <= 2*time.Minute; timeout += 500 * time.Millisecond {
		for every := 100 * time.Millisecond; every < timeout; every += 100 * time.Millisecond {
			s := ScheduleFor(every, timeout)
			if s.Every >= timeout/2 || s.KeepAlive >= timeout/2 || s.KeepAlive < s.Every {
				t.Fatalf("ScheduleFor(%s, %s) = %+v: the fence at %s could trip between heartbeats", every, timeout, s, timeout/2)
			}
			if s.Shortened != (Check(every, timeout) != nil) {
				t.Fatalf("ScheduleFor(%s, %s) shortened %v, but Check says %v", every, timeout, s.Shortened, Check(every, timeout))
			}
		}
	}
}

func TestGateSendsChangesAndKeepAlives(t *testing.T) {
	t0 := time.Unix(1000, 0)
	g := NewGate[int](Schedule{Every: time.Second, KeepAlive: 4 * time.Second}, nil)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	steps := []struct {
		after   time.Duration
		details int
		want    bool
	}{
		{0, 1, true},                       // the first
		{time.Second, 1, false},            // unchanged
		{2 * time.Second, 2, true},         // changed
		{3 * time.Second, 2, false},        // unchanged since 2 s
		{5 * time.Second, 2, false},        // the next look is 4 s after the last sent
		{6 * time.Second, 2, true},         // the next look would be 5 s after
		{6500 * time.Millisecond, 3, true}, // changed, however soon
		{7 * time.Second, 2, true},         // changed back
	}
	for _, s := range steps {
		if got := g.Due(s.details, at(s.after)); got != s.want {
			t.Errorf("at %s with %d: Due = %v, want %v", s.after, s.details, got, s.want)
		}
	}
}

// TestGateCountsTheKeepAliveFromTheLastAcceptedHeartbeat: a keep-alive the
// server did not accept is sent again at the next look, not a keep-alive
// later, so the fence sees contact back as soon as the server does.
func TestGateCountsTheKeepAliveFromTheLastAcceptedHeartbeat(t *testing.T) {
	t0 := time.Unix(1000, 0)
	accepted := t0
	every := Schedule{Every: time.Second, KeepAlive: 4 * time.Second}
	g := NewGate[int](every, func() time.Time { return accepted })
	if !g.Due(1, t0) {
		t.Fatal("the first heartbeat was held back")
	}
	if g.Due(1, t0.Add(3*time.Second)) {
		t.Error("an unchanged heartbeat 3 s after an accepted one was sent")
	}
	if !g.Due(1, t0.Add(4*time.Second)) {
		t.Fatal("no keep-alive at the last look within 4 s of the last accepted heartbeat")
	}
	// That keep-alive was not accepted (accepted stays t0): every look
	// sends again.
	for _, after := range []time.Duration{5 * time.Second, 6 * time.Second} {
		if !g.Due(1, t0.Add(after)) {
			t.Errorf("at %s, with no heartbeat accepted since 0 s: held back", after)
		}
	}
	accepted = t0.Add(6 * time.Second)
	if g.Due(1, t0.Add(7*time.Second)) {
		t.Error("held back nothing once the server accepted a heartbeat again")
	}
	// Unknown (no heartbeat recorded yet): counted from the last sent.
	g = NewGate[int](every, func() time.Time { return time.Time{} })
	g.Due(1, t0)
	if g.Due(1, t0.Add(time.Second)) || !g.Due(1, t0.Add(4*time.Second)) {
		t.Error("with nothing recorded, the keep-alive is not counted from the last heartbeat sent")
	}
}

// TestGateSendsEveryLookWhenTheKeepAliveIsALook: a look that comes a
// little early is not skipped, or the gap would double past the fence.
func TestGateSendsEveryLookWhenTheKeepAliveIsALook(t *testing.T) {
	t0 := time.Unix(1000, 0)
	g := NewGate[int](ScheduleFor(5*time.Second, 15*time.Second), nil)
	g.Due(1, t0)
	for i, after := range []time.Duration{4999 * time.Millisecond, 9998 * time.Millisecond, 15 * time.Second} {
		if !g.Due(1, t0.Add(after)) {
			t.Errorf("look %d at %s: held back", i+1, after)
		}
	}
}
