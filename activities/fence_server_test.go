package activities_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"millrace/activities"
	"millrace/internal/config"
	"millrace/internal/connect"
	"millrace/internal/executor"
	"millrace/internal/failure"
	"millrace/internal/jobs"
	"millrace/internal/nbworker"
	"millrace/internal/rundir"
	"millrace/internal/runopts"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// heartbeatFault breaks one attempt's heartbeats between the worker's
// heartbeat record and the server, as the network would.
type heartbeatFault struct {
	mode  atomic.Int32 // faultNone, faultHang or faultDrop
	mu    sync.Mutex
	token string // the attempt broken: the first heartbeat's while broken
}

const (
	faultNone = iota
	// faultHang holds the heartbeat until its deadline: a partition.
	faultHang
	// faultDrop answers for the server without asking it: the server
	// hears nothing while the worker believes it heard.
	faultDrop
)

func (f *heartbeatFault) option() connect.Option {
	return func(o *client.Options) {
		o.ConnectionOptions.DialOptions = append(o.ConnectionOptions.DialOptions, grpc.WithChainUnaryInterceptor(f.intercept))
	}
}

func (f *heartbeatFault) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	r, ok := req.(*workflowservice.RecordActivityTaskHeartbeatRequest)
	mode := f.mode.Load()
	if !ok || mode == faultNone {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	f.mu.Lock()
	if f.token == "" {
		f.token = string(r.GetTaskToken())
	}
	target := f.token == string(r.GetTaskToken())
	f.mu.Unlock()
	switch {
	case !target:
		return invoker(ctx, method, req, reply, cc, opts...)
	case mode == faultHang:
		<-ctx.Done()
		return status.FromContextError(ctx.Err()).Err()
	default:
		return nil
	}
}

// fencedWorker starts an in-process worker whose client records its
// heartbeats and fences its attempts on them, with f between the record
// and the server.
func fencedWorker(t *testing.T, cfg *config.Config, f *heartbeatFault) {
	t.Helper()
	hb := connect.NewHeartbeats()
	c := server.Dial(t, connect.WithHeartbeats(hb), f.option())
	w, err := nbworker.Start(c, cfg, testenv.Logger(), nbworker.WithHeartbeats(hb))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
}

// attemptEnd waits for attempt n's end record: the attempt writes it once
// its processes are gone and its output drained.
func attemptEnd(t *testing.T, cfg *config.Config, jobID string, n int) rundir.AttemptEnd {
	t.Helper()
	var end rundir.AttemptEnd
	testenv.Eventually(t, 10*time.Second, "the attempt's end record", func() bool {
		e, ok, err := rundir.ReadEnd(rundir.AttemptDir(cfg.DataDir, jobID, n))
		if err != nil {
			t.Fatal(err)
		}
		end = e
		return ok
	})
	return end
}

func attemptMarker(jobID string, n int) string {
	return executor.MarkerEnv + "=" + jobID + "." + strconv.Itoa(n)
}

