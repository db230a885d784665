//go:build linux

package multihost_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"millrace/activities"
	"millrace/internal/config"
	"millrace/internal/executor"
	"millrace/internal/failure"
	"millrace/internal/jobs"
	"millrace/internal/paths"
	"millrace/internal/runopts"
	"millrace/internal/testcluster"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// hbTimeout is the run's heartbeat timeout: A's worker fences its attempt
// after half of it (activities.FenceAfter), the server gives the run to B
// after all of it.
const hbTimeout = 6 * time.Second

// TestPartitionedWorkerNeverRunsBesideItsRetry runs a notebook on worker
// A, cuts A's host off the network in the middle of it, and checks that
// A's kernel is gone within the heartbeat timeout, that B runs the retry
// only after, that no two cells of the two attempts ran at the same time,
// and that after the link heals A runs nothing more and the run succeeded
// once, with B's result.
func TestPartitionedWorkerNeverRunsBesideItsRetry(t *testing.T) {
	h := newHosts(t)
	run := h.start(t, jobs.StartRequest{Path: h.notebook, HeartbeatTimeout: hbTimeout, Options: runopts.Options{Checkpoint: workflows.CheckpointEveryCell}})
	attemptA := run + ".1"

	// A took the run (B is not there yet); B joins once A is cells in.
	h.waitRecords(t, "2 cells of A's attempt", func(rs []testcluster.Record) bool { return testcluster.Ended(rs, attemptA) >= 2 })
	workerB := testcluster.StartWorker(t, h.b, "B", h.workers)
	t.Logf("worker A pid %d, worker B pid %d", h.workerA.PID(), workerB.PID())

	cutAt := time.Now()
	h.a.Cut(t)
	testenv.Eventually(t, 3*hbTimeout, "A's kernel to be gone", func() bool {
		return len(testenv.ProcessesWithEnv(executor.MarkerEnv+"="+attemptA)) == 0
	})
	goneAt := time.Now()
	t.Logf("cut to A's kernel gone: %s (heartbeat timeout %s, A fences after %s)", goneAt.Sub(cutAt).Round(100*time.Millisecond), hbTimeout, activities.FenceAfter(hbTimeout))
	if goneAt.Sub(cutAt) > hbTimeout {
		t.Errorf("A's kernel outlived the cut by %s, more than the heartbeat timeout %s", goneAt.Sub(cutAt), hbTimeout)
	}

	// The server holds A's last heartbeat from before the cut, and in it
	// A's last recorded checkpoint: the one the retry must resume from.
	st, err := h.svc.Status(context.Background(), run)
	if err != nil {
		t.Fatal(err)
	}
	ck := st.Checkpoint
	if ck == nil || ck.Attempt != 1 {
		t.Fatalf("the run's checkpoint after the cut is %+v, want one of A's (attempt 1)", ck)
	}
	if !testcluster.HasRecord(h.records(t), "end", attemptA, ck.Cell) {
		t.Fatalf("A's last recorded checkpoint holds cell %d, which A never ended", ck.Cell)
	}
	t.Logf("A's last recorded checkpoint holds cell %d; A ended cell %d last", ck.Cell, testcluster.LastEnded(h.records(t), attemptA))

	firstB := h.waitOtherAttempt(t, run, attemptA, cutAt)
	attemptB := firstB.Attempt
	t.Logf("cut to B's first cell: %s (cell %d of attempt %s)", firstB.At.Sub(cutAt).Round(100*time.Millisecond), firstB.Cell, attemptB)
	const nB = 2
	if attemptB != run+".2" {
		t.Fatalf("B's first record is of attempt %s, want %s.2: an attempt was lost between", attemptB, run)
	}
	if firstB.Cell != ck.Cell+1 {
		t.Errorf("B's first cell is %d, want %d, the one after A's last recorded checkpoint", firstB.Cell, ck.Cell+1)
	}
	// The server gave the run to B because the attempt before timed out,
	// not because A's failure reached it: A's late answer is refused.
	desc, err := h.client.DescribeWorkflow(context.Background(), run, "")
	if err != nil {
		t.Fatal(err)
	}
	d := desc.RawResponse
	if p := d.GetPendingActivities(); len(p) != 1 || int(p[0].GetAttempt()) != nB || p[0].GetLastFailure().GetTimeoutFailureInfo().GetTimeoutType() != enumspb.TIMEOUT_TYPE_HEARTBEAT {
		t.Errorf("pending activity %v, want attempt %d after a heartbeat timeout", p, nB)
	}

	healAt := time.Now()
	h.a.Heal(t)
	h.workerA.WaitPolling(t, h.client, healAt)
	t.Logf("heal to A polling again: %s", time.Since(healAt).Round(100*time.Millisecond))

	st, err = h.svc.WaitEnded(context.Background(), run, 2*time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != workflows.StatusSucceeded || st.Attempt != nB {
		t.Fatalf("got %s on attempt %d (%+v), want SUCCEEDED on attempt %d", st.Status, st.Attempt, st.Error, nB)
	}
	if len(st.Attempts) != 2 || st.Attempts[0].Attempt != 1 || st.Attempts[0].Outcome != string(failure.KindLost) || !strings.HasPrefix(st.Attempts[0].Message, "lost contact with the Temporal server") {
		t.Errorf("attempts %+v, want A's lost, as its fence recorded it, then B's", st.Attempts)
	} else if st.Attempts[1].ResumedFromCell != ck.Cell+1 {
		t.Errorf("B's attempt says it resumed from cell %d, want %d", st.Attempts[1].ResumedFromCell, ck.Cell+1)
	}
	// A is back and idle: nothing of the run may start again.
	time.Sleep(3 * time.Second)
	rs := h.records(t)
	testcluster.CheckNoOverlap(t, rs, map[string]time.Time{attemptA: goneAt})
	t.Logf("A ran %d cells to their end, B %d; no two overlap", testcluster.Ended(rs, attemptA), testcluster.Ended(rs, attemptB))
	for _, r := range rs {
		if r.Attempt != attemptA && r.Attempt != attemptB {
			t.Errorf("a record of an attempt that should not have run: %+v", r)
		}
		if r.Attempt == attemptA && r.At.After(goneAt) {
			t.Errorf("A's attempt recorded %+v after its kernel was gone", r)
		}
	}
	if n := testcluster.Ended(rs, attemptB); n != h.cells-(ck.Cell+1) {
		t.Errorf("B ran %d cells to their end, want the %d after the checkpoint", n, h.cells-(ck.Cell+1))
	}
	h.checkHistory(t, run, nB, workerB.PID())
}

// waitOtherAttempt waits for the first cell of an attempt other than
// attemptA and returns its record, logging the pending attempts it sees
// meanwhile (an attempt the server handed to a poll that A left waiting
// shows as started by A).
func (h *hosts) waitOtherAttempt(t *testing.T, run, attemptA string, cutAt time.Time) testcluster.Record {
	t.Helper()
	var first testcluster.Record
	seen := ""
	h.waitRecords(t, "another worker's attempt to run a cell", func(rs []testcluster.Record) bool {
		if desc, err := h.client.DescribeWorkflow(context.Background(), run, ""); err == nil {
			d := desc.RawResponse
			for _, p := range d.GetPendingActivities() {
				now := fmt.Sprintf("attempt %d %s by %s", p.GetAttempt(), p.GetState(), p.GetLastWorkerIdentity())
				if now != seen {
					t.Logf("%s after the cut: %s", time.Since(cutAt).Round(100*time.Millisecond), now)
					seen = now
				}
			}
			if d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
				t.Fatalf("the run ended %s", d.GetWorkflowExecutionInfo().GetStatus())
			}
		}
		for _, r := range rs {
			if r.Attempt != attemptA {
				first = r
				return true
			}
		}
		return false
	})
	return first
}

