package mcpserver_test

import (
	"context"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"millrace/internal/config"
	sdkconnect "millrace/internal/connect"
	"millrace/internal/jobs"
	"millrace/internal/mcpserver"
	"millrace/internal/metrics"
	"millrace/internal/metrics/metricstest"
	"millrace/internal/testenv"
)

// TestToolMetrics calls tools through in-process clients and reads the
// calls back from a real metrics page, by tool and outcome.
func TestToolMetrics(t *testing.T) {
	ms, err := metrics.Start("127.0.0.1:0", "", testenv.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	e := newEnv(t, progressNB)
	opts := mcpserver.Options{Logger: testenv.Logger(), ValidateOutput: true, Metrics: ms.Handler()}
	c := connectWith(t, e.svc, opts)

	for range 3 {
		call[map[string]any](t, c, "inspect_notebook", map[string]any{"path": e.path("progress.ipynb")})
	}
	callError(t, c, "get_job_status", map[string]any{"job_id": "nb-no-such-job"})
	callError(t, c, "inspect_notebook", map[string]any{"path": e.path("missing.ipynb")})

	// Broken plumbing: a job service whose Temporal client is closed.
	broken := jobs.Service{Namespace: e.svc.Namespace, TaskQueue: e.svc.TaskQueue, DataDir: e.svc.DataDir, Roots: e.svc.Roots}
	bc, err := sdkconnect.Dial(context.Background(), &config.Config{Address: server.Address, Namespace: "default"}, testenv.Logger())
	if err != nil {
		t.Fatal(err)
	}
	bc.Close()
	broken.Client = bc
	cb := connectWith(t, &broken, opts)
	req := mcp.CallToolRequest{}
	req.Params.Name = "list_jobs"
	req.Params.Arguments = map[string]any{}
	if res, err := cb.CallTool(context.Background(), req); err == nil {
		t.Fatalf("list_jobs on a closed Temporal client: got %+v, want a JSON-RPC error", res)
	}

	tool := func(name, outcome string) map[string]string {
		return map[string]string{"tool": name, "outcome": outcome}
	}
	page := metricstest.Wait(t, ms.URL(), "", time.Minute, "6 tool calls counted", func(p metricstest.Page) bool {
		return p.Sum(mcpserver.ToolCallsMetric, nil) == 6
	})
	for _, c := range []struct {
		tags map[string]string
		want float64
	}{
		{tool("inspect_notebook", mcpserver.OutcomeOK), 3},
		{tool("inspect_notebook", mcpserver.OutcomeUserError), 1},
		{tool("get_job_status", mcpserver.OutcomeUserError), 1},
		{tool("list_jobs", mcpserver.OutcomeError), 1},
	} {
		if got := page.Sum(mcpserver.ToolCallsMetric, c.tags); got != c.want {
			t.Errorf("%s%v = %v, want %v", mcpserver.ToolCallsMetric, c.tags, got, c.want)
		}
	}
	for name, want := range map[string]float64{"inspect_notebook": 4, "get_job_status": 1, "list_jobs": 1} {
		if got := page.Sum(mcpserver.ToolCallDurationMetric+"_count", map[string]string{"tool": name}); got != want {
			t.Errorf("latency count of %s = %v, want %v", name, got, want)
		}
	}
	if page.Sum(mcpserver.ToolCallDurationMetric+"_sum", nil) <= 0 {
		t.Error("tool latencies sum to zero")
	}
}
