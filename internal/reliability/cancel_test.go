package reliability_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"millrace/internal/jobs"
	"millrace/internal/runopts"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// cancelBound is the bound from a cancel request to CANCELED.
const cancelBound = 5 * time.Second

// TestCancelAtRandomPoints starts runs of a 10 s notebook and cancels each
// at a random point of its life (queued, kernel starting, mid-cell): each
// must end CANCELED within 5 s of the request, with no process left.
func TestCancelAtRandomPoints(t *testing.T) {
	n := count(3, 20)
	sc := begin(t, fmt.Sprintf("cancel at a random point (%d runs)", n))
	root := t.TempDir()
	nb := testenv.CopyFile(t, "testdata/slow.ipynb", root)
	cfg, svc := setup(t, root)
	// As many at once as the worker has slots: the cancels land on
	// running kernels, not only on queued runs.
	var mu sync.Mutex
	var worst time.Duration
	sem := make(chan struct{}, cfg.MaxRuns)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			env, kv := marker()
			sc.run()
			run, err := svc.Start(context.Background(), jobs.StartRequest{Path: nb, Options: runopts.Options{Parameters: slowParams(40, 0.25)}, Direct: runopts.Direct{Env: env}})
			if err != nil {
				t.Errorf("run %d: start: %v", i, err)
				return
			}
			// The run lasts about 2 s of kernel start plus 10 s of cells.
			time.Sleep(jitter(9 * time.Second))
			began := time.Now()
			st, err := svc.Cancel(context.Background(), run.JobID, "reliability")
			took := time.Since(began)
			if err != nil {
				t.Errorf("run %d: cancel: %v", i, err)
			}
			if !st.Ended() {
				st = waitEnd(t, svc, run.JobID, time.Minute)
			}
			left := leftover(kv)
			sc.orphans(left)
			mu.Lock()
			worst = max(worst, took)
			mu.Unlock()
			switch {
			case !st.Ended():
				sc.lost()
				t.Errorf("run %d: still %s a minute after cancel", i, st.Status)
			case st.Status != workflows.StatusCanceled:
				t.Errorf("run %d: %s, want CANCELED", i, st.Status)
				sc.note("run %d ended %s", i, st.Status)
			case took > cancelBound:
				t.Errorf("run %d: CANCELED after %s, want within %s", i, took, cancelBound)
				sc.note("run %d: cancel took %s", i, took.Round(time.Millisecond))
			case left > 0:
				t.Errorf("run %d: %d processes left: %v", i, left, testenv.ProcessesWithEnv(kv))
			default:
				sc.ok()
			}
		}()
	}
	wg.Wait()
	sc.note("up to %d at once; slowest cancel to CANCELED %s (bound %s)", cfg.MaxRuns, worst.Round(time.Millisecond), cancelBound)
}
