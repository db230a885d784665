package mcpserver

import (
	"context"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"millrace/internal/jobs"
	"millrace/workflows"
)

// StartBatchArgs are start_batch's arguments: the batch request itself.
type StartBatchArgs struct {
	Nodes       []jobs.BatchNodeRequest `json:"nodes" jsonschema:"the notebooks to run: each {id, path, parameters?, depends_on?, kernel?, cwd?, output_path?, timeout_seconds?, cell_timeout_seconds?, max_attempts?, retry_on_error?, memory_limit?, cpu_limit?, no_type_check?}; a parameter value may be ${NODE.output_path} or ${NODE.parameters.NAME} of a node it depends on"`
	Name        string                  `json:"name,omitempty" jsonschema:"a name for the batch"`
	MaxParallel int                     `json:"max_parallel,omitempty" jsonschema:"nodes running at once (default 4, at most 100)"`
	FailFast    bool                    `json:"fail_fast,omitempty" jsonschema:"cancel every running node as soon as one fails (default: only the failed node's dependents are skipped)"`
	Labels      []string                `json:"labels,omitempty" jsonschema:"labels for the batch and its nodes, to find them with list_jobs"`
	Priority    string                  `json:"priority,omitempty" jsonschema:"high, normal (default) or low, for every node: waiting high-priority runs start first"`
	NotifyURL   string                  `json:"notify_url,omitempty" jsonschema:"http(s) URL that receives a signed JSON POST when the batch ends (each node's status and output path); its host must be in the server's allow-list (MILLRACE_NOTIFY_ALLOW)"`
	NoTypeCheck bool                    `json:"no_type_check,omitempty" jsonschema:"for every node, pass parameter values whose type does not fit the parameters cell instead of refusing the batch (a node's own no_type_check does it for that node); each node's warnings list them"`
}

func (t *tools) startBatch() server.ServerTool {
	tool := mcp.NewTool("start_batch",
		mcp.WithToolTitle("Start a batch of notebooks"),
		mcp.WithDescription(fmt.Sprintf(`Start a DAG of notebook runs (preprocess -> train -> eval, fan-out over parameters, fan-in to a report). Returns at once with a batch id and each node's job id and output path. Each node runs as soon as the nodes in its depends_on have succeeded, up to max_parallel at once; a failed node's dependents are SKIPPED while independent branches go on. Every node is also an ordinary job: get_job_status, get_job_logs and get_job_output take its job id.

A node may receive an upstream node's output notebook path or one of its parameters: a parameter value "${train.output_path}" or "${prep.parameters.rows}" (the node must depend on it, directly or not). Everything is checked before anything starts: ids, dependencies and cycles, notebooks, parameters against each notebook's parameters cell; at most %d nodes. Follow it with get_batch_status; cancel_job and rerun_job take the batch id.`, workflows.MaxBatchNodes)),
		inputSchema[StartBatchArgs](map[string]map[string]any{"priority": {"enum": []string{"high", "normal", "low"}}}),
		mcp.WithOutputSchema[jobs.BatchStarted](),
		annotations("Start a batch of notebooks", false, false, false),
	)
	return server.ServerTool{Tool: tool, Handler: handle(t, t.startBatchCall)}
}

func (t *tools) startBatchCall(ctx context.Context, _ mcp.CallToolRequest, args StartBatchArgs) (jobs.BatchStarted, string, []mcp.Content, error) {
	started, err := t.svc.StartBatch(ctx, jobs.BatchRequest{
		Name: args.Name, Nodes: args.Nodes, MaxParallel: args.MaxParallel, FailFast: args.FailFast, Labels: args.Labels,
		Priority: args.Priority, NotifyURL: args.NotifyURL, NoTypeCheck: args.NoTypeCheck,
	})
	if err != nil {
		return started, "", nil, err
	}
	return started, batchStartedText(started), nil, nil
}

func batchStartedText(b jobs.BatchStarted) string {
	var ids []string
	for _, n := range b.Nodes {
		s := n.ID + "=" + n.JobID
		if n.Reused {
			s += " (reused)"
		}
		if n.Resume != nil {
			s += " (resuming from " + jobs.ResumeText(n.Resume) + ")"
		}
		ids = append(ids, s)
	}
	text := fmt.Sprintf("%s started (round %d, %d nodes): %s\nfollow it with get_batch_status", b.BatchID, b.Round, len(b.Nodes), strings.Join(ids, ", "))
	for _, n := range b.Nodes {
		for _, w := range n.Warnings {
			text += fmt.Sprintf("\nwarning: node %s: %s", n.ID, w)
		}
	}
	return text
}

// BatchArgs name one batch.
type BatchArgs struct {
	BatchID string `json:"batch_id" jsonschema:"the batch id start_batch returned (batch-<uuid>)"`
}

func (t *tools) getBatchStatus() server.ServerTool {
	tool := mcp.NewTool("get_batch_status",
		mcp.WithToolTitle("Batch status"),
		mcp.WithDescription(`Get a batch's state: its overall status (RUNNING, SUCCEEDED, FAILED, CANCELED), the round (1, then 2 after a rerun...), counts per node status, each node's status (WAITING, PENDING, RUNNING, SUCCEEDED, FAILED, SKIPPED, CANCELED, TIMED_OUT), job id, output path and, while it runs, its progress, and a Mermaid flowchart of the DAG coloured by state (render it to show the user). Cheap; poll it until the status is no longer RUNNING.`),
		inputSchema[BatchArgs](nil),
		mcp.WithOutputSchema[jobs.BatchStatus](),
		annotations("Batch status", true, false, true),
	)
	return server.ServerTool{Tool: tool, Handler: handle(t, t.batchStatus)}
}

