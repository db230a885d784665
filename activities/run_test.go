package activities_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"millrace/internal/config"
	"millrace/internal/failure"
	"millrace/internal/jobs"
	"millrace/internal/notebook"
	"millrace/internal/runopts"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// setup gives a test its own task queue, data dir, worker and job service,
// with root as the job service's root.
func setup(t *testing.T, root string) (*config.Config, *jobs.Service) {
	t.Helper()
	cfg := server.Config(t)
	server.StartWorker(t, cfg)
	return cfg, server.Service(t, cfg, root)
}

func start(t *testing.T, svc *jobs.Service, req jobs.StartRequest) jobs.Started {
	t.Helper()
	st, err := svc.Start(context.Background(), req)
	if err != nil {
		t.Fatalf("start %s: %v", req.Path, err)
	}
	return st
}

func waitEnd(t *testing.T, svc *jobs.Service, id string, timeout time.Duration) jobs.Status {
	t.Helper()
	st, err := svc.WaitEnded(context.Background(), id, timeout, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Ended() {
		t.Fatalf("job %s still %s after %s (progress %s)", id, st.Status, timeout, st.Progress)
	}
	return st
}

// waitRunning waits until the run reports progress into its cells.
func waitRunning(t *testing.T, svc *jobs.Service, id string, minDone int) jobs.Status {
	t.Helper()
	var st jobs.Status
	testenv.Eventually(t, 60*time.Second, "the run to make progress", func() bool {
		var err error
		st, err = svc.Status(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if st.Ended() {
			t.Fatalf("run ended %s before it was seen running: %+v", st.Status, st.Error)
		}
		return st.Status == workflows.StatusRunning && st.Progress.CurrentCell > minDone
	})
	return st
}

// logText reads a job's whole log through the job service, page by page.
func logText(t *testing.T, svc *jobs.Service, id string) string {
	t.Helper()
	var b strings.Builder
	cursor := ""
	for i := 0; i < 1000; i++ {
		page, err := svc.Logs(context.Background(), jobs.LogsRequest{JobID: id, Cursor: cursor, Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range page.Lines {
			b.WriteString(l.Text + "\n")
		}
		cursor = page.NextCursor
		if len(page.Lines) == 0 {
			break
		}
	}
	return b.String()
}

// marker returns an environment entry unique to one run, to find its
// processes in the process table.
func marker() (map[string]string, string) {
	v := uuid.NewString()
	return map[string]string{"TEST_RUN_MARKER": v}, "TEST_RUN_MARKER=" + v
}

func assertNoProcesses(t *testing.T, kv string) {
	t.Helper()
	// The stop is synchronous, but a killed process takes a moment to be
	// reaped by init.
	testenv.Eventually(t, 10*time.Second, "no process of the run left", func() bool {
		return len(testenv.ProcessesWithEnv(kv)) == 0
	})
}

func TestRunTypedParametersSucceeds(t *testing.T) {
	dir := t.TempDir()
	nb := testenv.CopyFile(t, "testdata/typed.ipynb", dir)
	_, svc := setup(t, dir)
	params := map[string]any{
		"a": 7.0, "b": 3.0, "c": `he said "hi" \ back`, "d": []any{1.0, "x", nil, true}, "e": map[string]any{"n": 1.5, "l": []any{}},
		"f": true, "g": nil, "h": "héllo ✓", "i": "'; import os; os._exit(3) #",
	}
	run := start(t, svc, jobs.StartRequest{Path: nb, Options: runopts.Options{Parameters: params}, Job: runopts.Job{Labels: []string{"typed"}}})
	st := waitEnd(t, svc, run.JobID, 2*time.Minute)
	if st.Status != workflows.StatusSucceeded {
		t.Fatalf("status %s: %+v", st.Status, st.Error)
	}
	if st.Attempt != 1 || st.Executor != "millrace-runner" || st.Kernel != "python3" || st.Progress.CellsDone != 3 || st.Progress.CellsTotal != 3 {
		t.Fatalf("got %+v, want attempt 1, executor millrace-runner, kernel python3, 3/3 cells", st)
	}
	logs := logText(t, svc, run.JobID)
	want := `TYPED {"a": 7, "b": 3.0, "c": "he said \"hi\" \\ back", "d": [1, "x", null, true], "e": {"l": [], "n": 1.5}, "f": true, "g": null, "h": "héllo ✓", "i": "'; import os; os._exit(3) #"}`
	if !strings.Contains(logs, want) {
		t.Fatalf("logs do not hold the parameters as typed.\ngot:\n%s\nwant a line:\n%s", logs, want)
	}
	if !strings.Contains(logs, "TYPES int float") {
		t.Fatalf("a must stay an int and b become a float (its default is 2.5): logs\n%s", logs)
	}
	out, err := notebook.Load(st.OutputPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(st.OutputPath, svc.DataDir) {
		t.Errorf("default output %s is not inside the run's directory", st.OutputPath)
	}
	got, _ := json.Marshal(out.Metadata.Papermill.Parameters)
	if !strings.Contains(string(got), `"h":"héllo ✓"`) || !out.Cells[1].HasTag(notebook.TagInjectedParameters) {
		t.Fatalf("output notebook: parameters %s, cell 1 tags %v", got, out.Cells[1].Tags)
	}
	server.ReplayHistory(t, run.JobID, "notebook_run_succeeded")
	// The run is listed with its label.
	list, err := svc.List(context.Background(), jobs.ListRequest{Label: "typed"})
	if err != nil || len(list.Jobs) != 1 || list.Jobs[0].JobID != run.JobID || list.Jobs[0].Status != workflows.StatusSucceeded {
		t.Fatalf("list by label: %+v %v", list, err)
	}
}

func TestRunCellErrorIsReportedNotRetried(t *testing.T) {
	dir := t.TempDir()
	nb := testenv.CopyFile(t, testenv.Testdata("fails_later.ipynb"), dir)
	_, svc := setup(t, dir)
	run := start(t, svc, jobs.StartRequest{Path: nb})
	st := waitEnd(t, svc, run.JobID, 2*time.Minute)
	if st.Status != workflows.StatusFailed || st.Error == nil {
		t.Fatalf("got %s %+v, want FAILED", st.Status, st.Error)
	}
	e := st.Error
	if e.Type != failure.TypeCellError || e.EName != "AssertionError" || e.CellIndex == nil || *e.CellIndex != 4 || len(e.Traceback) == 0 {
		t.Fatalf("got %+v, want a NotebookCellError: AssertionError in cell 4 with a traceback", e)
	}
	if st.Attempt != 1 || len(st.Attempts) != 1 || st.Attempts[0].Outcome != string(failure.KindCellError) {
		t.Fatalf("got attempt %d, attempts %+v: a cell error must not be retried", st.Attempt, st.Attempts)
	}
	if !strings.Contains(logText(t, svc, run.JobID), "first cell ran") {
		t.Fatal("the output of the cell before the error is not in the logs")
	}
	if _, err := os.Stat(st.OutputPath); err != nil {
		t.Fatalf("the output notebook of a failed run must be kept: %v", err)
	}
	server.ReplayHistory(t, run.JobID, "notebook_run_cell_error")
}

func TestRunCancelStopsEveryProcess(t *testing.T) {
	dir := t.TempDir()
	nb := testenv.CopyFile(t, testenv.Testdata("sleeps.ipynb"), dir)
	_, svc := setup(t, dir)
	env, kv := marker()
	run := start(t, svc, jobs.StartRequest{Path: nb, Direct: runopts.Direct{Env: env}})
	waitRunning(t, svc, run.JobID, 0)
	if n := len(testenv.ProcessesWithEnv(kv)); n < 2 {
		t.Fatalf("found %d processes of the run, want the runner and its kernel", n)
	}
	began := time.Now()
	st, err := svc.Cancel(context.Background(), run.JobID, "test")
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != workflows.StatusCanceled {
		t.Fatalf("after cancel: %s", st.Status)
	}
	t.Logf("cancel to CANCELED: %s", time.Since(began).Round(time.Millisecond))
	assertNoProcesses(t, kv)
	server.ReplayHistory(t, run.JobID, "notebook_run_canceled")
	// Canceling an ended job is a clear error.
	if _, err := svc.Cancel(context.Background(), run.JobID, ""); !jobs.IsUserError(err) || !strings.Contains(err.Error(), "already ended") {
		t.Fatalf("second cancel: %v, want an 'already ended' user error", err)
	}
}

func TestRunTimeoutStopsEveryProcess(t *testing.T) {
	dir := t.TempDir()
	nb := testenv.CopyFile(t, testenv.Testdata("sleeps.ipynb"), dir)
	_, svc := setup(t, dir)
	env, kv := marker()
	run := start(t, svc, jobs.StartRequest{Path: nb, Options: runopts.Options{TimeoutSeconds: 6}, Direct: runopts.Direct{Env: env}})
	st := waitEnd(t, svc, run.JobID, time.Minute)
	if st.Status != workflows.StatusTimedOut {
		t.Fatalf("got %s %+v, want TIMED_OUT", st.Status, st.Error)
	}
	assertNoProcesses(t, kv)
}

func TestRunCellTimeoutIsTimedOut(t *testing.T) {
	dir := t.TempDir()
	nb := testenv.CopyFile(t, testenv.Testdata("sleeps.ipynb"), dir)
	_, svc := setup(t, dir)
	env, kv := marker()
	run := start(t, svc, jobs.StartRequest{Path: nb, Options: runopts.Options{CellTimeoutSeconds: 2}, Direct: runopts.Direct{Env: env}})
	st := waitEnd(t, svc, run.JobID, time.Minute)
	if st.Status != workflows.StatusTimedOut || st.Error == nil || st.Error.Type != failure.TypeCellTimeout {
		t.Fatalf("got %s %+v, want TIMED_OUT by %s", st.Status, st.Error, failure.TypeCellTimeout)
	}
	assertNoProcesses(t, kv)
}

func TestRunDeadKernelIsRetried(t *testing.T) {
	dir := t.TempDir()
	nb := testenv.CopyFile(t, "testdata/dies_once.ipynb", dir)
	_, svc := setup(t, dir)
	run := start(t, svc, jobs.StartRequest{Path: nb})
	st := waitEnd(t, svc, run.JobID, 2*time.Minute)
	if st.Status != workflows.StatusSucceeded || st.Attempt != 2 {
		t.Fatalf("got %s on attempt %d (%+v), want SUCCEEDED on attempt 2", st.Status, st.Attempt, st.Error)
	}
	if len(st.Attempts) != 2 || st.Attempts[0].Outcome != string(failure.KindKernelDied) || st.Attempts[1].Outcome != string(failure.KindOK) {
		t.Fatalf("attempts %+v, want kernel_died then ok", st.Attempts)
	}
	server.ReplayHistory(t, run.JobID, "notebook_run_retried")
	logs := logText(t, svc, run.JobID)
	if !strings.Contains(logs, "flag exists: False") || !strings.Contains(logs, "flag exists: True") || !strings.Contains(logs, "survived") {
		t.Fatalf("logs of both attempts must be readable in order:\n%s", logs)
	}
}

// TestWorkerKilledMidRun kills a worker process with SIGKILL while it runs a
// notebook; a second worker must finish the run as attempt 2.
func TestWorkerKilledMidRun(t *testing.T) {
	dir := t.TempDir()
	nb := testenv.CopyFile(t, "testdata/slow.ipynb", dir)
	cfg := server.Config(t)
	svc := server.Service(t, cfg, dir)
	worker, exited := startWorkerProcess(t, cfg)

	env, kv := marker()
	run := start(t, svc, jobs.StartRequest{Path: nb, HeartbeatTimeout: 3 * time.Second, Options: runopts.Options{Parameters: map[string]any{"steps": 30.0, "delay": 0.2}}, Direct: runopts.Direct{Env: env}})
	waitRunning(t, svc, run.JobID, 1)
	testenv.Eventually(t, 30*time.Second, "the first attempt to print", func() bool {
		return strings.Contains(logText(t, svc, run.JobID), "step 3")
	})
	if err := worker.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	// The runner dies with its worker (Pdeathsig); its kernel follows.
	assertNoProcesses(t, kv)

	server.StartWorker(t, cfg)
	st := waitEnd(t, svc, run.JobID, 2*time.Minute)
	if st.Status != workflows.StatusSucceeded || st.Attempt != 2 {
		t.Fatalf("got %s on attempt %d (%+v), want SUCCEEDED on attempt 2", st.Status, st.Attempt, st.Error)
	}
	if len(st.Attempts) != 2 || st.Attempts[0].Outcome != string(failure.KindLost) {
		t.Fatalf("attempts %+v, want the first recorded as lost", st.Attempts)
	}
	logs := logText(t, svc, run.JobID)
	if strings.Count(logs, "step 0\n") != 2 || !strings.Contains(logs, "slow done") {
		t.Fatalf("want the logs of both attempts (step 0 twice) and the end:\n%s", logs)
	}
}

// TestWorkerStopsGracefully sends SIGTERM to a worker process mid-run: it
// gives the run its grace, stops its process tree, hands the attempt back
// to the server before it exits (the pending activity already carries the
// hand-back as its last failure, long before the 15 s heartbeat timeout
// would have told the server), and the run moves on to another worker as
// attempt 2, whose status says why attempt 1 ended.
func TestWorkerStopsGracefully(t *testing.T) {
	dir := t.TempDir()
	nb := testenv.CopyFile(t, "testdata/slow.ipynb", dir)
	cfg := server.Config(t)
	svc := server.Service(t, cfg, dir)
	worker, exited := startWorkerProcess(t, cfg, "--grace", "1s")

	env, kv := marker()
	run := start(t, svc, jobs.StartRequest{Path: nb, Options: runopts.Options{Parameters: map[string]any{"steps": 60.0, "delay": 0.2}}, Direct: runopts.Direct{Env: env}})
	waitRunning(t, svc, run.JobID, 1)
	began := time.Now()
	if err := worker.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("worker exit: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("worker did not exit within 30s of SIGTERM")
	}
	t.Logf("worker exited %s after SIGTERM", time.Since(began).Round(time.Millisecond))
	defer func() { t.Logf("run ended %s after SIGTERM", time.Since(began).Round(time.Millisecond)) }()
	assertNoProcesses(t, kv)

	const handedBack = "was stopped (SIGTERM) before the run ended"
	d, err := svc.Client.DescribeWorkflow(context.Background(), run.JobID, "")
	if err != nil {
		t.Fatal(err)
	}
	pending := d.RawResponse.GetPendingActivities()
	if len(pending) != 1 || !strings.Contains(pending[0].GetLastFailure().GetMessage(), handedBack) {
		t.Fatalf("pending activity once the worker exited: %v; want its last failure to be the hand-back (%q)", pending, handedBack)
	}

	server.StartWorker(t, cfg)
	st := waitEnd(t, svc, run.JobID, 2*time.Minute)
	if st.Status != workflows.StatusSucceeded || st.Attempt != 2 {
		t.Fatalf("got %s on attempt %d (%+v), want SUCCEEDED on attempt 2", st.Status, st.Attempt, st.Error)
	}
	if len(st.Attempts) == 0 || !strings.Contains(st.Attempts[0].Message, handedBack) {
		t.Fatalf("attempts %+v: want attempt 1's record to say it was handed back (%q)", st.Attempts, handedBack)
	}
}

// TestExtraRunsWaitInTheQueue gives a worker one slot and three runs: one
// runs while the others wait PENDING, and all three succeed.
func TestExtraRunsWaitInTheQueue(t *testing.T) {
	dir := t.TempDir()
	nb := testenv.CopyFile(t, "testdata/slow.ipynb", dir)
	cfg := server.Config(t)
	cfg.MaxRuns = 1
	server.StartWorker(t, cfg)
	svc := server.Service(t, cfg, dir)
	var ids []string
	for i := 0; i < 3; i++ {
		ids = append(ids, start(t, svc, jobs.StartRequest{Path: nb, Options: runopts.Options{Parameters: map[string]any{"steps": 10.0, "delay": 0.2}}}).JobID)
	}
	sawQueue := false
	testenv.Eventually(t, 3*time.Minute, "all three runs to end", func() bool {
		counts := map[string]int{}
		for _, id := range ids {
			// Fresh reads: a cached answer (up to 1 s old) may still say
			// RUNNING for a run that ended as the next one started.
			st, err := svc.FreshStatus(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			counts[st.Status]++
		}
		if counts[workflows.StatusRunning] > 1 {
			t.Fatalf("%d runs at once on a worker with one slot", counts[workflows.StatusRunning])
		}
		if counts[workflows.StatusRunning] == 1 && counts[workflows.StatusPending] >= 1 {
			sawQueue = true
		}
		return counts[workflows.StatusSucceeded] == 3
	})
	if !sawQueue {
		t.Fatal("never saw one run RUNNING while another waited PENDING")
	}
	list, err := svc.List(context.Background(), jobs.ListRequest{Status: workflows.StatusSucceeded})
	if err != nil || len(list.Jobs) != 3 || list.Counts[workflows.StatusSucceeded] != 3 {
		t.Fatalf("list of succeeded: %d jobs, counts %v, %v", len(list.Jobs), list.Counts, err)
	}
}

// startWorkerProcess builds the worker binary and runs it on the test's
// task queue and data dir; the channel yields its exit.
func startWorkerProcess(t testing.TB, cfg *config.Config, extra ...string) (*exec.Cmd, <-chan error) {
	t.Helper()
	bin, err := testenv.BuildBinary(t.TempDir(), "./cmd/worker", "millrace-worker")
	if err != nil {
		t.Fatal(err)
	}
	return server.StartWorkerProcess(t, bin, cfg, extra...)
}
