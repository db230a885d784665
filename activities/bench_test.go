package activities_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"millrace/internal/executor"
	"millrace/internal/jobs"
	"millrace/internal/logstore"
	"millrace/internal/nbworker"
	"millrace/internal/rundir"
	"millrace/internal/runopts"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// BenchmarkOrchestrationOverhead runs a small notebook (3 trivial cells)
// through the whole product (job service, Temporal, worker, executor) and
// the same notebook through the executor alone, alternating, and reports
// the medians and their ratio, and where the orchestrated run's time goes
// (medians of the spans between its history's events: call to started,
// started to activity start, the activity, activity end to closed, closed
// to seen by the caller). Nothing asserts a time: run it with
// `go test -run '^$' -bench Overhead -benchtime 10x ./activities/`.
func BenchmarkOrchestrationOverhead(b *testing.B) {
	dir := b.TempDir()
	nb := testenv.CopyFile(b, "testdata/trivial.ipynb", dir)
	cfg := server.Config(b)
	w := server.StartWorker(b, cfg)
	svc := server.Service(b, cfg, dir)
	ctx := context.Background()

	direct := func() time.Duration {
		out := filepath.Join(b.TempDir(), "out.ipynb")
		args := w.Executor.Args(executor.Spec{Input: nb, Output: out, Cwd: dir})
		began := time.Now()
		cmd := exec.Command(args[0], args[1:]...)
		// The variables runenv.Kernel sets: a run whose environment
		// changes how Python starts does not fork from the warm pool.
		cmd.Env = append(os.Environ(), "PYDEVD_DISABLE_FILE_VALIDATION=1", "PYTHONUNBUFFERED=1")
		if outb, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("direct run: %v\n%s", err, outb)
		}
		return time.Since(began)
	}
	// Where an orchestrated run's time goes, from its history's
	// timestamps (one clock: the server runs on this machine).
	var toStart, toActivity, activityTime, toClose, toSeen, around []time.Duration
	orchestrated := func() time.Duration {
		began := time.Now()
		run, err := svc.Start(ctx, jobs.StartRequest{Path: nb})
		if err != nil {
			b.Fatal(err)
		}
		st, err := svc.WaitEnded(ctx, run.JobID, 2*time.Minute, nil)
		if err != nil || st.Status != workflows.StatusSucceeded {
			b.Fatalf("run %s: %s %v", run.JobID, st.Status, err)
		}
		took := time.Since(began)
		ev := eventTimes(b, svc, run.JobID)
		toStart = append(toStart, ev[enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED].Sub(began))
		toActivity = append(toActivity, ev[enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED].Sub(ev[enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED]))
		activityTime = append(activityTime, ev[enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED].Sub(ev[enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED]))
		toClose = append(toClose, ev[enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED].Sub(ev[enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED]))
		toSeen = append(toSeen, began.Add(took).Sub(ev[enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED]))
		around = append(around, took-activityTime[len(activityTime)-1])
		return took
	}
	direct() // warm the page cache and the kernel's imports
	orchestrated()
	toStart, toActivity, activityTime, toClose, toSeen, around = nil, nil, nil, nil, nil, nil
	var d, o []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d = append(d, direct())
		o = append(o, orchestrated())
	}
	md, mo := median(d), median(o)
	b.ReportMetric(md.Seconds(), "direct-s")
	b.ReportMetric(mo.Seconds(), "workflow-s")
	b.ReportMetric(mo.Seconds()/md.Seconds(), "ratio")
	b.ReportMetric(float64((mo - md).Milliseconds()), "overhead-ms")
	ms := func(ds []time.Duration) float64 { return float64(median(ds).Microseconds()) / 1000 }
	b.ReportMetric(ms(toStart), "call-to-started-ms")
	b.ReportMetric(ms(toActivity), "started-to-activity-ms")
	b.ReportMetric(ms(activityTime)/1000, "activity-s")
	b.ReportMetric(ms(toClose), "activity-to-closed-ms")
	b.ReportMetric(ms(toSeen), "closed-to-seen-ms")
	// The run's time outside its activity, run by run: what orchestration
	// adds, without the executor's own run-to-run spread that the
	// difference of the medians carries.
	b.ReportMetric(ms(around), "outside-activity-ms")
}

