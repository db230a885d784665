//go:build linux

package cluster_test

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"millrace/internal/jobs"
	"millrace/internal/runopts"
	"millrace/internal/testcluster"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// atCell is where a lost attempt's message names its cell.
var atCell = regexp.MustCompile(` at cell \d+/\d+`)

// rollingRestart restarts every worker in turn, as an upgrade would: each
// gets SIGTERM, must exit cleanly, and is started again before the next
// one stops, while ten runs execute. No run may fail, and no two attempts
// of one run may run a cell at the same time.
func rollingRestart(t *testing.T, e *env) {
	s := begin(t, "rolling restart of all 3 workers (SIGTERM, one at a time) while 10 runs execute")
	const n = 10
	nb := e.cellsNotebook(t, 10, 1.2)
	kernels := testcluster.WatchKernels(t, filepath.Dir(nb))
	// Each worker a run is on when it stops costs the run an attempt (the
	// attempt is stopped and retried), and a run can follow the restarts
	// from worker to worker; on this loaded machine, heartbeats starved
	// for half the heartbeat timeout fence a few more attempts (the
	// figures count them). Twice as many attempts as workers lets every
	// run through; the default (3) does not.
	// The default heartbeat timeout: ten kernels starting at once on two
	// cores delayed heartbeats past the 3 s a 6 s timeout allows before
	// a worker fences its attempts.
	req := jobs.StartRequest{Path: nb, Options: runopts.Options{MaxAttempts: 2 * len(e.Workers)}}
	var runs []string
	for range n {
		runs = append(runs, e.start(t, req))
	}
	s.runs(n)
	testenv.Eventually(t, 2*time.Minute, "every run to end a cell", func() bool {
		rs := testcluster.Records(t, filepath.Dir(nb))
		for _, run := range runs {
			if !slices.ContainsFunc(testcluster.Of(rs, run), func(r testcluster.Record) bool { return r.What == "end" }) {
				return false
			}
		}
		return true
	})

	var stops, backs []string
	for _, w := range e.Workers {
		began := time.Now()
		if err := w.Stop(time.Minute); err != nil {
			t.Fatalf("worker %s on SIGTERM: %v\n%s", w.Name, err, w.Log())
		}
		stopped := time.Now()
		w.Start(t)
		w.WaitPolling(t, e.svc.Client, stopped)
		stops = append(stops, secs(stopped.Sub(began)))
		backs = append(backs, secs(time.Since(stopped)))
	}

	attempts := map[int]int{}
	outcomes := map[string]int{} // of the stopped attempts
	for _, run := range runs {
		st, ended := e.waitEnded(t, run, 3*time.Minute)
		if !ended {
			s.lost()
			t.Errorf("run %s did not end: %s", run, st.Status)
			continue
		}
		attempts[st.Attempt]++
		for _, a := range st.Attempts {
			if a.Attempt < st.Attempt {
				outcomes[a.Outcome+" ("+atCell.ReplaceAllString(a.Message, "")+")"]++
			}
		}
		if st.Status != workflows.StatusSucceeded {
			t.Errorf("run %s: %s on attempt %d: %+v; attempts %+v", run, st.Status, st.Attempt, st.Error, st.Attempts)
			continue
		}
		s.ok()
	}
	gone := kernels.Gone()
	for _, run := range runs {
		testcluster.CheckNoOverlap(t, records(t, nb, run), gone)
	}
	failedStarts := 0
	for _, w := range e.Workers {
		failedStarts += w.FailedStarts()
	}
	var per []string
	for k, v := range attempts {
		per = append(per, fmt.Sprintf("%d on attempt %d", v, k))
	}
	sort.Strings(per)
	s.figure("SIGTERM to exit %s, restart to polling %s; runs ended %s; no two attempts' cells overlap",
		strings.Join(stops, ", "), strings.Join(backs, ", "), strings.Join(per, ", "))
	var why []string
	for o, k := range outcomes {
		why = append(why, fmt.Sprintf("%d %s", k, o))
	}
	sort.Strings(why)
	s.figure("stopped attempts recorded as %s", strings.Join(why, ", "))
	if failedStarts > 0 {
		s.figure("%d worker starts exited before polling (the Python check timed out on the loaded machine) and were started again", failedStarts)
	}
}
