package main

import (
	"context"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"

	"millrace/internal/jobs"
	"millrace/internal/mcpserver"
	"millrace/internal/metrics"
	"millrace/internal/metrics/metricstest"
	"millrace/internal/testenv"
)

var metricsURL = regexp.MustCompile(`serving Prometheus metrics" url=(http://\S+)`)

// TestMetricsFlag runs the binary with --metrics: its tool calls and its
// Temporal client's requests are on one page.
func TestMetricsFlag(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	bin, m := testenv.StartBinary(t, binary, w.args("--http", "127.0.0.1:0", "--metrics", "127.0.0.1:0", "--log-level", "info"),
		environWithout(metrics.TokenEnv), servingURL)
	mm := metricsURL.FindStringSubmatch(bin.Stderr())
	if mm == nil {
		t.Fatalf("no metrics address in the log:\n%s", bin.Stderr())
	}

	tr, err := transport.NewStreamableHTTP(m[1])
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr)
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	initialize(t, c)
	call[jobs.List](t, c, "list_jobs", map[string]any{}, nil)

	page := metricstest.Wait(t, mm[1], "", time.Minute, "the list_jobs call", func(p metricstest.Page) bool {
		return p.Sum(mcpserver.ToolCallsMetric, map[string]string{"tool": "list_jobs", "outcome": mcpserver.OutcomeOK}) == 1
	})
	if page.Sum("temporal_request_total", map[string]string{"operation": "ListWorkflowExecutions"}) == 0 {
		t.Error("the MCP server's Temporal client records no ListWorkflowExecutions request")
	}
}

// TestMetricsRefusesNonLoopbackWithoutToken: the binary says what to do and
// exits before connecting to anything.
func TestMetricsRefusesNonLoopbackWithoutToken(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, w.args("--http", "127.0.0.1:0", "--metrics", "0.0.0.0:0")...)
	cmd.Env = environWithout(metrics.TokenEnv)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("exit %v, want 2: %s", err, out)
	}
	if !strings.Contains(string(out), metrics.TokenEnv) || !strings.Contains(string(out), "not a loopback address") {
		t.Errorf("the refusal does not say what to do: %s", out)
	}
}