// eventTimes returns the time of the first event of each type in a run's
// history.
func eventTimes(b *testing.B, svc *jobs.Service, jobID string) map[enumspb.EventType]time.Time {
	out := map[enumspb.EventType]time.Time{}
	it := svc.Client.GetWorkflowHistory(context.Background(), jobID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			b.Fatal(err)
		}
		if _, seen := out[e.GetEventType()]; !seen {
			out[e.GetEventType()] = e.GetEventTime().AsTime()
		}
	}
	return out
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// BenchmarkThroughput runs 50 short notebooks through 2 workers of 5 slots
// each, and the same 50 through the bare executor with the same
// parallelism (10 at once), and reports runs per minute of each and their
// ratio, and the processor time per run of the executors in each phase,
// and of the server and the workers beyond what they use while the bare
// executor runs. `go test -run '^$' -bench Throughput -benchtime 1x ./activities/`
func BenchmarkThroughput(b *testing.B) {
	const runs, workers, slots = 50, 2, 5
	dir := b.TempDir()
	nb := testenv.CopyFile(b, "testdata/trivial.ipynb", dir)
	cfg := server.Config(b)
	var ws []*nbworker.Worker
	for i := 0; i < workers; i++ {
		ws = append(ws, server.StartWorker(b, cfg))
	}
	// The bare executor starts cold: the figure the warm pool is
	// measured against. The workers fork from their pools unless the
	// suite runs with MILLRACE_WARM_POOL=false.
	bareExe := ws[0].Executor
	bareExe.Warm = nil
	svc := server.Service(b, cfg, dir)
	ctx := context.Background()

	// Kernels started together can lose a race for their ports (a kernel
	// that never answers): the bare executor then fails that run, where a
	// workflow retries it. Both are counted, not hidden.
	var bareFailed, retried int
	var mu sync.Mutex
	bare := func() time.Duration {
		began := time.Now()
		sem := make(chan struct{}, workers*slots)
		var wg sync.WaitGroup
		for i := 0; i < runs; i++ {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				args := bareExe.Args(executor.Spec{Input: nb, Output: filepath.Join(b.TempDir(), "out.ipynb"), Cwd: dir})
				cmd := exec.Command(args[0], args[1:]...)
				cmd.Env = append(os.Environ(), "PYDEVD_DISABLE_FILE_VALIDATION=1")
				if out, err := cmd.CombinedOutput(); err != nil {
					mu.Lock()
					bareFailed++
					mu.Unlock()
					b.Logf("bare run failed: %v\n%s", err, out)
				}
			}()
		}
		wg.Wait()
		return time.Since(began)
	}
	orchestrated := func() time.Duration {
		began := time.Now()
		ids := make([]string, runs)
		for i := range ids {
			run, err := svc.Start(ctx, jobs.StartRequest{Path: nb})
			if err != nil {
				b.Fatal(err)
			}
			ids[i] = run.JobID
		}
		for _, id := range ids {
			st, err := svc.WaitEnded(ctx, id, 10*time.Minute, nil)
			if err != nil || st.Status != workflows.StatusSucceeded {
				b.Fatalf("run %s: %s %v", id, st.Status, err)
			}
			if st.Attempt > 1 {
				retried++
			}
		}
		return time.Since(began)
	}
	// Processor time each phase used, by whom: on 2 cores the runs are
	// CPU-bound, so what the server and the workers use is taken from the
	// kernels. The executors (runners and kernels) are this process's
	// children; the in-process workers are this process.
	// Runs forked from a warm pool are the zygotes' children: their time
	// is in the zygotes' reaped children's.
	serverPID := server.PID()
	type cpu struct{ server, self, children float64 }
	sample := func() cpu {
		var self, children syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
		_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
		secs := func(r syscall.Rusage) float64 {
			return time.Duration(syscall.TimevalToNsec(r.Utime) + syscall.TimevalToNsec(r.Stime)).Seconds()
		}
		c := cpu{testenv.CPUSeconds(serverPID), secs(self), secs(children)}
		for _, w := range ws {
			if w.Warm != nil {
				if z := w.Warm.Zygote(); z != 0 {
					c.children += testenv.CPUSecondsWithChildren(z)
				}
			}
		}
		return c
	}
	var cb, co cpu
	phase := func(run func() time.Duration, sum *cpu) time.Duration {
		before := sample()
		d := run()
		after := sample()
		sum.server += after.server - before.server
		sum.self += after.self - before.self
		sum.children += after.children - before.children
		return d
	}
	var tb, to time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tb += phase(bare, &cb)
		to += phase(orchestrated, &co)
	}
	perMin := func(d time.Duration) float64 { return float64(runs*b.N) / d.Minutes() }
	b.ReportMetric(perMin(tb), "bare-runs/min")
	b.ReportMetric(perMin(to), "workflow-runs/min")
	b.ReportMetric(perMin(to)/perMin(tb), "ratio")
	b.ReportMetric(float64(bareFailed), "bare-failed")
	b.ReportMetric(float64(retried), "workflow-retried")
	perRun := func(s float64) float64 { return s * 1000 / float64(runs*b.N) }
	b.ReportMetric(perRun(cb.children), "bare-executor-cpu-ms/run")
	b.ReportMetric(perRun(co.children), "workflow-executor-cpu-ms/run")
	b.ReportMetric(perRun(co.server-cb.server), "server-cpu-ms/run")
	b.ReportMetric(perRun(co.self-cb.self), "worker-cpu-ms/run")
}

