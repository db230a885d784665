//go:build linux

package cluster_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"millrace/internal/jobs"
	"millrace/internal/runopts"
	"millrace/internal/testcluster"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// postgresRestart restarts PostgreSQL under three running runs, first
// with a fast shutdown, then with an immediate one (every server process
// killed at once, as a crash; the restart recovers from the write-ahead
// log), and checks that every run ends SUCCEEDED and is still listed.
func postgresRestart(t *testing.T, e *env) {
	s := begin(t, "PostgreSQL restarted mid-run (fast, then immediate)")
	const n = 3
	nb := e.cellsNotebook(t, 10, 1)
	label := "pg-" + uuid.NewString()[:8]
	var runs []string
	for range n {
		// The default heartbeat timeout: a database restart must not
		// cost an attempt.
		runs = append(runs, e.start(t, jobs.StartRequest{Path: nb, Job: runopts.Job{Labels: []string{label}}}))
	}
	s.runs(n)
	waitAllCells := func(cells int) {
		testenv.Eventually(t, 2*time.Minute, fmt.Sprintf("every run to end %d cells", cells), func() bool {
			rs := testcluster.Records(t, filepath.Dir(nb))
			for _, run := range runs {
				if len(testcluster.Of(rs, run)) < 2*cells {
					return false
				}
			}
			return true
		})
	}
	waitAllCells(2)
	fast := e.DB.Restart(t, testcluster.Fast)
	waitAllCells(4)
	immediate := e.DB.Restart(t, testcluster.Immediate)

	attempts := 0
	for _, run := range runs {
		st, ended := e.waitEnded(t, run, 3*time.Minute)
		if !ended {
			s.lost()
			t.Errorf("run %s did not end: %s", run, st.Status)
			continue
		}
		attempts += st.Attempt
		if st.Status != workflows.StatusSucceeded {
			t.Errorf("run %s: %s on attempt %d: %+v", run, st.Status, st.Attempt, st.Error)
			continue
		}
		s.ok()
	}
	e.waitListed(t, e.svc, jobs.ListRequest{Label: label}, workflows.StatusSucceeded, n)
	s.figure("fast restart %s, immediate restart %s (pg_ctl restart, server unavailable meanwhile); %d attempts for %d runs; listed and counted SUCCEEDED after",
		secs(fast), secs(immediate), attempts, n)
}
