package mcpserver

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"millrace/internal/jobs"
	"millrace/internal/limits"
	"millrace/internal/runopts"
)

// MaxWaitSeconds bounds start_notebook's wait_seconds: a tool call must stay
// well under the time clients give a call (often 60 s).
const MaxWaitSeconds = 50

// StartNotebookArgs are start_notebook's arguments: the notebook, the run
// options the tool takes (runopts.Direct is not among them) and the wait.
type StartNotebookArgs struct {
	Path string `json:"path" jsonschema:"the notebook (.ipynb) to run: absolute, or relative to the server's first root; it must lie inside the server's roots"`
	runopts.Options
	runopts.Job
	WaitSeconds float64 `json:"wait_seconds,omitempty" jsonschema:"wait up to this many seconds (0 to 50) for the run to end before answering, sending progress notifications (cell k of n) if the request has a progress token; 0 or absent: answer at once"`
}

// StartNotebookResult is start_notebook's answer.
type StartNotebookResult struct {
	JobID      string `json:"job_id" jsonschema:"the job's id: pass it to get_job_status, get_job_logs, get_job_output and cancel_job"`
	Status     string `json:"status" jsonschema:"PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED or TIMED_OUT"`
	OutputPath string `json:"output_path" jsonschema:"where the executed notebook is written"`
	Notebook   string `json:"notebook" jsonschema:"the notebook's resolved path"`
	Ended      bool   `json:"ended" jsonschema:"true when the run ended within wait_seconds; then job holds its final result"`
	// Warnings say what was not checked (no_type_check).
	Warnings []string `json:"warnings,omitempty" jsonschema:"what was passed unchecked (with no_type_check)"`
	// Job is the job's status at the end of the wait (with wait_seconds).
	Job *jobs.Status `json:"job,omitempty" jsonschema:"with wait_seconds: the job's status when the wait ended, as get_job_status gives it"`
}

func (t *tools) startNotebook() server.ServerTool {
	tool := mcp.NewTool("start_notebook",
		mcp.WithToolTitle("Start a notebook run"),
		mcp.WithDescription(`Start running a Jupyter notebook as a durable background job, papermill-style: parameters are injected after the cell tagged "parameters", and every cell's output is saved in an output notebook.

Returns at once with a job_id (status PENDING); the run continues on a worker whatever happens to this conversation, and may take hours. Poll get_job_status with the job_id to follow it (cell k of n), read its printed output with get_job_logs, and get_job_output for the executed cells once it is done. Use inspect_notebook first to learn the parameter names and types.

Set wait_seconds (up to 50) to wait for short runs: the call then returns the final result if the run ended in time, otherwise the job id and current status, and sends MCP progress notifications meanwhile if the request carries a progress token. Each call starts a new job.`),
		inputSchema[StartNotebookArgs](map[string]map[string]any{
			"wait_seconds":         {"minimum": 0, "maximum": MaxWaitSeconds},
			"timeout_seconds":      {"minimum": 0},
			"cell_timeout_seconds": {"minimum": 0},
			"max_attempts":         {"minimum": 0, "maximum": jobs.MaxAttemptsLimit},
			"labels":               {"maxItems": jobs.MaxLabels},
			"priority":             {"enum": []string{"high", "normal", "low"}},
			"cpu_limit":            {"minimum": 0, "maximum": limits.MaxCPU},
		}),
		mcp.WithOutputSchema[StartNotebookResult](),
		annotations("Start a notebook run", false, false, false),
	)
	return server.ServerTool{Tool: tool, Handler: handle(t, t.start)}
}

func (t *tools) start(ctx context.Context, req mcp.CallToolRequest, args StartNotebookArgs) (StartNotebookResult, string, []mcp.Content, error) {
	if args.WaitSeconds < 0 || args.WaitSeconds > MaxWaitSeconds || math.IsNaN(args.WaitSeconds) {
		return StartNotebookResult{}, "", nil, userError(fmt.Sprintf("wait_seconds %g: must be between 0 and %d; for longer runs omit it and poll get_job_status", args.WaitSeconds, MaxWaitSeconds))
	}
	started, err := t.svc.Start(ctx, jobs.StartRequest{Path: args.Path, Options: args.Options, Job: args.Job})
	if err != nil {
		return StartNotebookResult{}, "", nil, err
	}
	res := StartNotebookResult{JobID: started.JobID, Status: started.Status, OutputPath: started.OutputPath, Notebook: started.Notebook, Warnings: started.Warnings}
	text := fmt.Sprintf("%s %s: started %s; it runs in the background: poll get_job_status with job_id %s (get_job_logs for its output)",
		res.JobID, res.Status, filepath.Base(res.Notebook), res.JobID)
	for _, w := range started.Warnings {
		text += "\nwarning: " + w
	}
	if args.WaitSeconds == 0 {
		return res, text, nil, nil
	}

	progress := newProgressSender(ctx, req)
	st, err := t.svc.WaitEnded(ctx, started.JobID, time.Duration(args.WaitSeconds*float64(time.Second)), progress.send)
	if err != nil {
		// The job exists: answering with an error would make the caller
		// start it again. Say it started and that the wait broke off.
		t.logger.Warn("wait for a started job", "job_id", started.JobID, "error", err)
		return res, text + fmt.Sprintf(" (the wait for it broke off: %v)", err), nil, nil
	}
	res.Status, res.Ended, res.Job = st.Status, st.Ended(), &st
	if st.OutputPath != "" {
		res.OutputPath = st.OutputPath
	}
	if st.Ended() {
		return res, statusText(st) + "\nget_job_output shows the executed cells, get_job_logs what the run printed", nil, nil
	}
	return res, fmt.Sprintf("%s\nstill running after %gs: poll get_job_status with job_id %s", statusLine(st), args.WaitSeconds, st.JobID), nil, nil
}

// progressSender turns status changes into MCP progress notifications for
// a request that carries a progress token. Progress is cells done (plus
// one half while a cell runs), out of the code cells; the spec asks for it
// to increase with every notification, so a change that would not raise
// it (a retry starting over) is not sent.
//
// The end of the run is not notified: the tool's result says it, and over
// streamable HTTP mcp-go drops a notification that races the response of a
// stateless (2026-07-28) request, which the event store does not cover.
type progressSender struct {
	ctx   context.Context
	srv   *server.MCPServer
	token mcp.ProgressToken
	last  float64
}

func newProgressSender(ctx context.Context, req mcp.CallToolRequest) *progressSender {
	p := &progressSender{ctx: ctx, srv: server.ServerFromContext(ctx), last: -1}
	if req.Params.Meta != nil {
		p.token = req.Params.Meta.ProgressToken
	}
	return p
}

func (p *progressSender) send(st jobs.Status) {
	if p.token == nil || p.srv == nil || st.Ended() {
		return
	}
	value := float64(st.Progress.CellsDone)
	if st.Progress.CurrentCell > st.Progress.CellsDone {
		value += 0.5
	}
	if value <= p.last {
		return
	}
	p.last = value
	params := map[string]any{
		"progressToken": p.token,
		"progress":      value,
		"message":       statusLine(st),
	}
	if st.Progress.CellsTotal > 0 {
		params["total"] = st.Progress.CellsTotal
	}
	// A client that went away cannot be told; the run goes on regardless.
	_ = p.srv.SendNotificationToClient(p.ctx, string(mcp.MethodNotificationProgress), params)
}
