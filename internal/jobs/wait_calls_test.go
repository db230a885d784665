package jobs_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"millrace/internal/jobs"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// TestWaitEndedCalls: waiting on a running job costs the server a status
// read per poll and one long poll, however the wait ends. (A long poll
// given the wait's deadline made about 550 calls in the wait's last
// second.)
func TestWaitEndedCalls(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := server.Config(t)
	server.StartWorker(t, cfg)
	svc := server.Service(t, cfg, dir)
	calls := newRPCCounter()
	counted := jobs.Service{Client: server.Dial(t, calls.option), Namespace: svc.Namespace, TaskQueue: svc.TaskQueue, DataDir: svc.DataDir, Roots: svc.Roots}

	started, err := svc.Start(ctx, jobs.StartRequest{Path: testenv.WriteNotebook(t, dir, "sleeps.ipynb", "import time", "time.sleep(60)")})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, time.Minute, "the run to start", func() bool {
		st, err := svc.Status(ctx, started.JobID)
		return err == nil && st.Status == workflows.StatusRunning
	})
	wait := 3 * time.Second
	got := calls.during(func() {
		st, err := counted.WaitEnded(ctx, started.JobID, wait, nil)
		if err != nil || st.Status != workflows.StatusRunning {
			t.Errorf("wait on a running job: %s %v", st.Status, err)
		}
	})
	// A status read (describe) every 500 ms, one long poll.
	if polls, n := got["GetWorkflowExecutionHistory"], total(got); polls > 1 || n > 2*int(wait/(500*time.Millisecond))+4 {
		t.Errorf("waiting %s made %d calls (%d long polls): %v", wait, n, polls, got)
	}
	if _, err := svc.Cancel(ctx, started.JobID, "done"); err != nil {
		t.Fatal(err)
	}
}

// rpcCounter counts a client's gRPC calls by method name, their request
// bytes, and the calls in flight.
type rpcCounter struct {
	mu       sync.Mutex
	n        map[string]int
	bytes    map[string]int
	inFlight map[string]int
}

func newRPCCounter() *rpcCounter {
	return &rpcCounter{n: map[string]int{}, bytes: map[string]int{}, inFlight: map[string]int{}}
}

func (c *rpcCounter) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	name := method[strings.LastIndex(method, "/")+1:]
	c.mu.Lock()
	c.n[name]++
	c.inFlight[name]++
	if m, ok := req.(proto.Message); ok {
		c.bytes[name] += proto.Size(m)
	}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.inFlight[name]--
		c.mu.Unlock()
	}()
	return invoker(ctx, method, req, reply, cc, opts...)
}

// requestBytes returns the request bytes of a method's calls so far.
func (c *rpcCounter) requestBytes(method string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes[method]
}

// pending returns the calls of a method in flight now.
func (c *rpcCounter) pending(method string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inFlight[method]
}

// option installs the counter on a client.
func (c *rpcCounter) option(o *client.Options) {
	o.ConnectionOptions.DialOptions = append(o.ConnectionOptions.DialOptions, grpc.WithChainUnaryInterceptor(c.intercept))
}

// during returns the calls f made, by method.
func (c *rpcCounter) during(f func()) map[string]int {
	before := c.snapshot()
	f()
	after := c.snapshot()
	for m, n := range before {
		if after[m] -= n; after[m] == 0 {
			delete(after, m)
		}
	}
	return after
}

func (c *rpcCounter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.n))
	for m, n := range c.n {
		out[m] = n
	}
	return out
}
