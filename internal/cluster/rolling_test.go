//go:build linux

package cluster_test

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"millrace/internal/jobs"
	"millrace/internal/testcluster"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// rollingRestart restarts every worker in turn, as an upgrade would: each
// gets SIGTERM, must exit cleanly, and is started again before the next
// one stops, while ten runs execute. No run may fail, and no two attempts
// of one run may run a cell at the same time.
func rollingRestart(t *testing.T, e *env) {
	s := begin(t, "rolling restart of all 3 workers (SIGTERM, one at a time) while 10 runs execute")
	const n = 10
	nb := e.cellsNotebook(t, 12, 1.5)
	kernels := testcluster.WatchKernels(t, filepath.Dir(nb))
	var runs []string
	for range n {
		runs = append(runs, e.start(t, jobs.StartRequest{Path: nb, HeartbeatTimeout: hbTimeout}))
	}
	s.runs(n)
	testenv.Eventually(t, 2*time.Minute, "every run to end a cell", func() bool {
		rs := testcluster.Records(t, filepath.Dir(nb))
		for _, run := range runs {
			if testcluster.Ended(testcluster.Of(rs, run), run+".1") < 1 {
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
		w.Start()
		w.WaitPolling(t, e.svc.Client, stopped)
		stops = append(stops, secs(stopped.Sub(began)))
		backs = append(backs, secs(time.Since(stopped)))
	}

	attempts := map[int]int{}
	for _, run := range runs {
		st, ended := e.waitEnded(t, run, 3*time.Minute)
		if !ended {
			s.lost()
			t.Errorf("run %s did not end: %s", run, st.Status)
			continue
		}
		attempts[st.Attempt]++
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
	var per []string
	for k, v := range attempts {
		per = append(per, fmt.Sprintf("%d on attempt %d", v, k))
	}
	sort.Strings(per)
	s.figure("SIGTERM to exit %s, restart to polling %s; runs ended %s; no two attempts' cells overlap",
		strings.Join(stops, ", "), strings.Join(backs, ", "), strings.Join(per, ", "))
}
