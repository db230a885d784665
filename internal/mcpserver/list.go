package mcpserver

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"millrace/internal/jobs"
)

// ListJobsArgs are list_jobs's arguments.
type ListJobsArgs struct {
	Status    string `json:"status,omitempty" jsonschema:"only jobs with this status: PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED or TIMED_OUT"`
	Notebook  string `json:"notebook,omitempty" jsonschema:"only runs of this notebook (path as given to start_notebook)"`
	Label     string `json:"label,omitempty" jsonschema:"only jobs carrying this label"`
	BatchID   string `json:"batch_id,omitempty" jsonschema:"only the runs of this batch"`
	Limit     int    `json:"limit,omitempty" jsonschema:"jobs per page (default 50, at most 500)"`
	PageToken string `json:"page_token,omitempty" jsonschema:"next_page_token of the previous page"`
}

func (t *tools) listJobs() server.ServerTool {
	tool := mcp.NewTool("list_jobs",
		mcp.WithToolTitle("List jobs"),
		mcp.WithDescription(`List notebook jobs, running ones first, then ended ones newest first, optionally filtered by status, notebook, label or batch. Each row has the job id, kind (run or batch), status, notebook, output path, labels and times; counts gives how many jobs match per status (PENDING and RUNNING are counted together as RUNNING). Pass next_page_token back as page_token for the next page.`),
		inputSchema[ListJobsArgs](map[string]map[string]any{
			"limit":  {"minimum": 0, "maximum": jobs.MaxListLimit},
			"status": {"enum": []string{"PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED", "TIMED_OUT"}},
		}),
		mcp.WithOutputSchema[jobs.List](),
		annotations("List jobs", true, false, true),
	)
	return server.ServerTool{Tool: tool, Handler: handle(t, t.list)}
}

func (t *tools) list(ctx context.Context, _ mcp.CallToolRequest, args ListJobsArgs) (jobs.List, string, []mcp.Content, error) {
	l, err := t.svc.List(ctx, jobs.ListRequest{Status: args.Status, Notebook: args.Notebook, Label: args.Label, BatchID: args.BatchID, Limit: args.Limit, PageToken: args.PageToken})
	if err != nil {
		return l, "", nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "jobs on this page: %d", len(l.Jobs))
	var counts []string
	for s, n := range l.Counts {
		if n > 0 {
			counts = append(counts, fmt.Sprintf("%s %d", s, n))
		}
	}
	sort.Strings(counts)
	if len(counts) > 0 {
		b.WriteString(" (matching in all: " + strings.Join(counts, ", ") + ")")
	}
	for _, j := range l.Jobs {
		fmt.Fprintf(&b, "\n%s %s %s created %s", j.JobID, j.Status, base(j.Notebook), j.CreatedAt.Format(time.RFC3339))
		if len(j.Labels) > 0 {
			b.WriteString(" labels " + strings.Join(j.Labels, ","))
		}
	}
	if l.NextPageToken != "" {
		b.WriteString("\nmore jobs: call again with page_token " + l.NextPageToken)
	}
	return l, b.String(), nil, nil
}

// base is a path's last element, or "" for no path (a batch has none).
func base(p string) string {
	if p == "" {
		return ""
	}
	return filepath.Base(p)
}