func (t *tools) batchStatus(ctx context.Context, _ mcp.CallToolRequest, args BatchArgs) (jobs.BatchStatus, string, []mcp.Content, error) {
	st, err := t.svc.BatchStatus(ctx, args.BatchID)
	if err != nil {
		return st, "", nil, err
	}
	return st, batchText(st), nil, nil
}

func batchText(st jobs.BatchStatus) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s (round %d)", st.BatchID, st.Status, st.Round)
	for _, n := range st.Nodes {
		fmt.Fprintf(&b, "\n  %s: %s", n.ID, n.Status)
		if n.Progress != nil && n.Status == workflows.StatusRunning {
			fmt.Fprintf(&b, " %s", n.Progress)
		}
		if n.Error != nil && n.Status != workflows.NodeSkipped {
			fmt.Fprintf(&b, " (%s)", n.Error.Message)
		}
	}
	if st.Notification != nil {
		b.WriteString("\nwebhook: " + st.Notification.String())
	}
	return b.String()
}

// RerunJobArgs are rerun_job's arguments.
type RerunJobArgs struct {
	JobID        string `json:"job_id" jsonschema:"a run's job id (nb-...) or a batch id (batch-...)"`
	FromCell     int    `json:"from_cell,omitempty" jsonschema:"go on from this cell instead of the first: its index in the notebook (0-based, all cells counted), as a failed run's error.cell_index gives it. The new run restores the job's latest checkpoint taken before this cell in a fresh kernel, skips the cells before it and runs the notebook file as it is now from there, so the fix-and-continue loop is: a run fails at cell 12, fix cell 12 in the notebook, rerun_job with from_cell 12. The job must have ended, have run with the same parameters and have taken a checkpoint before the cell (start_notebook's checkpoint option). For a batch: every node that runs again resumes from its own latest checkpoint before this cell (a large value: its latest); a node without one runs from its first cell, with a warning"`
	AllowPartial bool   `json:"allow_partial,omitempty" jsonschema:"with from_cell: restore a partial checkpoint, one that could not save some names (open files, sockets, locks); those names are missing in the resumed run. Without it such a checkpoint is refused, with the names it lacks"`
}

// RerunResult says what a rerun started: a new job for a run, the batch's
// next round for a batch.
type RerunResult struct {
	JobID      string             `json:"job_id"`
	Status     string             `json:"status"`
	OutputPath string             `json:"output_path,omitempty"`
	Batch      *jobs.BatchStarted `json:"batch,omitempty"`
	// Resume is the checkpoint a run's rerun with from_cell goes on from
	// (a batch's nodes each say theirs).
	Resume   *workflows.Resume `json:"resume,omitempty"`
	Warnings []string          `json:"warnings,omitempty"`
}

func (t *tools) rerunJob() server.ServerTool {
	tool := mcp.NewTool("rerun_job",
		mcp.WithToolTitle("Rerun a job or batch"),
		mcp.WithDescription(`Run a job again. For a batch id: the finished batch runs again under the same id as its next round, running only the nodes that failed, were skipped, canceled or timed out, and reusing the outputs of the nodes that succeeded (a long pipeline that died at its last node does not start over). For a run's job id: the same notebook with the same input starts again as a new job (its new job_id is returned), from its first cell; with from_cell it goes on from that cell instead, restoring the variables the earlier cells left from the job's checkpoint, so after fixing a failed cell in the notebook only that cell and the ones after it run. The result says which checkpoint (the cell it was taken after) the run resumes from.`),
		inputSchema[RerunJobArgs](map[string]map[string]any{"from_cell": {"minimum": 1}}),
		mcp.WithOutputSchema[RerunResult](),
		annotations("Rerun a job or batch", false, false, false),
	)
	return server.ServerTool{Tool: tool, Handler: handle(t, t.rerun)}
}

func (t *tools) rerun(ctx context.Context, _ mcp.CallToolRequest, args RerunJobArgs) (RerunResult, string, []mcp.Content, error) {
	opts := jobs.RerunOptions{FromCell: args.FromCell, AllowPartial: args.AllowPartial}
	if jobs.IsBatchID(args.JobID) {
		started, err := t.svc.RerunBatchWith(ctx, args.JobID, opts)
		if err != nil {
			return RerunResult{}, "", nil, err
		}
		return RerunResult{JobID: started.BatchID, Status: started.Status, Batch: &started}, batchStartedText(started), nil, nil
	}
	started, err := t.svc.RerunRunWith(ctx, args.JobID, opts)
	if err != nil {
		return RerunResult{}, "", nil, err
	}
	text := fmt.Sprintf("%s started again as %s", args.JobID, started.JobID)
	if r := started.Resume; r != nil {
		text += fmt.Sprintf(", resuming from %s", jobs.ResumeText(r))
	}
	text += "; follow it with get_job_status"
	for _, w := range started.Warnings {
		text += "\nwarning: " + w
	}
	return RerunResult{JobID: started.JobID, Status: started.Status, OutputPath: started.OutputPath, Resume: started.Resume, Warnings: started.Warnings}, text, nil, nil
}
