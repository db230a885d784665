package activities_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/worker"

	"millrace/activities"
	"millrace/internal/config"
	"millrace/internal/executor"
	"millrace/internal/failure"
	"millrace/internal/jobs"
	"millrace/internal/limits"
	"millrace/internal/nbworker"
	"millrace/internal/runopts"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// assertNoCgroups checks that no cgroup of the job is left on this host.
func assertNoCgroups(t *testing.T, jobID string) {
	t.Helper()
	for _, parent := range limits.Detected().Parents() {
		if left, _ := filepath.Glob(filepath.Join(parent, limits.RunCgroupPrefix(jobID)+"*")); len(left) > 0 {
			t.Fatalf("cgroups of the run left behind: %v", left)
		}
	}
}

// memoryReason is the reason a run over its limit must give on this
// worker: the kernel's OOM kill under a memory cgroup, a MemoryError under
// an rlimit.
func memoryReason(mech string, limit string) string {
	if mech == limits.Rlimit {
		return fmt.Sprintf("the run exceeded its memory limit of %s (cell 2 raised MemoryError", limit)
	}
	return fmt.Sprintf("the run exceeded its memory limit of %s (the kernel was killed while running cell 2)", limit)
}

func TestMemoryLimitExceededFailsWithItsReason(t *testing.T) {
	dir := t.TempDir()
	nb := testenv.CopyFile(t, "testdata/memory_hog.ipynb", dir)
	_, svc := setup(t, dir)
	env, kv := marker()
	id := start(t, svc, jobs.StartRequest{Path: nb, Options: runopts.Options{Parameters: map[string]any{"mb": 600}, MemoryLimit: "150MiB"}, Direct: runopts.Direct{Env: env}}).JobID
	st := waitEnd(t, svc, id, 3*time.Minute)
	mech := limits.Detected().Memory
	if st.Status != workflows.StatusFailed || st.Error == nil || st.Error.Type != failure.TypeMemoryLimit {
		t.Fatalf("got %s %+v, want FAILED with %s", st.Status, st.Error, failure.TypeMemoryLimit)
	}
	t.Logf("memory limit enforced by %s: %s", mech, st.Error.Message)
	if want := memoryReason(mech, "150 MiB"); !strings.HasPrefix(st.Error.Message, want) {
		t.Fatalf("message %q, want it to start %q", st.Error.Message, want)
	}
	wantEName := map[bool]string{true: "MemoryError", false: string(failure.TypeMemoryLimit)}[mech == limits.Rlimit]
	if st.Error.CellIndex == nil || *st.Error.CellIndex != 2 || st.Error.EName != wantEName {
		t.Fatalf("failing cell %v with %s, want 2 (the allocation) with %s", st.Error.CellIndex, st.Error.EName, wantEName)
	}
	if st.Attempt != 1 || len(st.Attempts) != 1 || st.Attempts[0].Outcome != string(failure.KindMemoryLimit) {
		t.Fatalf("attempt %d, attempts %+v: want one attempt ended %s, not retried", st.Attempt, st.Attempts, failure.KindMemoryLimit)
	}
	logs := logText(t, svc, id)
	// "allocated 600 MiB" is what the cell prints after the allocation; a
	// MemoryError's traceback quotes the print's source, not its output.
	if !strings.Contains(logs, "before the allocation") || strings.Contains(logs, "allocated 600 MiB") {
		t.Fatalf("want the cell before the allocation to run and the allocation never to complete:\n%s", logs)
	}
	assertNoProcesses(t, kv)
	assertNoCgroups(t, id)
}

func TestMemoryLimitRunUnderItSucceeds(t *testing.T) {
	dir := t.TempDir()
	nb := testenv.CopyFile(t, "testdata/memory_hog.ipynb", dir)
	_, svc := setup(t, dir)
	id := start(t, svc, jobs.StartRequest{Path: nb, Options: runopts.Options{Parameters: map[string]any{"mb": 40}, MemoryLimit: "400MiB"}}).JobID
	st := waitEnd(t, svc, id, 3*time.Minute)
	if st.Status != workflows.StatusSucceeded {
		t.Fatalf("got %s %+v, want SUCCEEDED", st.Status, st.Error)
	}
	if !strings.Contains(logText(t, svc, id), "allocated 40 MiB") {
		t.Fatal("the allocation's output is missing from the logs")
	}
	mech := limits.Detected().Memory
	note := "memory_limit 400 MiB is enforced"
	if !hasWarning(st.Warnings, note) || !hasWarning(st.Warnings, map[string]string{limits.Cgroup1: "cgroup v1", limits.Cgroup2: "cgroup v2", limits.Rlimit: "RLIMIT_DATA"}[mech]) {
		t.Fatalf("warnings %q: want a note that the limit is enforced by %s", st.Warnings, mech)
	}
	assertNoCgroups(t, id)
}

