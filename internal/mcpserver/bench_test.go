package mcpserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	sdkclient "go.temporal.io/sdk/client"
	"google.golang.org/grpc"

	"millrace/internal/jobs"
	"millrace/internal/mcpserver"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// callers is how many MCP clients call at once.
const callers = 50

// BenchmarkToolLatency measures the latency of get_job_status,
// get_job_logs and start_notebook with 50 clients calling at once while
// 10 notebook runs execute and print (one op is one call by each of the 50
// clients). It reports the 50th and 99th percentiles, and the
// DescribeWorkflowExecution calls the job service made per tool call; it
// asserts no times. start_notebook goes last: the runs it starts only
// queue (the worker's slots are taken), but 50 starts at once load the
// server most.
func BenchmarkToolLatency(b *testing.B) {
	e := newEnv(b, slowNB, testenv.Testdata("greeting.ipynb"))
	// The callers' job service, on a client that counts its Describes
	// and keeps the longest one.
	var describes, slowest atomic.Int64
	countDescribes := func(o *sdkclient.Options) {
		o.ConnectionOptions.DialOptions = append(o.ConnectionOptions.DialOptions, grpc.WithChainUnaryInterceptor(
			func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
				if !strings.HasSuffix(method, "/DescribeWorkflowExecution") {
					return invoker(ctx, method, req, reply, cc, opts...)
				}
				describes.Add(1)
				began := time.Now()
				err := invoker(ctx, method, req, reply, cc, opts...)
				for took := int64(time.Since(began)); ; {
					if prev := slowest.Load(); took <= prev || slowest.CompareAndSwap(prev, took) {
						break
					}
				}
				return err
			}))
	}
	svc := &jobs.Service{Client: server.Dial(b, countDescribes), Namespace: e.svc.Namespace, TaskQueue: e.svc.TaskQueue, DataDir: e.svc.DataDir, Roots: e.svc.Roots}
	clients := make([]*client.Client, callers)
	for i := range clients {
		clients[i] = connect(b, svc)
	}
	var started []string // by start_notebook; the busy runs are not in it
	var busy []string
	var mu sync.Mutex
	b.Cleanup(func() {
		// Stop every run the benchmark started, so the server is idle for
		// what follows: the queued ones first, many at once, while the
		// busy runs still hold the worker's slots (no kernel starts).
		ctx := context.Background()
		ids := make(chan string)
		var wg sync.WaitGroup
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for id := range ids {
					_ = e.svc.Client.TerminateWorkflow(ctx, id, "", "benchmark over")
				}
			}()
		}
		for _, id := range started {
			ids <- id
		}
		close(ids)
		wg.Wait()
		for _, id := range busy {
			_ = e.svc.Client.TerminateWorkflow(ctx, id, "", "benchmark over")
		}
	})

	// The runs executing meanwhile: 10, on two workers of 5 slots (the
	// env's and one more), each printing ten lines a second.
	server.StartWorker(b, e.cfg)
	for range 2 * e.cfg.MaxRuns {
		r, _ := call[mcpserver.StartNotebookResult](b, e.client, "start_notebook", map[string]any{
			"path": "slow.ipynb", "parameters": map[string]any{"steps": 100000, "delay": 0.1},
		})
		busy = append(busy, r.JobID)
	}
	for _, id := range busy {
		waitRunning(b, e.client, id)
	}

	// measure runs call(c, i) by each of the 50 callers c, b.N times each,
	// all at once, and reports the percentiles of the calls' latencies.
	measure := func(b *testing.B, call func(c, i int) error) {
		latencies := make([][]time.Duration, callers)
		described := describes.Load()
		slowest.Store(0)
		b.ResetTimer()
		var wg sync.WaitGroup
		for c := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < b.N; i++ {
					began := time.Now()
					err := call(c, c*b.N+i)
					latencies[c] = append(latencies[c], time.Since(began))
					if err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		b.StopTimer()
		var all []time.Duration
		for _, l := range latencies {
			all = append(all, l...)
		}
		sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
		pct := func(p float64) float64 {
			return float64(all[min(len(all)-1, int(p*float64(len(all))))].Microseconds()) / 1000
		}
		b.ReportMetric(pct(0.50), "p50-ms")
		b.ReportMetric(pct(0.99), "p99-ms")
		b.ReportMetric(float64(len(all)), "calls")
		b.ReportMetric(float64(describes.Load()-described)/float64(len(all)), "describes/call")
		// A kept status is refreshed in the background; a caller waits for
		// the server only when a Describe outlasts the rest of its bound.
		b.ReportMetric(float64(time.Duration(slowest.Load()).Microseconds())/1000, "slowest-describe-ms")
	}
	bench := func(b *testing.B, tool string, args func(i int) map[string]any, after func(*mcp.CallToolResult)) {
		measure(b, func(c, i int) error {
			req := mcp.CallToolRequest{}
			req.Params.Name, req.Params.Arguments = tool, args(i)
			res, err := clients[c].CallTool(context.Background(), req)
			if err != nil || res.IsError {
				return fmt.Errorf("%s: %v %+v", tool, err, res)
			}
			if after != nil {
				after(res)
			}
			return nil
		})
	}

	b.Run("get_job_status", func(b *testing.B) {
		bench(b, "get_job_status", func(i int) map[string]any {
			return map[string]any{"job_id": busy[i%len(busy)]}
		}, nil)
	})
	// What get_job_status and get_job_logs spend most of their time on:
	// the workflow's description from the server, called directly.
	b.Run("describe", func(b *testing.B) {
		measure(b, func(_, i int) error {
			_, err := svc.Client.DescribeWorkflow(context.Background(), busy[i%len(busy)], "")
			return err
		})
	})
	b.Run("get_job_logs", func(b *testing.B) {
		bench(b, "get_job_logs", func(i int) map[string]any {
			return map[string]any{"job_id": busy[i%len(busy)], "limit": 100}
		}, nil)
	})

	b.Run("start_notebook", func(b *testing.B) {
		bench(b, "start_notebook", func(int) map[string]any {
			return map[string]any{"path": "greeting.ipynb", "parameters": map[string]any{"greeting": "bench"}}
		}, func(res *mcp.CallToolResult) {
			var r mcpserver.StartNotebookResult
			b, _ := json.Marshal(res.StructuredContent)
			if json.Unmarshal(b, &r) == nil {
				mu.Lock()
				started = append(started, r.JobID)
				mu.Unlock()
			}
		})
	})
	// Say if the load cost a background run its attempt (a heartbeat
	// timeout when the server falls behind): the latencies were then
	// measured with fewer runs executing.
	for _, id := range busy {
		st, err := e.svc.Status(context.Background(), id)
		if err != nil || st.Status != workflows.StatusRunning || st.Attempt != 1 {
			b.Logf("note: background run %s is %s on attempt %d (%v): %s", id, st.Status, st.Attempt, err, st.Message)
		}
	}
}
