package activities_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/grpc"

	"millrace/internal/config"
	"millrace/internal/connect"
	"millrace/internal/heartbeat"
	"millrace/internal/jobs"
	"millrace/internal/nbworker"
	"millrace/internal/runopts"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// heartbeatRecord is every heartbeat RPC a worker's client made that the
// server accepted, with the progress it carried: what reached the server,
// after the activity's gate and the SDK's throttle.
type heartbeatRecord struct {
	mu    sync.Mutex
	beats []sentBeat
	// cancels is when a heartbeat of each run first came back with the
	// server's cancel request (when the cancel reached the worker), by
	// the run's output path, which holds its job id.
	cancels map[string]time.Time
}

type sentBeat struct {
	at       time.Time
	progress workflows.Progress
}

// option installs the record's interceptor in a client's connection.
func (r *heartbeatRecord) option() connect.Option {
	return func(o *client.Options) {
		o.ConnectionOptions.DialOptions = append(o.ConnectionOptions.DialOptions, grpc.WithChainUnaryInterceptor(r.intercept))
	}
}

func (r *heartbeatRecord) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	hb, ok := req.(*workflowservice.RecordActivityTaskHeartbeatRequest)
	err := invoker(ctx, method, req, reply, cc, opts...)
	if ok && err == nil {
		b := sentBeat{at: time.Now()}
		if ps := hb.GetDetails().GetPayloads(); len(ps) > 0 {
			_ = json.Unmarshal(ps[0].GetData(), &b.progress)
		}
		canceled := reply.(*workflowservice.RecordActivityTaskHeartbeatResponse).GetCancelRequested()
		r.mu.Lock()
		r.beats = append(r.beats, b)
		if _, seen := r.cancels[b.progress.OutputPath]; canceled && !seen {
			if r.cancels == nil {
				r.cancels = map[string]time.Time{}
			}
			r.cancels[b.progress.OutputPath] = b.at
		}
		r.mu.Unlock()
	}
	return err
}

// cancelReached is when a heartbeat of the job first came back with its
// cancel request; false if none did.
func (r *heartbeatRecord) cancelReached(jobID string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for out, at := range r.cancels {
		if strings.Contains(out, jobID) {
			return at, true
		}
	}
	return time.Time{}, false
}

// since returns the heartbeats accepted at or after t.
func (r *heartbeatRecord) since(t time.Time) []sentBeat {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []sentBeat
	for _, b := range r.beats {
		if !b.at.Before(t) {
			out = append(out, b)
		}
	}
	return out
}

// startCountedWorker starts a worker as millrace-worker does (fenced on
// its client's heartbeat record) whose accepted heartbeats are recorded.
func startCountedWorker(t testing.TB, cfg *config.Config) *heartbeatRecord {
	t.Helper()
	rec := &heartbeatRecord{}
	hb := connect.NewHeartbeats()
	c := server.Dial(t, connect.WithHeartbeats(hb), rec.option())
	w, err := nbworker.Start(c, cfg, testenv.Logger(), nbworker.WithHeartbeats(hb))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return rec
}

// TestQuietCellSendsOnlyKeepAlives runs a cell that sleeps (nothing
// changes) and then one that prints every 0.1 s, on a worker that looks
// every 500 ms with an 8 s heartbeat timeout: the quiet cell reaches the
// server only as keep-alives, about every 2 s (T/4), the busy one every
// look; the fence, which trips at 4 s without an accepted heartbeat, lets
// the run succeed.
func TestQuietCellSendsOnlyKeepAlives(t *testing.T) {
	const every, timeout = 500 * time.Millisecond, 8 * time.Second
	keepAlive := heartbeat.ScheduleFor(every, timeout).KeepAlive
	dir := t.TempDir()
	nb := testenv.CopyFile(t, "testdata/quiet_then_busy.ipynb", dir)
	cfg := server.Config(t)
	cfg.HeartbeatEvery = every
	rec := startCountedWorker(t, cfg)
	svc := server.Service(t, cfg, dir)
	began := time.Now()
	run := start(t, svc, jobs.StartRequest{Path: nb, HeartbeatTimeout: timeout, Options: runopts.Options{Parameters: map[string]any{"quiet": 8.0, "busy": 4.0}}})
	if st := waitEnd(t, svc, run.JobID, 3*time.Minute); st.Status != workflows.StatusSucceeded {
		t.Fatalf("run ended %s: %+v", st.Status, st.Error)
	}
	var quiet, busy []sentBeat
	for _, b := range rec.since(began) {
		switch {
		case strings.HasPrefix(b.progress.CurrentSource, "import time"):
			quiet = append(quiet, b)
		case strings.HasPrefix(b.progress.CurrentSource, "end = "):
			busy = append(busy, b)
		}
	}
	// In the quiet cell, after the heartbeat that says it started, only
	// keep-alives: none sooner than a look before the keep-alive, none
	// later than the keep-alive and a look (a slow RPC).
	if len(quiet) < 3 {
		t.Fatalf("%d heartbeats during the 8 s quiet cell, want its start and keep-alives", len(quiet))
	}
	for i := 2; i < len(quiet); i++ {
		gap := quiet[i].at.Sub(quiet[i-1].at)
		if gap < keepAlive-2*every || gap > keepAlive+every {
			t.Errorf("quiet cell: %s between heartbeats %d and %d, want about the keep-alive %s", gap.Round(time.Millisecond), i-1, i, keepAlive)
		}
	}
	if n := len(quiet); n > int(8*time.Second/(keepAlive-2*every))+2 {
		t.Errorf("%d heartbeats during the 8 s quiet cell: the unchanged ones were not held back", n)
	}
	// In the busy cell, each look carries new log lines.
	if n, want := len(busy), int(4*time.Second/every)*2/3; n < want {
		t.Errorf("%d heartbeats during the 4 s busy cell, want at least %d (one a look)", n, want)
	}
}

// TestAShortHeartbeatTimeoutShortensTheInterval: a run started with a 3 s
// heartbeat timeout on a worker that heartbeats every 5 s is not timed
// out: its attempt heartbeats every second (T/3) instead.
func TestAShortHeartbeatTimeoutShortensTheInterval(t *testing.T) {
	dir := t.TempDir()
	nb := testenv.CopyFile(t, "testdata/slow.ipynb", dir)
	cfg := server.Config(t)
	cfg.HeartbeatEvery = 5 * time.Second
	rec := startCountedWorker(t, cfg)
	svc := server.Service(t, cfg, dir)
	began := time.Now()
	run := start(t, svc, jobs.StartRequest{Path: nb, HeartbeatTimeout: 3 * time.Second, Options: runopts.Options{Parameters: map[string]any{"steps": 40.0, "delay": 0.25}}})
	st := waitEnd(t, svc, run.JobID, 3*time.Minute)
	if st.Status != workflows.StatusSucceeded || st.Attempt != 1 {
		t.Fatalf("run ended %s in attempt %d: %+v", st.Status, st.Attempt, st.Error)
	}
	beats := rec.since(began)
	for i := 1; i < len(beats); i++ {
		if gap := beats[i].at.Sub(beats[i-1].at); gap > 1500*time.Millisecond {
			t.Errorf("%s between heartbeats %d and %d, want about 1 s (a third of the 3 s timeout)", gap.Round(time.Millisecond), i-1, i)
		}
	}
}