func TestCPULimitIsTheKernelsCgroupQuota(t *testing.T) {
	dir := t.TempDir()
	nb := testenv.CopyFile(t, "testdata/cpu_quota.ipynb", dir)
	_, svc := setup(t, dir)
	id := start(t, svc, jobs.StartRequest{Path: nb, Options: runopts.Options{CPULimit: 0.5}}).JobID
	st := waitEnd(t, svc, id, 3*time.Minute)
	if limits.Detected().CPU == "" {
		// This worker cannot enforce a CPU limit: it must refuse, once.
		if st.Status != workflows.StatusFailed || st.Error == nil || st.Error.Type != failure.TypeBadInput ||
			!strings.Contains(st.Error.Message, "cpu_limit 0.5: cannot be enforced on this worker") || st.Attempt != 1 {
			t.Fatalf("got %s attempt %d %+v, want one FAILED attempt refusing the cpu_limit", st.Status, st.Attempt, st.Error)
		}
		t.Logf("cpu_limit refused, as it must be on this worker: %s", st.Error.Message)
		return
	}
	if st.Status != workflows.StatusSucceeded {
		t.Fatalf("got %s %+v, want SUCCEEDED", st.Status, st.Error)
	}
	logs := logText(t, svc, id)
	if !strings.Contains(logs, "CPU_QUOTA 0.5 in ") || !strings.Contains(logs, limits.RunCgroupPrefix(id)) {
		t.Fatalf("the kernel must see a quota of 0.5 cores in the run's own cgroup; logs:\n%s", logs)
	}
	assertNoCgroups(t, id)
}

func TestLimitedRunCanceledLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	nb := testenv.CopyFile(t, testenv.Testdata("sleeps.ipynb"), dir)
	_, svc := setup(t, dir)
	env, kv := marker()
	cpu := 0.0
	if limits.Detected().CPU != "" {
		cpu = 1
	}
	id := start(t, svc, jobs.StartRequest{Path: nb, Options: runopts.Options{MemoryLimit: "300MiB", CPULimit: cpu}, Direct: runopts.Direct{Env: env}}).JobID
	waitRunning(t, svc, id, 0)
	if len(cgroupsOf(id)) == 0 && limits.Detected().Memory != limits.Rlimit {
		t.Fatal("a running limited run has no cgroup")
	}
	if _, err := svc.Cancel(context.Background(), id, "test"); err != nil {
		t.Fatal(err)
	}
	st := waitEnd(t, svc, id, time.Minute)
	if st.Status != workflows.StatusCanceled {
		t.Fatalf("got %s, want CANCELED", st.Status)
	}
	assertNoProcesses(t, kv)
	// The activity removes its cgroups before it reports the cancel.
	assertNoCgroups(t, id)
}

func cgroupsOf(jobID string) []string {
	var out []string
	for _, parent := range limits.Detected().Parents() {
		m, _ := filepath.Glob(filepath.Join(parent, limits.RunCgroupPrefix(jobID)+"*"))
		out = append(out, m...)
	}
	return out
}

