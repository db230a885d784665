package mcpserver

import (
	"context"
	"strconv"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"millrace/internal/jobs"
)

// JobArgs name one job.
type JobArgs struct {
	JobID string `json:"job_id" jsonschema:"the job id start_notebook or list_jobs returned (nb-<uuid>)"`
}

func (t *tools) getJobStatus() server.ServerTool {
	tool := mcp.NewTool("get_job_status",
		mcp.WithToolTitle("Job status"),
		mcp.WithDescription(`Get a notebook job's current state: status (PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED, TIMED_OUT), progress (cells_done, cells_total, percent, current_cell and its source while one runs), attempt and max_attempts, created/started/ended times, duration, output_path and executor. For a failure: the cell index, exception name (ename) and value (evalue), the end of the traceback, and how each earlier attempt ended (resumed_from_cell when an attempt went on from a checkpoint). checkpoint is the last saved state of the kernel (cell, size, names left out): rerun_job with from_cell goes on from it.

A running job's answer may be up to max_staleness_ms (`+strconv.FormatInt(jobs.MaxStatusStaleness.Milliseconds(), 10)+`) old; as_of says when it was read.

Cheap and safe to call repeatedly: poll it after start_notebook until the status is no longer PENDING or RUNNING (every few seconds for short runs, less often for long ones).`),
		inputSchema[JobArgs](nil),
		mcp.WithOutputSchema[jobs.Status](),
		annotations("Job status", true, false, true),
	)
	return server.ServerTool{Tool: tool, Handler: handle(t, t.status)}
}

func (t *tools) status(ctx context.Context, _ mcp.CallToolRequest, args JobArgs) (jobs.Status, string, []mcp.Content, error) {
	st, err := t.svc.Status(ctx, args.JobID)
	if err != nil {
		return st, "", nil, err
	}
	return st, statusText(st), nil, nil
}
