package metrics_test

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"millrace/activities"
	"millrace/internal/connect"
	"millrace/internal/jobs"
	"millrace/internal/logstore"
	"millrace/internal/metrics"
	"millrace/internal/metrics/metricstest"
	"millrace/internal/notebook"
	"millrace/internal/rundir"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// TestWorkerMetrics runs real notebooks on a worker whose client records
// into a metrics server, and reads the counts back from its HTTP page.
func TestWorkerMetrics(t *testing.T) {
	ms, err := metrics.Start("127.0.0.1:0", "", testenv.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	cfg := server.Config(t)
	root := t.TempDir()
	okNB := testenv.CopyFile(t, "testdata/ok.ipynb", root)
	failsNB := testenv.CopyFile(t, "testdata/fails.ipynb", root)
	server.StartWorker(t, cfg, connect.WithMetrics(ms.Handler()))
	svc := server.Service(t, cfg, root)
	url := ms.URL()

	ok := runToEnd(t, svc, okNB, workflows.StatusSucceeded)
	okCells := codeCells(t, okNB)
	page := metricstest.Wait(t, url, "", time.Minute, "the succeeded run's counts", func(p metricstest.Page) bool {
		return p.Sum(workflows.RunsEndedMetric, nil) == 1 && p.Sum(activities.CellsExecutedMetric, nil) == float64(okCells)
	})
	if got := page.Sum(workflows.RunsEndedMetric, map[string]string{workflows.StatusTag: workflows.StatusSucceeded}); got != 1 {
		t.Errorf("runs ended SUCCEEDED = %v, want 1", got)
	}

	failed := runToEnd(t, svc, failsNB, workflows.StatusFailed)
	page = metricstest.Wait(t, url, "", time.Minute, "the failed run's counts", func(p metricstest.Page) bool {
		return p.Sum(workflows.RunsEndedMetric, nil) == 2 && p.Sum(activities.CellsExecutedMetric, nil) > float64(okCells)
	})
	logNames(t, page)
	cellsBefore := page.Sum(activities.CellsExecutedMetric, nil)

	checks := []struct {
		what string
		name string
		tags map[string]string
		want float64
	}{
		{"runs started", workflows.RunsStartedMetric, nil, 2},
		{"runs ended SUCCEEDED", workflows.RunsEndedMetric, map[string]string{"status": "SUCCEEDED"}, 1},
		{"runs ended FAILED", workflows.RunsEndedMetric, map[string]string{"status": "FAILED"}, 1},
		{"duration count SUCCEEDED", workflows.RunDurationMetric + "_count", map[string]string{"status": "SUCCEEDED"}, 1},
		{"duration count FAILED", workflows.RunDurationMetric + "_count", map[string]string{"status": "FAILED"}, 1},
		// The failing notebook ran its first cell and failed in its
		// second; the third never ran.
		{"cells executed", activities.CellsExecutedMetric, nil, float64(okCells + 2)},
		{"log bytes", activities.LogBytesMetric, nil, float64(logSize(t, cfg.DataDir, ok) + logSize(t, cfg.DataDir, failed))},
		// Tagged by the SDK with the worker's task queue.
		{"runs started on the queue", workflows.RunsStartedMetric, map[string]string{"task_queue": cfg.TaskQueue, "workflow_type": workflows.NotebookRunWorkflow}, 2},
	}
	for _, c := range checks {
		if got := page.Sum(c.name, c.tags); got != c.want {
			t.Errorf("%s: %s%v = %v, want %v", c.what, c.name, c.tags, got, c.want)
		}
	}
	if page.Sum(activities.LogBytesMetric, nil) == 0 {
		t.Error("no log bytes counted, but the notebooks print")
	}
	// A run lasts seconds: its duration lands in a bucket above 0.1 s and
	// below a day, and the hour buckets exist for long runs.
	for _, le := range []string{"3600", "86400"} {
		if !page.Has(workflows.RunDurationMetric+"_bucket", map[string]string{"le": le}) {
			t.Errorf("run duration has no le=%s bucket", le)
		}
	}
	if s := page.Sum(workflows.RunDurationMetric+"_sum", nil); s <= 0.1 || s > 3600 {
		t.Errorf("run duration sum %v s for two short runs", s)
	}

	// The SDK's own metrics, under the SDK's names.
	for _, name := range []string{
		"temporal_activity_schedule_to_start_latency_seconds_count",
		"temporal_workflow_task_execution_latency_seconds_count",
		"temporal_request_total",
	} {
		if page.Sum(name, nil) == 0 {
			t.Errorf("SDK metric %s missing or zero", name)
		}
	}
	if !page.Has("temporal_worker_task_slots_available", map[string]string{"worker_type": "ActivityWorker"}) {
		t.Error("no temporal_worker_task_slots_available for the activity worker")
	}

	// A canceled run's attempt is stopped before its executor reports: its
	// cells are counted from its output notebook.
	slowNB := testenv.CopyFile(t, filepath.Join(testenv.RepoRoot(), "activities", "testdata", "slow.ipynb"), root)
	ctx := context.Background()
	st, err := svc.Start(ctx, jobs.StartRequest{Path: slowNB})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 2*time.Minute, "the slow run to finish its first cell", func() bool {
		s, err := svc.Status(ctx, st.JobID)
		return err == nil && s.Progress.CellsDone >= 1
	})
	if _, err := svc.Cancel(ctx, st.JobID, "metrics test"); err != nil {
		t.Fatal(err)
	}
	if end, err := svc.WaitEnded(ctx, st.JobID, 2*time.Minute, nil); err != nil || end.Status != workflows.StatusCanceled {
		t.Fatalf("canceled run ended %s (%v)", end.Status, err)
	}
	page = metricstest.Wait(t, url, "", time.Minute, "the canceled run's counts", func(p metricstest.Page) bool {
		return p.Sum(workflows.RunsEndedMetric, map[string]string{workflows.StatusTag: workflows.StatusCanceled}) == 1 &&
			p.Sum(workflows.RunDurationMetric+"_count", map[string]string{workflows.StatusTag: workflows.StatusCanceled}) == 1
	})
	if got := page.Sum(activities.CellsExecutedMetric, nil) - cellsBefore; got < 1 || got > 3 {
		t.Errorf("cells executed by the canceled run = %v, want 1 to 3 (it finished its first cell of 3)", got)
	}
	if r := ms.Registry.Refused(); len(r) > 0 {
		t.Errorf("metrics left off the page: %v", r)
	}
}

// runToEnd starts nb and waits for it to end with want.
func runToEnd(t *testing.T, svc *jobs.Service, nb, want string) string {
	t.Helper()
	ctx := context.Background()
	st, err := svc.Start(ctx, jobs.StartRequest{Path: nb})
	if err != nil {
		t.Fatal(err)
	}
	end, err := svc.WaitEnded(ctx, st.JobID, 3*time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	if end.Status != want {
		t.Fatalf("%s ended %s (%+v), want %s", filepath.Base(nb), end.Status, end.Error, want)
	}
	return st.JobID
}

func codeCells(t *testing.T, path string) int {
	t.Helper()
	nb, err := notebook.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return nb.CodeCells()
}

// logSize is the size of a job's first attempt's log data.
func logSize(t *testing.T, dataDir, jobID string) int64 {
	t.Helper()
	st, err := os.Stat(filepath.Join(rundir.AttemptDir(dataDir, jobID, 1), logstore.DataFile))
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func logNames(t *testing.T, page metricstest.Page) {
	var names []string
	for n := range page.Names() {
		if strings.HasPrefix(n, "millrace_") || strings.HasPrefix(n, "temporal_") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	t.Logf("%d samples; names: %s", len(page), strings.Join(names, " "))
}