// TestLimitedRunOnKilledWorker kills the worker process (SIGKILL) while a
// limited run's kernel is allocating in its cgroup: the orphaned kernel
// and the cgroup are cleaned up by the next attempt on this host, which
// runs in a cgroup of its own and succeeds.
func TestLimitedRunOnKilledWorker(t *testing.T) {
	if limits.Detected().Memory == limits.Rlimit {
		t.Skip("no memory cgroups on this machine: nothing to leave behind")
	}
	dir := t.TempDir()
	nb := testenv.CopyFile(t, "testdata/slow.ipynb", dir)
	cfg := server.Config(t)
	svc := server.Service(t, cfg, dir)
	worker, exited := startWorkerProcess(t, cfg)
	env, kv := marker()
	req := jobs.StartRequest{Path: nb, HeartbeatTimeout: 3 * time.Second, Options: runopts.Options{Parameters: map[string]any{"steps": 30.0, "delay": 0.2}, MemoryLimit: "300MiB"}, Direct: runopts.Direct{Env: env}}
	id := start(t, svc, req).JobID
	waitRunning(t, svc, id, 1)
	if len(cgroupsOf(id)) == 0 {
		t.Fatal("the first attempt has no cgroup")
	}
	if err := worker.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	if len(cgroupsOf(id)) == 0 {
		t.Fatal("the killed worker's cgroup is gone before anyone removed it: the test proves nothing")
	}
	server.StartWorker(t, cfg)
	st := waitEnd(t, svc, id, 2*time.Minute)
	if st.Status != workflows.StatusSucceeded || st.Attempt != 2 {
		t.Fatalf("got %s on attempt %d (%+v), want SUCCEEDED on attempt 2", st.Status, st.Attempt, st.Error)
	}
	assertNoProcesses(t, kv)
	assertNoCgroups(t, id)
}

// TestRlimitWorker runs a worker that enforces memory with rlimits, as one
// without writable cgroups does: past the limit an allocation fails with
// MemoryError, and a cpu_limit is refused.
func TestRlimitWorker(t *testing.T) {
	dir := t.TempDir()
	nb := testenv.CopyFile(t, "testdata/memory_hog.ipynb", dir)
	cfg := server.Config(t)
	startWorkerWith(t, cfg, limits.Support{Memory: limits.Rlimit, Why: "cpu: no cgroup v1 hierarchy with this controller"})
	svc := server.Service(t, cfg, dir)
	env, kv := marker()

	id := start(t, svc, jobs.StartRequest{Path: nb, Options: runopts.Options{Parameters: map[string]any{"mb": 600}, MemoryLimit: "250MiB"}, Direct: runopts.Direct{Env: env}}).JobID
	st := waitEnd(t, svc, id, 3*time.Minute)
	if st.Status != workflows.StatusFailed || st.Error == nil || st.Error.Type != failure.TypeMemoryLimit || st.Attempt != 1 {
		t.Fatalf("got %s attempt %d %+v, want one FAILED attempt, %s", st.Status, st.Attempt, st.Error, failure.TypeMemoryLimit)
	}
	if want := memoryReason(limits.Rlimit, "250 MiB"); !strings.HasPrefix(st.Error.Message, want) {
		t.Fatalf("message %q, want it to start %q", st.Error.Message, want)
	}
	assertNoProcesses(t, kv)

	id = start(t, svc, jobs.StartRequest{Path: nb, Options: runopts.Options{Parameters: map[string]any{"mb": 1}, CPULimit: 1.5}}).JobID
	st = waitEnd(t, svc, id, time.Minute)
	if st.Status != workflows.StatusFailed || st.Error == nil || st.Error.Type != failure.TypeBadInput || st.Attempt != 1 ||
		!strings.Contains(st.Error.Message, "cpu_limit 1.5: cannot be enforced on this worker") || !strings.Contains(st.Error.Message, "no cgroup v1 hierarchy") {
		t.Fatalf("got %s attempt %d %+v, want one FAILED attempt refusing the cpu_limit with the reason", st.Status, st.Attempt, st.Error)
	}
}

// startWorkerWith starts an in-process worker whose activities enforce
// limits with sup instead of what the process detected.
func startWorkerWith(t *testing.T, cfg *config.Config, sup limits.Support) {
	t.Helper()
	exe, err := executor.Config{Kind: cfg.Executor}.Resolve(cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	// Runs fork from the warm pool, as on a worker: the forked runner
	// joins the attach process's cgroups and rlimits.
	if pool := nbworker.StartWarmPool(cfg, &exe, nil, testenv.Logger()); pool != nil {
		t.Cleanup(func() { pool.Close() })
		if err := pool.WaitReady(context.Background()); err != nil {
			t.Fatalf("the warm pool did not start: %v", err)
		}
	}
	w := worker.New(server.Client, cfg.TaskQueue, worker.Options{
		MaxHeartbeatThrottleInterval:     nbworker.HeartbeatThrottle,
		DefaultHeartbeatThrottleInterval: nbworker.HeartbeatThrottle,
	})
	nbworker.Register(w, &activities.Activities{DataDir: cfg.DataDir, Executor: exe, Grace: cfg.Grace, Logger: testenv.Logger(), Limits: &sup})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
}
