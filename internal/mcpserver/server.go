// Package mcpserver exposes millrace's job service to AI assistants as MCP
// tools: start a notebook run (it returns at once with a job id), follow
// its status, logs and outputs, cancel it, list jobs, inspect a notebook
// before running it. Every tool answers with structured content (declared
// by an output schema) and a short text, and a caller's mistake comes back
// as a tool error whose message says what to do.
//
// The server holds no state of its own: a run lives in Temporal and in the
// data dir, so it survives the client and this server going away. (The job
// service keeps recent status answers for a second, a cache that a restart
// only empties.)
package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"go.temporal.io/sdk/client"

	"millrace/internal/jobs"
)

// Name is the server name clients see in the initialize handshake.
const Name = "millrace"

// DefaultVersion is reported when Options.Version is empty.
const DefaultVersion = "0.1.0"

// instructions tell a model how the tools fit together.
const instructions = `millrace runs Jupyter notebooks as durable jobs (papermill-compatible).
Typical use: inspect_notebook to learn a notebook's parameters, start_notebook to
start a run (it returns a job id at once; runs may take hours), then
get_job_status to follow it, get_job_logs to read what it prints,
get_job_output for the executed cells' outputs and errors, and cancel_job to
stop it. list_jobs finds earlier jobs. start_batch runs a DAG of notebooks
(depends_on), followed with get_batch_status; rerun_job reruns a job, or only
the failed part of a batch. Paths must lie inside the server's roots.
Each job is also a resource: millrace://jobs/{job_id} (status JSON),
millrace://jobs/{job_id}/logs (the log's last lines) and
millrace://jobs/{job_id}/output.ipynb; subscribe to one to be notified when
the job's status or progress changes instead of polling.`

// Options configure the server.
type Options struct {
	Version string
	// Logger receives plumbing errors; nil discards them.
	Logger *slog.Logger
	// ValidateOutput checks every structured result against its tool's
	// output schema, turning a mismatch into a tool error. Tests turn it
	// on. Production leaves it off: with 50 callers it made get_job_logs
	// several times slower (p50 about 50 ms to 190 ms), and results are
	// built from the same typed structs the schemas come from.
	ValidateOutput bool
	// Metrics, when set, receives tool call counts and latencies.
	Metrics client.MetricsHandler
}

// New returns an MCP server whose tools act on svc.
func New(svc *jobs.Service, opts Options) *server.MCPServer {
	version := opts.Version
	if version == "" {
		version = DefaultVersion
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	hooks := &server.Hooks{}
	serverOpts := []server.ServerOption{
		server.WithInstructions(instructions),
		server.WithToolCapabilities(false),
		// Job resources can be subscribed to; the list of resources does
		// not change (it is empty: see jobResourceTemplates).
		server.WithResourceCapabilities(true, false),
		server.WithHooks(hooks),
		server.WithRecovery(),
		// MCP Tasks are answered in front of mcp-go (tasks.go).
		advertiseTasks(hooks),
	}
	// Arguments are checked by bindArgs and the job service rather than by
	// mcp-go's input schema validator, whose reports ("/tail: &{Got:5000/1
	// Want:2000/1}") a model cannot act on.
	if opts.ValidateOutput {
		serverOpts = append(serverOpts, server.WithOutputSchemaValidation())
	}
	s := server.NewMCPServer(Name, version, serverOpts...)
	measureTools(s, opts.Metrics)
	t := &tools{svc: svc, logger: logger}
	taskLayers.Store(s, newTaskLayer(s, t))
	s.AddTools(t.all()...)
	s.AddResourceTemplates(t.resourceTemplates()...)
	s.AddResourceTemplates(t.jobResourceTemplates()...)
	newSubscriptions(svc, s, logger).register(hooks)
	return s
}

// tools holds what every tool handler needs.
type tools struct {
	svc    *jobs.Service
	logger *slog.Logger
}

func (t *tools) all() []server.ServerTool {
	return []server.ServerTool{
		t.startNotebook(),
		t.getJobStatus(),
		t.getJobLogs(),
		t.cancelJob(),
		t.listJobs(),
		t.inspectNotebook(),
		t.getJobOutput(),
		t.startBatch(),
		t.getBatchStatus(),
		t.rerunJob(),
	}
}

// toolFunc is a tool's logic: the structured result, its short text, and
// extra content (resource links) to send after the text.
type toolFunc[A, R any] func(ctx context.Context, req mcp.CallToolRequest, args A) (R, string, []mcp.Content, error)

// handle adapts a toolFunc to mcp-go. Arguments are bound to A; a
// *jobs.UserError becomes a tool error carrying its message as it is, so
// the model reads what to do; any other error is broken plumbing and goes
// back as a JSON-RPC error.
func handle[A, R any](t *tools, fn toolFunc[A, R]) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		args, problem := bindArgs[A](req)
		if problem != "" {
			return mcp.NewToolResultError(problem), nil
		}
		res, text, extra, err := fn(ctx, req, args)
		if err != nil {
			var u *jobs.UserError
			if errors.As(err, &u) {
				return mcp.NewToolResultError(u.Msg), nil
			}
			t.logger.Error("tool failed", "tool", req.Params.Name, "error", err)
			return nil, err
		}
		out := mcp.NewToolResultStructured(res, text)
		out.Content = append(out.Content, extra...)
		return out, nil
	}
}

// userError is a caller mistake found by this package rather than by the
// job service.
func userError(msg string) error { return &jobs.UserError{Msg: msg} }

// annotations sets every hint explicitly: mcp.NewTool's defaults call a
// tool destructive and open-world.
func annotations(title string, readOnly, destructive, idempotent bool) mcp.ToolOption {
	return mcp.WithToolAnnotation(mcp.ToolAnnotation{
		Title:           title,
		ReadOnlyHint:    mcp.ToBoolPtr(readOnly),
		DestructiveHint: mcp.ToBoolPtr(destructive),
		IdempotentHint:  mcp.ToBoolPtr(idempotent),
		// Tools act on this server's jobs and roots, not on the open world.
		OpenWorldHint: mcp.ToBoolPtr(false),
	})
}

// inputSchema declares T as the input schema, with extra JSON Schema
// keywords (bounds, enums) merged into named properties: struct tags carry
// only descriptions.
func inputSchema[T any](extra map[string]map[string]any) mcp.ToolOption {
	return func(tool *mcp.Tool) {
		mcp.WithInputSchema[T]()(tool)
		if len(extra) == 0 {
			return
		}
		var schema map[string]any
		if err := json.Unmarshal(tool.RawInputSchema, &schema); err != nil {
			panic("mcpserver: input schema of " + tool.Name + ": " + err.Error())
		}
		props, _ := schema["properties"].(map[string]any)
		for name, kw := range extra {
			p, ok := props[name].(map[string]any)
			if !ok {
				panic("mcpserver: input schema of " + tool.Name + " has no property " + name)
			}
			for k, v := range kw {
				p[k] = v
			}
		}
		b, err := json.Marshal(schema)
		if err != nil {
			panic("mcpserver: input schema of " + tool.Name + ": " + err.Error())
		}
		tool.RawInputSchema = b
	}
}
