package devmode_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"millrace/internal/config"
	"millrace/internal/connect"
	"millrace/internal/devmode"
	"millrace/internal/failure"
	"millrace/internal/jobs"
	"millrace/internal/paths"
	"millrace/internal/runopts"
	"millrace/internal/testenv"
	"millrace/workflows"
)

var workerBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "millrace-devmode-bin-")
	if err != nil {
		panic(err)
	}
	workerBin, err = testenv.BuildBinary(dir, "./cmd/worker", "millrace-worker")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if _, err := testenv.ServerBin(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// startDevWorker starts the worker binary in dev mode on dataDir: it starts
// the dev service (detached) if none runs, then joins it as a worker.
// env is added to the worker's environment.
func startDevWorker(t testing.TB, dataDir string, env ...string) *exec.Cmd {
	t.Helper()
	bin, _ := testenv.ServerBin()
	cmd := exec.Command(workerBin, "--data-dir", dataDir, "--log-level", "error", "--executor", "bundled")
	cmd.Env = append(append(os.Environ(), "MILLRACE_TEMPORAL_BIN="+bin, "TEMPORAL_ADDRESS="), env...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

func waitService(t *testing.T, dataDir string) devmode.State {
	t.Helper()
	var st devmode.State
	testenv.Eventually(t, 90*time.Second, "the dev service to be ready", func() bool {
		var err error
		st, err = devmode.Status(dataDir)
		return err == nil
	})
	return st
}

func stopService(t *testing.T, dataDir string) {
	t.Helper()
	t.Cleanup(func() {
		if _, err := devmode.Stop(dataDir, 30*time.Second); err != nil && err != devmode.ErrNotRunning {
			t.Errorf("stop dev service: %v", err)
		}
	})
}

func service(t *testing.T, st devmode.State, root string) *jobs.Service {
	t.Helper()
	// As a millrace binary in dev mode: with the service's token and codec key.
	cfg := &config.Config{Address: st.Address, Namespace: st.Namespace, CodecKeyFile: devmode.KeyFile(st.DataDir)}
	c, err := connect.Dial(context.Background(), cfg, testenv.Logger(), devmode.ClientOption(st.DataDir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	dc, err := connect.DataConverter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := paths.NewRoots([]string{root})
	if err != nil {
		t.Fatal(err)
	}
	return &jobs.Service{Client: c, DataConverter: dc, Namespace: st.Namespace, TaskQueue: st.TaskQueue, DataDir: st.DataDir, Roots: roots}
}

// serverProcesses counts processes serving the data dir's database.
func serverProcesses(db string) int {
	n := 0
	dirs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, d := range dirs {
		b, _ := os.ReadFile(d)
		if strings.Contains(string(b), "millrace-temporal") && strings.Contains(string(b), db) {
			n++
		}
	}
	return n
}

// TestSecondProcessConnects starts two dev-mode processes on one data dir:
// the first starts the service, the second connects to it instead of
// fighting over the database, and a run completes.
func TestSecondProcessConnects(t *testing.T) {
	dataDir := t.TempDir()
	stopService(t, dataDir)
	startDevWorker(t, dataDir)
	startDevWorker(t, dataDir)
	st := waitService(t, dataDir)
	if st.ReadyIn <= 0 || !strings.HasPrefix(st.Address, "127.0.0.1:") {
		t.Fatalf("state %+v", st)
	}
	// Give the second process time to have tried (and not) to start another.
	time.Sleep(2 * time.Second)
	if n := serverProcesses(st.DB); n != 1 {
		t.Fatalf("%d Temporal servers on %s, want 1", n, st.DB)
	}
	again := waitService(t, dataDir)
	if again.PID != st.PID {
		t.Fatalf("the service changed from pid %d to %d", st.PID, again.PID)
	}

	dir := t.TempDir()
	nb := testenv.CopyFile(t, filepath.Join(testenv.RepoRoot(), "activities", "testdata", "trivial.ipynb"), dir)
	svc := service(t, st, dir)
	run, err := svc.Start(context.Background(), jobs.StartRequest{Path: nb})
	if err != nil {
		t.Fatal(err)
	}
	end, err := svc.WaitEnded(context.Background(), run.JobID, 2*time.Minute, nil)
	if err != nil || end.Status != workflows.StatusSucceeded {
		t.Fatalf("run: %s %v %+v", end.Status, err, end.Error)
	}
}

// TestRunSurvivesKillingEverything kills the dev service, its Temporal
// server and every worker with SIGKILL mid-run, starts dev mode again on the
// same data dir, and sees the run finish with its whole history.
func TestRunSurvivesKillingEverything(t *testing.T) {
	dataDir := t.TempDir()
	stopService(t, dataDir)
	w := startDevWorker(t, dataDir)
	st := waitService(t, dataDir)

	dir := t.TempDir()
	nb := testenv.CopyFile(t, filepath.Join(testenv.RepoRoot(), "activities", "testdata", "slow.ipynb"), dir)
	svc := service(t, st, dir)
	run, err := svc.Start(context.Background(), jobs.StartRequest{
		Path:             nb,
		HeartbeatTimeout: 3 * time.Second,
		Options:          runopts.Options{Parameters: map[string]any{"steps": 30.0, "delay": 0.2}},
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, time.Minute, "the run to start its cells", func() bool {
		s, err := svc.Status(context.Background(), run.JobID)
		return err == nil && s.Status == workflows.StatusRunning && s.Progress.CellsDone >= 1
	})
	for _, pid := range []int{st.ServerPID, st.PID, w.Process.Pid} {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d: %v", pid, err)
		}
	}
	_ = w.Wait()
	testenv.Eventually(t, 20*time.Second, "the old service and server to be gone", func() bool {
		return serverProcesses(st.DB) == 0 && !testenv.Alive(st.PID)
	})

	startDevWorker(t, dataDir)
	st2 := waitService(t, dataDir)
	if st2.PID == st.PID || st2.DB != st.DB {
		t.Fatalf("restarted state %+v", st2)
	}
	svc2 := service(t, st2, dir)
	end, err := svc2.WaitEnded(context.Background(), run.JobID, 3*time.Minute, nil)
	if err != nil || end.Status != workflows.StatusSucceeded {
		t.Fatalf("after restart: %s %v %+v", end.Status, err, end.Error)
	}
	t.Logf("finished on attempt %d; attempts %+v", end.Attempt, end.Attempts)
	// The whole history is there, from start to completion.
	it := svc2.Client.GetWorkflowHistory(context.Background(), run.JobID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var first, last enumspb.EventType
	n := 0
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			first = ev.GetEventType()
		}
		last = ev.GetEventType()
		n++
	}
	if first != enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED || last != enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED {
		t.Fatalf("history of %d events from %s to %s", n, first, last)
	}
	list, err := svc2.List(context.Background(), jobs.ListRequest{})
	if err != nil || len(list.Jobs) != 1 || list.Jobs[0].JobID != run.JobID {
		t.Fatalf("list after restart: %+v %v", list, err)
	}
}

// TestServerOutlivesRunThreads runs several notebooks, each with a memory
// limit and some over it, on the dev service's own worker and checks that
// its Temporal server is the same process afterwards. The server has
// Pdeathsig (native Linux), which the kernel fires when the thread that
// forked it exits; every run retires the thread that started it (it may
// have joined the run's cgroup), so a server forked from a thread the
// scheduler later lent to a run was killed mid-service. With the portable
// supervisor the server's watchdog must stay quiet through the same runs.
// The runs over their limit must fail for that reason, whichever
// mechanism (cgroup or rlimit) enforced it.
func TestServerOutlivesRunThreads(t *testing.T) {
	dataDir := t.TempDir()
	stopService(t, dataDir)
	w := startDevWorker(t, dataDir)
	st := waitService(t, dataDir)
	// Only the service's own worker is left to take the runs.
	_ = w.Process.Kill()
	_ = w.Wait()

	dir := t.TempDir()
	nb := testenv.CopyFile(t, filepath.Join(testenv.RepoRoot(), "activities", "testdata", "trivial.ipynb"), dir)
	hog := testenv.CopyFile(t, filepath.Join(testenv.RepoRoot(), "activities", "testdata", "memory_hog.ipynb"), dir)
	svc := service(t, st, dir)
	const runs, hogs = 8, 2
	ids := make([]string, 0, runs)
	for i := range runs {
		req := jobs.StartRequest{Path: nb, Options: runopts.Options{MemoryLimit: "300MiB"}}
		if i < hogs {
			req = jobs.StartRequest{Path: hog, Options: runopts.Options{MemoryLimit: "250MiB", Parameters: map[string]any{"mb": 600}}}
		}
		run, err := svc.Start(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, run.JobID)
	}
	for i, id := range ids {
		end, err := svc.WaitEnded(context.Background(), id, 3*time.Minute, nil)
		if err != nil {
			t.Fatalf("run %s: %v", id, err)
		}
		if i < hogs {
			if end.Status != workflows.StatusFailed || end.Error == nil || end.Error.Type != failure.TypeMemoryLimit ||
				!strings.HasPrefix(end.Error.Message, "the run exceeded its memory limit of 250 MiB") {
				t.Fatalf("run %s over its memory limit: %s %+v, want FAILED with %s", id, end.Status, end.Error, failure.TypeMemoryLimit)
			}
			t.Logf("over its limit: %s", end.Error.Message)
		} else if end.Status != workflows.StatusSucceeded {
			t.Fatalf("run %s: %s %+v", id, end.Status, end.Error)
		}
	}
	again, err := devmode.Status(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if again.ServerPID != st.ServerPID || !testenv.Alive(st.ServerPID) {
		t.Fatalf("the Temporal server was pid %d before %d runs and is pid %d after (alive: %v)", st.ServerPID, runs, again.ServerPID, testenv.Alive(st.ServerPID))
	}
}

// TestServerDiesWithItsService kills the dev service with SIGKILL, which
// it cannot catch, and checks that its Temporal server goes too: through
// Pdeathsig on native Linux, through its watchdog with the portable
// supervisor (SIGTERM, then SIGKILL after the grace).
func TestServerDiesWithItsService(t *testing.T) {
	dataDir := t.TempDir()
	stopService(t, dataDir)
	w := startDevWorker(t, dataDir)
	st := waitService(t, dataDir)
	_ = w.Process.Kill()
	_ = w.Wait()
	if n := serverProcesses(st.DB); n != 1 {
		t.Fatalf("%d Temporal servers on %s, want 1", n, st.DB)
	}
	if err := syscall.Kill(st.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, "the Temporal server to die with its service", func() bool {
		return serverProcesses(st.DB) == 0 && !testenv.Alive(st.ServerPID)
	})
}
