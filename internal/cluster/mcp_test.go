//go:build linux

package cluster_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"millrace/internal/jobs"
	"millrace/internal/mcpserver"
	"millrace/internal/testcluster"
	"millrace/workflows"
)

// mcpReads starts a run through the MCP server on host mcp, from the
// client host; a worker on a third host executes it; the MCP server then
// reads its whole log, page by page, and its output notebook, from the
// data dir it shares with the workers.
func mcpReads(t *testing.T, e *env) {
	s := begin(t, "MCP server on its own host reads the logs (paged) and output of a run a worker host executed")
	const lines = 300
	nb := e.notebook(t, "prints.ipynb",
		fmt.Sprintf("for i in range(%d):\n    print('line', i)", lines/2),
		fmt.Sprintf("for i in range(%d, %d):\n    print('line', i)\nsum(range(%d))", lines/2, lines, lines))
	started := call[mcpserver.StartNotebookResult](t, e.mcp, "start_notebook", map[string]any{"path": nb, "wait_seconds": 50})
	s.runs(1)
	st, ended := e.waitEnded(t, started.JobID, 2*time.Minute)
	if !ended {
		s.lost()
		t.Fatalf("run %s did not end: %s", started.JobID, st.Status)
	}
	if st.Status != workflows.StatusSucceeded {
		t.Fatalf("run %s ended %s: %+v", started.JobID, st.Status, st.Error)
	}
	ranOn := e.workerThatCompleted(t, started.JobID)
	if ranOn == nil {
		t.Fatalf("no worker of the cluster completed %s", started.JobID)
	}

	// The whole log, 100 lines a page, from the MCP server's host.
	var got []string
	pages, cursor := 0, ""
	began := time.Now()
	for pages < 50 {
		page := call[jobs.Logs](t, e.mcp, "get_job_logs", map[string]any{"job_id": started.JobID, "cursor": cursor, "limit": 100, "stream": "stdout"})
		pages++
		for _, l := range page.Lines {
			got = append(got, l.Text)
		}
		cursor = page.NextCursor
		if page.Done {
			break
		}
	}
	readTime := time.Since(began)
	// What the cells printed, then the last cell's result, which the
	// runner echoes to stdout.
	var want []string
	for i := range lines {
		want = append(want, fmt.Sprintf("line %d", i))
	}
	want = append(want, fmt.Sprint(lines*(lines-1)/2))
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("get_job_logs from host mcp read %d lines in %d pages, want line 0 to line %d in order, then the result; got %q ... %q", len(got), pages, lines-1, head(got, 3), got[max(0, len(got)-3):])
	}
	if pages < lines/100 {
		t.Errorf("read %d lines in %d pages of 100", len(got), pages)
	}

	out := call[mcpserver.OutputResult](t, e.mcp, "get_job_output", map[string]any{"job_id": started.JobID, "max_chars": 100000})
	var text []string
	for _, c := range out.Cells {
		if c.Status != "completed" {
			t.Errorf("output cell %d is %s, want completed", c.Index, c.Status)
		}
		text = append(text, c.Text)
	}
	if all := strings.Join(text, "\n"); !strings.Contains(all, fmt.Sprintf("line %d", lines-1)) || !strings.Contains(all, fmt.Sprint(lines*(lines-1)/2)) {
		t.Errorf("get_job_output from host mcp: %q, want the last line printed and the sum", all)
	}
	if !t.Failed() {
		s.ok()
	}
	s.figure("run executed on host %s, read from host mcp: %d log lines in %d pages of 100 (%.0f ms a page), output of %d cells", ranOn.Host.Name, len(got), pages, float64(readTime.Milliseconds())/float64(pages), len(out.Cells))
}

// workerThatCompleted names the worker whose attempt completed run.
func (e *env) workerThatCompleted(t *testing.T, run string) *testcluster.Worker {
	t.Helper()
	it := e.svc.Client.GetWorkflowHistory(context.Background(), run, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetActivityTaskCompletedEventAttributes(); a != nil {
			for _, w := range e.Workers {
				if w.Owns(a.GetIdentity()) {
					return w
				}
			}
		}
	}
	return nil
}

func head(s []string, n int) []string { return s[:min(n, len(s))] }
