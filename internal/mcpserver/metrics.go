package mcpserver

import (
	"context"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"go.temporal.io/sdk/client"
)

// Tool call metrics, recorded when Options.Metrics is set.
const (
	// ToolCallsMetric counts calls by tool and outcome.
	ToolCallsMetric = "millrace_mcp_tool_calls_total"
	// ToolCallDurationMetric is a histogram of call latency by tool.
	ToolCallDurationMetric = "millrace_mcp_tool_call_duration_seconds"
)

// Outcomes of a tool call: a caller's mistake (a tool error the model can
// act on) is told apart from broken plumbing (a JSON-RPC error, or a
// panic), which is what an operator is paged for.
const (
	OutcomeOK        = "ok"
	OutcomeUserError = "user_error"
	OutcomeError     = "error"
)

// measureTools records every tool call on s into h; nil h records nothing.
func measureTools(s *server.MCPServer, h client.MetricsHandler) {
	if h != nil {
		s.Use(toolMetrics(h))
	}
}

// toolMetrics measures a call when it returns, and also when it panics (the
// recovery middleware, outside this one, then turns the panic into an
// error): the deferred record runs while the panic unwinds.
func toolMetrics(h client.MetricsHandler) server.ToolHandlerMiddleware {
	return func(next server.ToolHandlerFunc) server.ToolHandlerFunc {
		return func(ctx context.Context, req mcp.CallToolRequest) (res *mcp.CallToolResult, err error) {
			start := time.Now()
			outcome := OutcomeError
			defer func() {
				// Only registered tools reach a handler, so the tool
				// label has as many values as there are tools.
				th := h.WithTags(map[string]string{"tool": req.Params.Name})
				th.Timer(ToolCallDurationMetric).Record(time.Since(start))
				th.WithTags(map[string]string{"outcome": outcome}).Counter(ToolCallsMetric).Inc(1)
			}()
			res, err = next(ctx, req)
			switch {
			case err == nil && res != nil && res.IsError:
				outcome = OutcomeUserError
			case err == nil && res != nil:
				outcome = OutcomeOK
			}
			return res, err
		}
	}
}
