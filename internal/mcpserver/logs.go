package mcpserver

import (
	"context"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"millrace/internal/jobs"
	"millrace/internal/logstore"
)

// GetJobLogsArgs are get_job_logs's arguments.
type GetJobLogsArgs struct {
	JobID  string `json:"job_id" jsonschema:"the job whose output to read"`
	Cursor string `json:"cursor,omitempty" jsonschema:"next_cursor from the previous page; absent: start from the first line"`
	Limit  int    `json:"limit,omitempty" jsonschema:"lines per page (default 200, at most 2000); a page also stops at 1 MiB of text, and next_cursor continues from the line that did not fit"`
	Stream string `json:"stream,omitempty" jsonschema:"stdout, stderr or both (default both)"`
	Tail   int    `json:"tail,omitempty" jsonschema:"return only the last N lines instead of reading from cursor (1 to 2000); its next_cursor continues after them"`
}

func (t *tools) getJobLogs() server.ServerTool {
	tool := mcp.NewTool("get_job_logs",
		mcp.WithToolTitle("Job logs"),
		mcp.WithDescription(`Read what a notebook job printed (stdout and stderr of its cells and of the executor), a page at a time. Each line has its sequence number, stream, attempt and time. Pass next_cursor back as cursor to get the following lines: reading while the run writes never skips or repeats a line, across streams and retry attempts. done is true once the run has ended and nothing is left to read; an empty page with done false means the run has printed nothing new yet. Use tail to see only the latest lines of a long log. A page holds at most 1 MiB of text: it may stop before limit lines, and next_cursor goes on from there.`),
		inputSchema[GetJobLogsArgs](map[string]map[string]any{
			"limit":  {"minimum": 0, "maximum": jobs.MaxLogLines},
			"tail":   {"minimum": 0, "maximum": jobs.MaxLogLines},
			"stream": {"enum": []string{"stdout", "stderr", "both"}},
		}),
		mcp.WithOutputSchema[jobs.Logs](),
		annotations("Job logs", true, false, true),
	)
	return server.ServerTool{Tool: tool, Handler: handle(t, t.logs)}
}

func (t *tools) logs(ctx context.Context, _ mcp.CallToolRequest, args GetJobLogsArgs) (jobs.Logs, string, []mcp.Content, error) {
	page, err := t.svc.Logs(ctx, jobs.LogsRequest{JobID: args.JobID, Cursor: args.Cursor, Limit: args.Limit, Stream: args.Stream, Tail: args.Tail})
	if err != nil {
		return page, "", nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %d lines", page.JobID, page.Status, len(page.Lines))
	switch {
	case page.Done:
		b.WriteString("; done, nothing more to read")
	case len(page.Lines) == 0:
		b.WriteString("; nothing new yet: call again later with the same cursor")
	default:
		b.WriteString("; more may follow: call again with cursor " + page.NextCursor)
	}
	writeLogLines(&b, page.Lines)
	return page, b.String(), nil, nil
}

// writeLogLines renders log lines as get_job_logs and the logs resource
// show them: one per line, stderr marked, a rule where an attempt begins
// (after the first).
func writeLogLines(b *strings.Builder, lines []logstore.Line) {
	attempt := 0
	for _, l := range lines {
		if l.Attempt != attempt && (attempt != 0 || l.Attempt > 1) {
			fmt.Fprintf(b, "\n--- attempt %d ---", l.Attempt)
		}
		attempt = l.Attempt
		b.WriteByte('\n')
		if l.Stream == "stderr" {
			b.WriteString("[stderr] ")
		}
		b.WriteString(l.Text)
	}
}
