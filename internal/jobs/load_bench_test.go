package jobs_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"millrace/internal/jobs"
	"millrace/internal/paths"
	"millrace/internal/runopts"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// visibilityMethods are the calls the server answers from its visibility
// store (the ones frontend.namespaceRPS.visibility limits).
var visibilityMethods = []string{"ListWorkflowExecutions", "CountWorkflowExecutions", "ScanWorkflowExecutions", "ListOpenWorkflowExecutions", "ListClosedWorkflowExecutions"}

// sum adds the calls of the given methods.
func sum(calls map[string]int, methods ...string) int {
	n := 0
	for _, m := range methods {
		n += calls[m]
	}
	return n
}

// BenchmarkServerLoad measures what millrace asks of the Temporal server,
// the inputs of SCALING.md: history events and bytes per run (a 1-cell
// and a 10-cell notebook, a run retried once, the example 3-node
// pipeline, a 10-node batch), the server calls one list_jobs, one job
// status and one batch status make, the calls a worker makes per run and
// the long polls it holds when idle, the heartbeat rate of a running
// attempt, and the calls of a caller waiting on it. It runs on the embedded server
// with a real worker and real kernels; every figure is a count, so one
// operation is enough.
func BenchmarkServerLoad(b *testing.B) {
	ctx := context.Background()
	root := testenv.RepoRoot()
	dir := b.TempDir()
	testenv.CopyFile(b, "testdata/stage.ipynb", dir)
	cfg := server.Config(b)
	cfg.Roots = []string{root, dir} // examples/ may lie outside the default roots
	var err error
	workerCalls, serviceCalls := newRPCCounter(), newRPCCounter()
	server.StartWorker(b, cfg, workerCalls.option)
	svc := server.Service(b, cfg, dir) // waits, uncounted
	if svc.Roots, err = paths.NewRoots(cfg.Roots); err != nil {
		b.Fatal(err)
	}
	// The same service on a counted client. cold is one with no answers
	// kept yet, whose status calls read the server as a first call does.
	countedClient := server.Dial(b, serviceCalls.option)
	cold := func() *jobs.Service {
		return &jobs.Service{Client: countedClient, Namespace: svc.Namespace, TaskQueue: svc.TaskQueue, DataDir: svc.DataDir, Roots: svc.Roots}
	}
	counted := cold()

	// history reports a closed workflow's history as the server counts it.
	history := func(b *testing.B, id string) (events, bytes int64) {
		d, err := svc.Client.DescribeWorkflow(ctx, id, "")
		if err != nil {
			b.Fatal(err)
		}
		info := d.RawResponse.GetWorkflowExecutionInfo()
		return info.GetHistoryLength(), info.GetHistorySizeBytes()
	}
	// run starts one notebook and waits for it; it returns the job id, the
	// status and the worker's calls meanwhile.
	run := func(b *testing.B, req jobs.StartRequest) (string, jobs.Status, map[string]int) {
		var id string
		var st jobs.Status
		calls := workerCalls.during(func() {
			started, err := svc.Start(ctx, req)
			if err != nil {
				b.Fatal(err)
			}
			id = started.JobID
			if st, err = svc.WaitEnded(ctx, id, 3*time.Minute, nil); err != nil {
				b.Fatal(err)
			}
		})
		if st.Status != workflows.StatusSucceeded {
			b.Fatalf("run %s ended %s: %+v", id, st.Status, st.Error)
		}
		return id, st, calls
	}
	notebook := func(name string, cells ...string) string {
		return testenv.WriteNotebook(b, dir, name, cells...)
	}
	reportRun := func(b *testing.B, id string, calls map[string]int) {
		events, bytes := history(b, id)
		b.ReportMetric(float64(events), "events")
		b.ReportMetric(float64(bytes), "history-bytes")
		b.ReportMetric(float64(total(calls)-sum(calls, "PollWorkflowTaskQueue", "PollActivityTaskQueue")), "worker-calls")
		b.Logf("worker calls: %v", calls)
	}

	var finished string // a closed run, for status
	b.Run("notebook_1_cell", func(b *testing.B) {
		for b.Loop() {
			id, _, calls := run(b, jobs.StartRequest{Path: notebook("one.ipynb", "x = 1")})
			reportRun(b, id, calls)
		}
	})
	b.Run("notebook_10_cells", func(b *testing.B) {
		cells := make([]string, 10)
		for i := range cells {
			cells[i] = fmt.Sprintf("x%d = %d\nprint(x%d)", i, i, i)
		}
		for b.Loop() {
			id, _, calls := run(b, jobs.StartRequest{Path: notebook("ten.ipynb", cells...)})
			reportRun(b, id, calls)
			finished = id
		}
	})
	b.Run("retried_once", func(b *testing.B) {
		// The kernel dies in attempt 1 (a retryable failure) and not in 2.
		for b.Loop() {
			marker := filepath.Join(b.TempDir(), "died")
			nb := notebook("dies_once.ipynb", "import os", fmt.Sprintf("if not os.path.exists(%q):\n    open(%q, 'w').close()\n    os._exit(1)", marker, marker), "x = 1")
			id, st, calls := run(b, jobs.StartRequest{Path: nb, Options: runopts.Options{MaxAttempts: 2}})
			if st.Attempt != 2 {
				b.Fatalf("the run ended in attempt %d, want 2", st.Attempt)
			}
			reportRun(b, id, calls)
		}
	})
	b.Run("heartbeat", func(b *testing.B) {
		// A 20 s cell: heartbeats per second of a running attempt, the
		// calls a waiting caller makes per second, and the status of a
		// running job.
		nb := notebook("sleeps.ipynb", "import time", "time.sleep(20)")
		for b.Loop() {
			started, err := svc.Start(ctx, jobs.StartRequest{Path: nb})
			if err != nil {
				b.Fatal(err)
			}
			testenv.Eventually(b, time.Minute, "the cell to run", func() bool {
				st, err := svc.Status(ctx, started.JobID)
				return err == nil && st.Status == workflows.StatusRunning && st.Progress.CurrentCell == 2
			})
			var st jobs.Status
			var waited map[string]int
			began := time.Now()
			beatBytes := workerCalls.requestBytes("RecordActivityTaskHeartbeat")
			beats := workerCalls.during(func() {
				waited = serviceCalls.during(func() { _, _ = counted.WaitEnded(ctx, started.JobID, 10*time.Second, nil) })
			})["RecordActivityTaskHeartbeat"]
			window := time.Since(began)
			status := serviceCalls.during(func() { st, err = cold().Status(ctx, started.JobID) })
			if err != nil || st.Status != workflows.StatusRunning {
				b.Fatalf("status of the running job: %s %v", st.Status, err)
			}
			b.ReportMetric(float64(beats)/window.Seconds(), "heartbeats/s")
			b.ReportMetric(float64(workerCalls.requestBytes("RecordActivityTaskHeartbeat")-beatBytes)/float64(max(beats, 1)), "heartbeat-bytes")
			b.ReportMetric(float64(total(waited))/window.Seconds(), "wait-calls/s")
			b.ReportMetric(float64(total(status)), "running-status-calls")
			b.Logf("waiting caller, %s: %v; status of a running job: %v", window, waited, status)
			if _, err := svc.WaitEnded(ctx, started.JobID, time.Minute, nil); err != nil {
				b.Fatal(err)
			}
			events, _ := history(b, started.JobID)
			b.ReportMetric(float64(events), "events")
		}
	})
	b.Run("idle_worker", func(b *testing.B) {
		// The long polls an idle worker keeps open: each one counts
		// against the frontend's concurrent long-poll limit per API.
		for b.Loop() {
			wf, act := 0, 0
			for range 20 {
				time.Sleep(100 * time.Millisecond)
				wf, act = max(wf, workerCalls.pending("PollWorkflowTaskQueue")), max(act, workerCalls.pending("PollActivityTaskQueue"))
			}
			b.ReportMetric(float64(wf), "workflow-polls")
			b.ReportMetric(float64(act), "activity-polls")
		}
	})
	b.Run("list_jobs", func(b *testing.B) {
		for b.Loop() {
			calls := serviceCalls.during(func() {
				if _, err := counted.List(ctx, jobs.ListRequest{}); err != nil {
					b.Fatal(err)
				}
			})
			b.ReportMetric(float64(sum(calls, visibilityMethods...)), "visibility-calls")
			b.ReportMetric(float64(total(calls)), "calls")
			b.Logf("list_jobs: %v", calls)
			calls = serviceCalls.during(func() {
				if _, err := counted.List(ctx, jobs.ListRequest{Status: workflows.StatusSucceeded}); err != nil {
					b.Fatal(err)
				}
			})
			b.ReportMetric(float64(sum(calls, visibilityMethods...)), "filtered-visibility-calls")
			b.Logf("list_jobs, status filter: %v", calls)
		}
	})
	b.Run("status", func(b *testing.B) {
		if finished == "" {
			b.Fatal("notebook_10_cells left no finished run")
		}
		for b.Loop() {
			calls := serviceCalls.during(func() {
				if _, err := cold().Status(ctx, finished); err != nil {
					b.Fatal(err)
				}
			})
			b.ReportMetric(float64(sum(calls, visibilityMethods...)), "visibility-calls")
			b.ReportMetric(float64(total(calls)), "calls")
			b.Logf("status of a finished job: %v", calls)
		}
	})
	batch := func(b *testing.B, req jobs.BatchRequest) {
		started, err := svc.StartBatch(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		var st jobs.BatchStatus
		testenv.Eventually(b, 5*time.Minute, "the batch to end", func() bool {
			st, err = svc.BatchStatus(ctx, started.BatchID)
			return err == nil && st.Ended()
		})
		if st.Status != workflows.StatusSucceeded {
			b.Fatalf("batch %s ended %s", started.BatchID, st.Status)
		}
		parent, parentBytes := history(b, started.BatchID)
		var children, childBytes int64
		for _, n := range started.Nodes {
			e, by := history(b, n.JobID)
			children, childBytes = children+e, childBytes+by
		}
		calls := serviceCalls.during(func() {
			if _, err := counted.BatchStatus(ctx, started.BatchID); err != nil {
				b.Fatal(err)
			}
		})
		b.ReportMetric(float64(parent), "batch-events")
		b.ReportMetric(float64(parentBytes), "batch-history-bytes")
		b.ReportMetric(float64(children), "node-events")
		b.ReportMetric(float64(childBytes), "node-history-bytes")
		b.ReportMetric(float64(total(calls)), "status-calls")
		b.Logf("batch status: %v", calls)
	}
	b.Run("batch_pipeline_3_nodes", func(b *testing.B) {
		for b.Loop() {
			req, err := jobs.LoadBatchFile(filepath.Join(root, "examples", "pipeline.yaml"))
			if err != nil {
				b.Fatal(err)
			}
			work := b.TempDir()
			for i := range req.Nodes {
				req.Nodes[i].Parameters["work_dir"] = work // keep the work tree clean
			}
			batch(b, req)
		}
	})
	b.Run("batch_10_nodes", func(b *testing.B) {
		// Ten independent nodes, four at a time: with the 3-node batch,
		// what one more node costs the batch's own history.
		for b.Loop() {
			req := jobs.BatchRequest{MaxParallel: 4}
			out := b.TempDir()
			for i := range 10 {
				id := fmt.Sprintf("n%d", i)
				req.Nodes = append(req.Nodes, jobs.BatchNodeRequest{ID: id, Path: filepath.Join(dir, "stage.ipynb"),
					Options: runopts.Options{MaxAttempts: 1, Parameters: map[string]any{"name": id, "sleep": 0.1, "out_dir": out}}})
			}
			batch(b, req)
		}
	})
}
