package jobs_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"millrace/internal/failure"
	"millrace/internal/jobs"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// TestStatusCacheOnServer: on the real server, concurrent status calls
// share one Describe; a run terminated through Temporal directly (not
// through this service, which holds its RUNNING answer) shows its end to a
// status call made MaxStatusStaleness later; a run canceled through the
// service shows CANCELED at once, without another read.
func TestStatusCacheOnServer(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := server.Config(t)
	server.StartWorker(t, cfg)
	svc := server.Service(t, cfg, dir)
	calls := newRPCCounter()
	counted := &jobs.Service{Client: server.Dial(t, calls.option), Namespace: svc.Namespace, TaskQueue: svc.TaskQueue, DataDir: svc.DataDir, Roots: svc.Roots}

	nb := testenv.WriteNotebook(t, dir, "sleeps.ipynb", "import time", "time.sleep(120)")
	var ids []string
	for range 2 {
		started, err := svc.Start(ctx, jobs.StartRequest{Path: nb})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, started.JobID)
	}
	terminated, canceled := ids[0], ids[1]
	for _, id := range ids {
		testenv.Eventually(t, time.Minute, "the run to start", func() bool {
			st, err := counted.Status(ctx, id)
			return err == nil && st.Status == workflows.StatusRunning
		})
	}

	// Once the kept answer is too old, 50 callers at once share one read.
	time.Sleep(jobs.MaxStatusStaleness)
	const callers = 50
	var wg sync.WaitGroup
	got := calls.during(func() {
		for range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st, err := counted.Status(ctx, terminated)
				if err != nil || st.Status != workflows.StatusRunning || st.MaxStalenessMS != int(jobs.MaxStatusStaleness.Milliseconds()) {
					t.Errorf("status of a running job: %s, max_staleness_ms %d, %v", st.Status, st.MaxStalenessMS, err)
				}
			}()
		}
		wg.Wait()
	})
	// One read, and a background refresh if a caller came late enough
	// to find its answer past statusRefreshAfter.
	if n := got["DescribeWorkflowExecution"]; n < 1 || n > 2 {
		t.Errorf("%d concurrent status calls made %d Describes, want 1 (2 on a slow host): %v", callers, n, got)
	}

	// Terminated from outside: not RUNNING to a call made the bound later.
	if err := svc.Client.TerminateWorkflow(ctx, terminated, "", "terminated outside millrace"); err != nil {
		t.Fatal(err)
	}
	closedBy := time.Now()
	time.Sleep(jobs.MaxStatusStaleness)
	st, err := counted.Status(ctx, terminated)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != workflows.StatusCanceled || st.Error == nil || st.Error.Type != failure.TypeTerminated || st.AsOf.Before(closedBy) {
		t.Errorf("status %s after a terminate: %s (%+v) as of %s; want CANCELED, terminated, read after %s", jobs.MaxStatusStaleness, st.Status, st.Error, st.AsOf, closedBy)
	}

	// Canceled through the service: CANCELED as soon as Cancel returns,
	// and from then on without reading the server again.
	if _, err := counted.Status(ctx, canceled); err != nil {
		t.Fatal(err)
	}
	if st, err := counted.Cancel(ctx, canceled, "test"); err != nil || st.Status != workflows.StatusCanceled {
		t.Fatalf("cancel: %s %v", st.Status, err)
	}
	got = calls.during(func() {
		st, err = counted.Status(ctx, canceled)
	})
	if err != nil || st.Status != workflows.StatusCanceled || st.MaxStalenessMS != 0 || st.AsOf.IsZero() {
		t.Errorf("status right after cancel: %s, max_staleness_ms %d, as_of %s, %v; want CANCELED, final", st.Status, st.MaxStalenessMS, st.AsOf, err)
	}
	if n := total(got); n != 0 {
		t.Errorf("status of a canceled run after its cancel made %d calls, want 0: %v", n, got)
	}
}