// TestFenceStopsAnAttemptCutOffFromTheServer cuts a running attempt's
// heartbeats off (each hangs until its deadline, as in a partition): the
// worker stops the kernel within the heartbeat timeout, records the
// attempt as lost, and once the link is back the run ends on attempt 2.
func TestFenceStopsAnAttemptCutOffFromTheServer(t *testing.T) {
	dir := t.TempDir()
	nb := testenv.CopyFile(t, "testdata/slow.ipynb", dir)
	cfg := server.Config(t)
	f := &heartbeatFault{}
	fencedWorker(t, cfg, f)
	svc := server.Service(t, cfg, dir)
	const hbTimeout = 6 * time.Second
	run := start(t, svc, jobs.StartRequest{Path: nb, HeartbeatTimeout: hbTimeout, Options: runopts.Options{Parameters: map[string]any{"steps": 40.0, "delay": 0.2}}})
	waitRunning(t, svc, run.JobID, 0)
	kv := attemptMarker(run.JobID, 1)
	if n := len(testenv.ProcessesWithEnv(kv)); n < 2 {
		t.Fatalf("found %d processes of attempt 1, want the runner and its kernel", n)
	}

	cut := time.Now()
	f.mode.Store(faultHang)
	testenv.Eventually(t, 2*hbTimeout, "attempt 1's processes to be gone", func() bool {
		return len(testenv.ProcessesWithEnv(kv)) == 0
	})
	gone := time.Since(cut)
	t.Logf("cut to attempt 1's processes gone: %s (heartbeat timeout %s, fence after %s)", gone.Round(time.Millisecond), hbTimeout, activities.FenceAfter(hbTimeout))
	if gone > hbTimeout {
		t.Errorf("attempt 1 ran %s after its heartbeats were cut, longer than the heartbeat timeout %s", gone, hbTimeout)
	}
	end := attemptEnd(t, cfg, run.JobID, 1)
	if end.Outcome != string(failure.KindLost) || !strings.HasPrefix(end.Message, "lost contact with the Temporal server for 3s: stopped this attempt so that the retry on another worker does not run beside it") || !end.Retried {
		t.Errorf("attempt 1's end: %+v", end)
	}

	f.mode.Store(faultNone)
	st := waitEnd(t, svc, run.JobID, 2*time.Minute)
	if st.Status != workflows.StatusSucceeded || st.Attempt != 2 {
		t.Fatalf("got %s on attempt %d (%+v), want SUCCEEDED on attempt 2", st.Status, st.Attempt, st.Error)
	}
	if len(st.Attempts) != 2 || st.Attempts[0].Outcome != string(failure.KindLost) {
		t.Fatalf("attempts %+v, want the first lost", st.Attempts)
	}
}

// TestFenceStopsAnAttemptTheServerTimedOut hides an attempt's heartbeats
// from the server while its worker believes them heard, until the server
// times the attempt out; the next heartbeat is answered NotFound, and the
// worker stops the attempt at once. The worker has one slot, so the
// retry waits for it and runs on the same worker.
func TestFenceStopsAnAttemptTheServerTimedOut(t *testing.T) {
	dir := t.TempDir()
	nb := testenv.CopyFile(t, "testdata/slow.ipynb", dir)
	cfg := server.Config(t)
	cfg.MaxRuns = 1
	f := &heartbeatFault{}
	fencedWorker(t, cfg, f)
	svc := server.Service(t, cfg, dir)
	const hbTimeout = 4 * time.Second
	run := start(t, svc, jobs.StartRequest{Path: nb, HeartbeatTimeout: hbTimeout, Options: runopts.Options{Parameters: map[string]any{"steps": 40.0, "delay": 0.2}}})
	waitRunning(t, svc, run.JobID, 0)
	kv := attemptMarker(run.JobID, 1)

	f.mode.Store(faultDrop)
	testenv.Eventually(t, 30*time.Second, "the server to time attempt 1 out", func() bool {
		d, err := server.Client.DescribeWorkflow(context.Background(), run.JobID, "")
		if err != nil {
			t.Fatal(err)
		}
		p := d.RawResponse.GetPendingActivities()
		return len(p) == 1 && p[0].GetAttempt() == 2
	})
	if len(testenv.ProcessesWithEnv(kv)) == 0 {
		t.Fatal("attempt 1 stopped while its worker believed its heartbeats heard: nothing left to fence")
	}
	lift := time.Now()
	f.mode.Store(faultNone)
	testenv.Eventually(t, 10*time.Second, "attempt 1's processes to be gone", func() bool {
		return len(testenv.ProcessesWithEnv(kv)) == 0
	})
	t.Logf("NotFound answer to attempt 1's processes gone: within %s", time.Since(lift).Round(time.Millisecond))
	end := attemptEnd(t, cfg, run.JobID, 1)
	if end.Outcome != string(failure.KindLost) || !strings.Contains(end.Message, "no longer knows this attempt") {
		t.Errorf("attempt 1's end: %+v", end)
	}
	st := waitEnd(t, svc, run.JobID, 2*time.Minute)
	if st.Status != workflows.StatusSucceeded || st.Attempt != 2 {
		t.Fatalf("got %s on attempt %d (%+v), want SUCCEEDED on attempt 2", st.Status, st.Attempt, st.Error)
	}
}
