package testcluster_test

import (
	"strings"
	"testing"
	"time"

	"millrace/internal/testcluster"
)

// TestOverlaps checks the check the fault scenarios rest on: two attempts
// one after the other pass; a killed cell counts until its kernel was
// seen gone, so a retry starting before that overlaps it; a killed cell
// with no such time, and two attempts in one kernel, are reported.
func TestOverlaps(t *testing.T) {
	at := func(s float64) time.Time { return time.Unix(1000, 0).Add(time.Duration(s * float64(time.Second))) }
	rec := func(what string, cell, pid int, attempt string, s float64) testcluster.Record {
		return testcluster.Record{What: what, Cell: cell, PID: pid, Attempt: attempt, At: at(s)}
	}
	first := []testcluster.Record{
		rec("start", 0, 10, "r.1", 0), rec("end", 0, 10, "r.1", 1),
		rec("start", 1, 10, "r.1", 1), // killed
	}
	retry := []testcluster.Record{rec("start", 1, 20, "r.2", 5), rec("end", 1, 20, "r.2", 6)}
	rs := append(append([]testcluster.Record{}, first...), retry...)
	for _, c := range []struct {
		name string
		rs   []testcluster.Record
		gone map[string]time.Time
		want string // in the one problem expected; "" for none
	}{
		{"retry after the kernel was gone", rs, map[string]time.Time{"r.1": at(4)}, ""},
		{"retry before the kernel was gone", rs, map[string]time.Time{"r.1": at(5.5)}, "ran at the same time"},
		{"killed cell, kernel never seen gone", rs, nil, "its kernel was not seen gone"},
		{"two attempts in one kernel", append(first[:2:2], rec("start", 1, 10, "r.2", 5), rec("end", 1, 10, "r.2", 6)), nil, "both ran in kernel 10"},
	} {
		got := testcluster.Overlaps(c.rs, c.gone)
		switch {
		case c.want == "" && len(got) > 0:
			t.Errorf("%s: %v, want none", c.name, got)
		case c.want != "" && (len(got) != 1 || !strings.Contains(got[0], c.want)):
			t.Errorf("%s: %v, want one problem saying %q", c.name, got, c.want)
		}
	}
}
