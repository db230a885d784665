// Package heartbeat decides when a running attempt heartbeats: how often
// it looks at its run (--heartbeat-every), and which of those looks reach
// the Temporal server.
//
// A heartbeat is the one channel between a running attempt and the
// server. It carries the run's progress, it keeps the attempt alive (the
// server times it out a heartbeat timeout T after the last one it
// recorded), it feeds the worker's fence (the worker stops an attempt
// whose heartbeats the server has not accepted for T/2), and its answer
// is the only way a cancel reaches the attempt. Each one is an RPC, and on
// Temporal Cloud a billed action. So an attempt looks every interval p,
// and sends when what it reports changed, or when the keep-alive K has
// passed since the server last accepted one:
//
//   - a change (a cell started or ended, a log line, a checkpoint) reaches
//     the server within p;
//   - a quiet run (no change) sends a keep-alive at the last look before K
//     passes, so a cancel reaches the attempt within p while the run
//     changes, within K while it is quiet;
//   - the fence measures from the last accepted heartbeat, and a failed
//     keep-alive is sent again at every look until one is accepted, so a
//     quiet attempt rides out a loss of contact of T/2-K (T/2-p while it
//     changes) before its fence stops it.
package heartbeat

import (
	"fmt"
	"time"
)

// Defaults of --heartbeat-every.
const (
	// DefaultDev is the dev mode's: the server is local, an RPC costs
	// nothing but its processor time, and a change or a cancel lands
	// within a second.
	DefaultDev = time.Second
	// DefaultCluster is a cluster's: the largest whole second within a
	// quarter of the default heartbeat timeout (15 s / 4 = 3.75 s). Up
	// to T/4, a quiet run's keep-alive (T/4) already sets how long a
	// cancel takes and how much lost contact the fence rides out (T/2 -
	// T/4); past it, each second of interval is a second less of lost
	// contact ridden out and a second more before a cancel lands.
	// Measured (BENCHMARKS.md, heartbeat rows): at 3 s a busy run sends 20
	// heartbeats a minute against 60 at 1 s, a third of the RPCs and
	// billed actions; a quiet one 20 at either (at 1 s its keep-alive
	// already holds it there).
	DefaultCluster = 3 * time.Second
)

// Check says whether a worker may heartbeat every `every` on runs whose
// heartbeat timeout is timeout: more than zero, and less than half the
// timeout, or the fence (which stops an attempt after T/2 without an
// accepted heartbeat) could trip between two heartbeats.
func Check(every, timeout time.Duration) error {
	if every <= 0 {
		return fmt.Errorf("--heartbeat-every %s: must be more than 0", every)
	}
	if every >= timeout/2 {
		return fmt.Errorf("--heartbeat-every %s: must be less than half the heartbeat timeout runs get (%s), or a worker would stop its own attempts between two heartbeats; use less than %s", every, timeout, timeout/2)
	}
	return nil
}

// Schedule is one attempt's heartbeat timing.
type Schedule struct {
	// Every is how often the attempt looks at its run (progress, log,
	// fence), and the longest a change waits to be sent.
	Every time.Duration
	// KeepAlive is the longest an attempt whose details did not change
	// goes without a heartbeat the server accepted.
	KeepAlive time.Duration
	// Shortened says Every is shorter than the worker's interval: the
	// attempt's heartbeat timeout is too short for it (the run was
	// started with a shorter one than Check was given).
	Shortened bool
}

// ScheduleFor is the schedule of an attempt whose worker heartbeats every
// `every` and whose heartbeat timeout is timeout (0: none).
//
// The interval stays the worker's unless the timeout is too short for it
// (Check): the attempt then looks every T/3, which its fence allows, and
// says so, rather than be timed out by the server. The keep-alive is T/4:
// the fence trips at T/2, so a quiet attempt still rides out T/4 of lost
// contact, and a quiet run's cancel lands within T/4 (3.75 s of the
// default 15 s). It is never shorter than the interval.
func ScheduleFor(every, timeout time.Duration) Schedule {
	s := Schedule{Every: every, KeepAlive: every}
	if timeout <= 0 {
		// No heartbeat timeout: nothing to keep alive, but a cancel
		// still needs a heartbeat to land.
		return s
	}
	if every >= timeout/2 {
		s.Every, s.Shortened = timeout/3, true
	}
	s.KeepAlive = max(s.Every, timeout/4)
	return s
}

// Gate lets through the heartbeats an attempt must send: the first, each
// whose details differ from the last sent, and, at the last look before a
// keep-alive would pass since the server last accepted one, a keep-alive.
// T is the details' type. A Gate is used by one goroutine at a time.
type Gate[T comparable] struct {
	schedule Schedule
	// accepted is when the server last accepted a heartbeat of the
	// attempt (the moment it was sent), zero when unknown; nil: the
	// keep-alive counts from the last heartbeat sent.
	accepted func() time.Time
	last     T
	sentAt   time.Time
	sent     bool
}

// NewGate returns the gate of an attempt that looks and keeps alive as s
// says. accepted (may be nil) tells when the server last accepted a
// heartbeat: with it, a keep-alive the server did not accept is sent again
// at the next look instead of a keep-alive later.
func NewGate[T comparable](s Schedule, accepted func() time.Time) *Gate[T] {
	return &Gate[T]{schedule: s, accepted: accepted}
}

// Due says whether details must be sent at the look at now, and if so
// counts them as sent. An unchanged heartbeat is held back while the next
// look still comes within the keep-alive, so no gap between accepted
// heartbeats exceeds it. A keep-alive no longer than a look sends at every
// look: compared to one look's length, it would skip some, as a ticker's
// looks come a little early or late.
func (g *Gate[T]) Due(details T, now time.Time) bool {
	if g.sent && details == g.last && now.Add(g.schedule.Every).Sub(g.since()) <= g.schedule.KeepAlive {
		return false
	}
	g.last, g.sentAt, g.sent = details, now, true
	return true
}

// since is what the keep-alive counts from: the last accepted heartbeat
// when it is known, else the last one sent.
func (g *Gate[T]) since() time.Time {
	if g.accepted != nil {
		if at := g.accepted(); !at.IsZero() {
			return at
		}
	}
	return g.sentAt
}
