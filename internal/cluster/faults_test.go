//go:build linux

package cluster_test

import (
	"path/filepath"
	"testing"
	"time"

	"millrace/activities"
	"millrace/internal/jobs"
	"millrace/internal/testcluster"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// hbTimeout is the heartbeat timeout of the fault scenarios' runs: the
// server gives a lost attempt's run to another worker after it, and a
// cut-off worker fences its attempt after half of it
// (activities.FenceAfter).
const hbTimeout = 6 * time.Second

// killAndPartition runs two notebooks whose cells record themselves. The
// worker running the first is SIGKILLed, then the host of the worker
// running the second is cut off the network, each two cells in. Both
// runs must end SUCCEEDED on another worker, the cut-off attempt must
// stop its kernel within the heartbeat timeout, and no two attempts of a
// run may ever run a cell at the same time.
func killAndPartition(t *testing.T, e *env) {
	s := begin(t, "a worker SIGKILLed and a worker host cut off mid-run")
	nb := e.cellsNotebook(t, 8, 1)
	dir := filepath.Dir(nb)
	kernels := testcluster.WatchKernels(t, dir)
	req := jobs.StartRequest{Path: nb, HeartbeatTimeout: hbTimeout}

	// The kill.
	killed := e.start(t, req)
	s.runs(1)
	victim := e.waitCells(t, nb, killed, 2)
	killAt := time.Now()
	victim.Kill()
	killGone := kernels.Wait(t, killed+".1", 30*time.Second)

	// The partition, on another worker: the victim is down, so the run
	// goes to one of the others.
	cut := e.start(t, req)
	s.runs(1)
	island := e.waitCells(t, nb, cut, 2)
	cutAt := time.Now()
	island.Host.Cut(t)
	healed := false
	t.Cleanup(func() {
		// The next scenarios need every host on the network.
		if !healed {
			island.Host.Heal(t)
		}
	})
	cutGone := kernels.Wait(t, cut+".1", 3*hbTimeout)
	if d := cutGone.Sub(cutAt); d > hbTimeout {
		t.Errorf("the cut-off attempt's kernel outlived the cut by %s, more than the heartbeat timeout %s (it fences after %s)", d, hbTimeout, activities.FenceAfter(hbTimeout))
	}
	victim.Start(t)

	for _, run := range []string{killed, cut} {
		st, ended := e.waitEnded(t, run, 3*time.Minute)
		if !ended {
			s.lost()
			t.Errorf("run %s did not end: %s", run, st.Status)
			continue
		}
		if st.Status != workflows.StatusSucceeded || st.Attempt < 2 {
			t.Errorf("run %s: %s on attempt %d (%+v), want SUCCEEDED after a retry", run, st.Status, st.Attempt, st.Error)
			continue
		}
		s.ok()
	}
	healAt := time.Now()
	island.Host.Heal(t)
	healed = true
	island.WaitPolling(t, e.svc.Client, healAt)
	victim.WaitPolling(t, e.svc.Client, killAt)

	gone := kernels.Gone()
	for _, run := range []string{killed, cut} {
		rs := records(t, nb, run)
		testcluster.CheckNoOverlap(t, rs, gone)
		for _, r := range rs {
			if r.Attempt == run+".1" && r.At.After(gone[r.Attempt]) {
				t.Errorf("run %s's first attempt recorded %+v after its kernel was seen gone", run, r)
			}
		}
	}
	retryAfter := func(run string, from time.Time) time.Duration {
		for _, r := range records(t, nb, run) {
			if r.Attempt != run+".1" {
				return r.At.Sub(from)
			}
		}
		return 0
	}
	s.figure("heartbeat timeout %s: SIGKILL to kernel gone %s, to the retry's first cell %s; cut to kernel gone %s (the attempt fenced itself), to the retry's first cell %s; no two attempts' cells overlap",
		hbTimeout, secs(killGone.Sub(killAt)), secs(retryAfter(killed, killAt)), secs(cutGone.Sub(cutAt)), secs(retryAfter(cut, cutAt)))
}

// waitCells waits until the first attempt of run has ended n cells, and
// returns the worker running it.
func (e *env) waitCells(t *testing.T, notebook, run string, n int) *testcluster.Worker {
	t.Helper()
	testenv.Eventually(t, 2*time.Minute, "run "+run+" to end its first cells", func() bool {
		return testcluster.Ended(records(t, notebook, run), run+".1") >= n
	})
	w := e.workerRunning(t, run)
	if w == nil {
		t.Fatalf("no worker of the cluster runs %s", run)
	}
	return w
}
