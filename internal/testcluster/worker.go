//go:build linux

package testcluster

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"millrace/internal/testenv"
)

// Binaries are the millrace binaries a cluster runs.
type Binaries struct {
	Worker string // millrace-worker
	MCP    string // millrace-mcp
}

// Build builds millrace-worker and millrace-mcp into t's temp dir (the
// build cache makes it a link after the first time).
func Build(t testing.TB) Binaries {
	t.Helper()
	dir := t.TempDir()
	var b Binaries
	var err error
	if b.Worker, err = testenv.BuildBinary(dir, "./cmd/worker", "millrace-worker"); err != nil {
		t.Fatal(err)
	}
	if b.MCP, err = testenv.BuildBinary(dir, "./cmd/mcp", "millrace-mcp"); err != nil {
		t.Fatal(err)
	}
	return b
}

// WorkerConfig is what every worker of a cluster shares.
type WorkerConfig struct {
	Bin       string // millrace-worker
	Address   string // the Temporal frontend
	TaskQueue string
	// DataDir is the data dir every worker and the MCP server use: the
	// hosts share this machine's file system, as real hosts would share a
	// mounted volume.
	DataDir string
	MaxRuns int
	// Grace is how long a stopped attempt gets to save and stop its
	// kernel before SIGKILL; a worker told to stop gives its attempts
	// this long to end first (activities.HandBackWithin).
	Grace time.Duration
}

// Worker is a millrace-worker process on a host. Its stderr (logs at
// info) is shown when the test fails.
type Worker struct {
	Host *Host
	Name string
	cfg  WorkerConfig

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan error // one value, then closed
	stderr *testenv.SyncBuffer
	logs   []*testenv.SyncBuffer // of every process so far, for failures
	failed int                   // starts that exited before the worker started
}

// startTries is how many times Start starts a worker that exits as it
// starts, as a supervisor (systemd's Restart=on-failure) would.
const startTries = 3

// StartWorker starts a worker on host and waits until it polls; it is
// killed when t ends.
func StartWorker(t testing.TB, host *Host, name string, cfg WorkerConfig) *Worker {
	t.Helper()
	w := &Worker{Host: host, Name: name, cfg: cfg}
	t.Cleanup(func() {
		w.Kill()
		if t.Failed() {
			for i, l := range w.logs {
				t.Logf("worker %s (process %d)'s log:\n%s", name, i+1, l.String())
			}
		}
	})
	w.Start(t)
	return w
}

// Start starts the worker's process (again, after Stop or Kill) and waits
// until it polls. A process that exits before it starts polling is
// started again, up to startTries in all, as a supervisor would: on a
// loaded machine the worker's check of its Python (an import of nbclient
// and ipykernel, python.CheckTimeout) can time out. FailedStarts counts
// them.
func (w *Worker) Start(t testing.TB) {
	t.Helper()
	for try := 1; ; try++ {
		err := w.start(t)
		if err == nil {
			return
		}
		w.mu.Lock()
		w.failed++
		w.mu.Unlock()
		if try == startTries {
			t.Fatalf("worker %s exited as it started, %d times; the last: %v", w.Name, try, err)
		}
		t.Logf("worker %s exited as it started (start %d of %d): %v", w.Name, try, startTries, err)
	}
}

// FailedStarts counts the processes that exited before the worker started.
func (w *Worker) FailedStarts() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failed
}

func (w *Worker) start(t testing.TB) error {
	t.Helper()
	args := []string{"--temporal-address", w.cfg.Address, "--task-queue", w.cfg.TaskQueue,
		"--data-dir", w.cfg.DataDir, "--executor", "bundled", "--log-level", "info"}
	if w.cfg.MaxRuns > 0 {
		args = append(args, "--max-runs", strconv.Itoa(w.cfg.MaxRuns))
	}
	if w.cfg.Grace > 0 {
		args = append(args, "--grace", w.cfg.Grace.String())
	}
	cmd := w.Host.Command(w.cfg.Bin, args...)
	stderr := &testenv.SyncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); close(exited) }()
	w.mu.Lock()
	w.cmd, w.exited, w.stderr = cmd, exited, stderr
	w.logs = append(w.logs, stderr)
	w.mu.Unlock()
	for deadline := time.Now().Add(time.Minute); !strings.Contains(stderr.String(), "worker started"); time.Sleep(100 * time.Millisecond) {
		select {
		case err := <-exited:
			return fmt.Errorf("%v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker %s did not start within a minute\n%s", w.Name, stderr.String())
		}
	}
	return nil
}

// PID is the worker process's id; its identity on the server starts with
// "PID@".
func (w *Worker) PID() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cmd.Process.Pid
}

// Stop sends SIGTERM, as an operator stopping the worker would, and waits
// up to timeout for the process to exit: its running attempts get the
// grace to end, then stop their kernels and are handed back to the
// server, which retries them elsewhere.
// It returns how the process exited, or an error if it had not by then.
func (w *Worker) Stop(timeout time.Duration) error {
	w.mu.Lock()
	cmd, exited := w.cmd, w.exited
	w.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		return err
	case <-time.After(timeout):
		return fmt.Errorf("worker %s did not exit within %s of SIGTERM", w.Name, timeout)
	}
}

// Kill kills the worker process with SIGKILL, as a crash of its host
// would, and waits for it to be gone. Its kernels die with it
// (Pdeathsig).
func (w *Worker) Kill() {
	w.mu.Lock()
	cmd, exited := w.cmd, w.exited
	w.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// Log is what the current process wrote to stderr so far.
func (w *Worker) Log() string { return w.stderr.String() }

// WaitPolling waits until the worker polls its task queue on the server
// c is a client of, after since: a worker back on the network, or
// restarted, is serving again.
func (w *Worker) WaitPolling(t testing.TB, c client.Client, since time.Time) {
	t.Helper()
	prefix := strconv.Itoa(w.PID()) + "@"
	var seen []string
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		d, err := c.DescribeTaskQueue(context.Background(), w.cfg.TaskQueue, enumspb.TASK_QUEUE_TYPE_ACTIVITY)
		if err != nil {
			t.Fatal(err)
		}
		seen = seen[:0]
		for _, p := range d.GetPollers() {
			seen = append(seen, p.GetIdentity()+" at "+p.GetLastAccessTime().AsTime().Format(time.StampMilli))
			if strings.HasPrefix(p.GetIdentity(), prefix) && p.GetLastAccessTime().AsTime().After(since) {
				return
			}
		}
	}
	t.Fatalf("worker %s (%s) did not poll again within a minute of %s; pollers: %v", w.Name, prefix, since.Format(time.StampMilli), seen)
}

// Owns reports whether identity, a worker identity as the server records
// it ("pid@hostname"), is this worker's current process.
func (w *Worker) Owns(identity string) bool {
	return strings.HasPrefix(identity, strconv.Itoa(w.PID())+"@")
}