// hosts is the test's two machines: the server and (later) worker B on
// host b, worker A on host a, one data dir on the file system they share.
type hosts struct {
	a, b     *testcluster.Host
	client   client.Client
	svc      *jobs.Service
	workers  testcluster.WorkerConfig
	dir      string // the notebook's folder: its cwd, where it records
	notebook string
	cells    int
	workerA  *testcluster.Worker
}

func newHosts(t *testing.T) *hosts {
	t.Helper()
	n := testcluster.NewNetwork(t)
	h := &hosts{a: n.AddHost("a"), b: n.AddHost("b"), dir: t.TempDir(), cells: 12}
	bin, err := testenv.BuildBinary(t.TempDir(), "./cmd/worker", "millrace-worker")
	if err != nil {
		t.Fatal(err)
	}
	h.notebook = testcluster.CellsNotebook(t, h.dir, "cells.ipynb", h.cells, 2)
	server := testcluster.StartTemporal(t, h.b, testcluster.SQLite(filepath.Join(t.TempDir(), "temporal.db")))
	// The test is a client on host b.
	h.client = server.Dial(t, h.b)
	h.workers = testcluster.WorkerConfig{Bin: bin, Address: server.Address, TaskQueue: "multihost", DataDir: t.TempDir(), Grace: 2 * time.Second}
	roots, err := paths.NewRoots([]string{h.dir})
	if err != nil {
		t.Fatal(err)
	}
	h.svc = &jobs.Service{Client: h.client, Namespace: config.DefaultNamespace, TaskQueue: h.workers.TaskQueue, DataDir: h.workers.DataDir, Roots: roots}
	h.workerA = testcluster.StartWorker(t, h.a, "A", h.workers)
	return h
}

func (h *hosts) start(t *testing.T, req jobs.StartRequest) string {
	t.Helper()
	st, err := h.svc.Start(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return st.JobID
}

// checkHistory checks that the run completed once, with the result of
// worker B (pidB) on attempt, and that no event came after.
func (h *hosts) checkHistory(t *testing.T, run string, attempt, pidB int) {
	t.Helper()
	it := h.client.GetWorkflowHistory(context.Background(), run, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	completed, last := 0, ""
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		last = e.GetEventType().String()
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
			completed++
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			a := e.GetActivityTaskStartedEventAttributes()
			if int(a.GetAttempt()) != attempt || !strings.HasPrefix(a.GetIdentity(), strconv.Itoa(pidB)+"@") {
				t.Errorf("the recorded attempt is %d by %s, want attempt %d by worker B (pid %d)", a.GetAttempt(), a.GetIdentity(), attempt, pidB)
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			if id := e.GetActivityTaskCompletedEventAttributes().GetIdentity(); !strings.HasPrefix(id, strconv.Itoa(pidB)+"@") {
				t.Errorf("the run's result came from %s, want worker B (pid %d)", id, pidB)
			}
		}
	}
	if completed != 1 || last != enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED.String() {
		t.Errorf("history: %d completions, last event %s; want one completion, last", completed, last)
	}
}

func (h *hosts) records(t *testing.T) []testcluster.Record { return testcluster.Records(t, h.dir) }

func (h *hosts) waitRecords(t *testing.T, what string, cond func([]testcluster.Record) bool) {
	t.Helper()
	testenv.Eventually(t, 90*time.Second, what, func() bool { return cond(h.records(t)) })
}