// BenchmarkLogCapture runs a notebook that prints 100 MB (1,000,000 lines
// of 100 bytes) through a worker process (the real millrace-worker binary,
// so its memory is its own) into the run's log, and the same notebook
// through the bare executor whose stdout the benchmark reads itself. It
// reports each capture rate, measured between the first and the last
// printed line (the log store's timestamps; the benchmark's clock for the
// bare executor), so kernel start-up does not dilute it, and the worker's
// peak RSS (VmHWM). `go test -run '^$' -bench LogCapture -benchtime 1x ./activities/`
func BenchmarkLogCapture(b *testing.B) {
	const lines, width = 1_000_000, 100
	const mb = float64(lines*width) / 1e6
	dir := b.TempDir()
	nb := testenv.CopyFile(b, "testdata/print_lines.ipynb", dir)
	cfg := server.Config(b)
	worker, _ := startWorkerProcess(b, cfg)
	svc := server.Service(b, cfg, dir)
	exe, err := executor.Config{Kind: "bundled"}.Resolve(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	params := filepath.Join(dir, "params.json")
	if err := os.WriteFile(params, fmt.Appendf(nil, `{"lines": %d, "width": %d}`, lines, width), 0o644); err != nil {
		b.Fatal(err)
	}

	bare := func() time.Duration {
		args := exe.Args(executor.Spec{Input: nb, Output: filepath.Join(b.TempDir(), "out.ipynb"), Cwd: dir, ParamsFile: params})
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "PYDEVD_DISABLE_FILE_VALIDATION=1", "PYTHONUNBUFFERED=1")
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		var first, last time.Time
		n := 0
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if len(sc.Bytes()) == width {
				if n == 0 {
					first = time.Now()
				}
				last = time.Now()
				n++
			}
		}
		if err := cmd.Wait(); err != nil || n != lines {
			b.Fatalf("bare run: %d lines of %d, %v", n, lines, err)
		}
		return last.Sub(first)
	}
	captured := func() time.Duration {
		run, err := svc.Start(ctx, jobs.StartRequest{Path: nb, Options: runopts.Options{Parameters: map[string]any{"lines": lines, "width": width}}})
		if err != nil {
			b.Fatal(err)
		}
		st, err := svc.WaitEnded(ctx, run.JobID, 10*time.Minute, nil)
		if err != nil || st.Status != workflows.StatusSucceeded {
			b.Fatalf("run %s: %s %v", run.JobID, st.Status, err)
		}
		jobDir := rundir.JobDir(cfg.DataDir, run.JobID)
		head, err := logstore.Read(jobDir, logstore.Cursor{Attempt: 1}, logstore.PageLimit{Lines: 1}, logstore.OnlyStdout)
		if err != nil || len(head.Lines) != 1 {
			b.Fatalf("first line: %v %v", head.Lines, err)
		}
		tail, err := logstore.Tail(jobDir, logstore.PageLimit{Lines: 1}, logstore.OnlyStdout)
		if err != nil || len(tail.Lines) != 1 || len(tail.Lines[0].Text) != width {
			b.Fatalf("last line: %v %v", tail.Lines, err)
		}
		if got := tail.Lines[0].Seq - head.Lines[0].Seq + 1; got != lines {
			b.Fatalf("the log holds %d printed lines, want %d", got, lines)
		}
		return tail.Lines[0].Time.Sub(head.Lines[0].Time)
	}
	var tb, tc time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tb += bare()
		tc += captured()
	}
	rate := func(d time.Duration) float64 { return mb * float64(b.N) / d.Seconds() }
	b.ReportMetric(rate(tc), "capture-MB/s")
	b.ReportMetric(rate(tb), "bare-MB/s")
	b.ReportMetric(rate(tc)/rate(tb), "ratio")
	b.ReportMetric(testenv.MemoryMB(worker.Process.Pid, "VmHWM"), "worker-peak-MB")
}
