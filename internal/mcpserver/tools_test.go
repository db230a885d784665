package mcpserver_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"millrace/internal/jobs"
	"millrace/internal/mcpserver"
	"millrace/internal/notebook"
	"millrace/internal/testenv"
	"millrace/workflows"
)

var (
	progressNB = "testdata/progress.ipynb"
	richNB     = "testdata/rich.ipynb"
	slowNB     = filepath.Join(testenv.RepoRoot(), "activities", "testdata", "slow.ipynb")
)

func TestToolsDeclareSchemasAndAnnotations(t *testing.T) {
	e := newEnv(t)
	res, err := e.client.ListTools(context.Background(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	type hints struct{ readOnly, destructive, idempotent bool }
	want := map[string]hints{
		"start_notebook":   {false, false, false},
		"get_job_status":   {true, false, true},
		"get_job_logs":     {true, false, true},
		"cancel_job":       {false, true, true},
		"list_jobs":        {true, false, true},
		"inspect_notebook": {true, false, true},
		"get_job_output":   {true, false, true},
		"start_batch":      {false, false, false},
		"get_batch_status": {true, false, true},
		"rerun_job":        {false, false, false},
	}
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
		w, ok := want[tool.Name]
		if !ok {
			continue
		}
		a := tool.Annotations
		if a.ReadOnlyHint == nil || a.DestructiveHint == nil || a.IdempotentHint == nil || a.OpenWorldHint == nil {
			t.Errorf("%s: annotations not all set: %+v", tool.Name, a)
			continue
		}
		if got := (hints{*a.ReadOnlyHint, *a.DestructiveHint, *a.IdempotentHint}); got != w || *a.OpenWorldHint {
			t.Errorf("%s: annotations %+v (open world %v), want %+v and closed world", tool.Name, got, *a.OpenWorldHint, w)
		}
		if len(tool.Description) < 150 {
			t.Errorf("%s: description too thin for a model to choose by: %q", tool.Name, tool.Description)
		}
		var in map[string]any
		if err := json.Unmarshal(inputSchemaOf(t, tool), &in); err != nil || in["type"] != "object" {
			t.Errorf("%s: input schema %s: %v", tool.Name, inputSchemaOf(t, tool), err)
		}
		props, _ := in["properties"].(map[string]any)
		for name, p := range props {
			if d, _ := p.(map[string]any)["description"].(string); d == "" {
				t.Errorf("%s: argument %s has no description", tool.Name, name)
			}
		}
		if tool.OutputSchema.Type != "object" || len(tool.OutputSchema.Properties) == 0 {
			t.Errorf("%s: no output schema: %+v", tool.Name, tool.OutputSchema)
		}
	}
	sort.Strings(names)
	if got := strings.Join(names, " "); got != "cancel_job get_batch_status get_job_logs get_job_output get_job_status inspect_notebook list_jobs rerun_job start_batch start_notebook" {
		t.Fatalf("tools %s", got)
	}
	// The argument names are exactly the issues'.
	args := map[string]string{
		"start_notebook":   "cell_timeout_seconds checkpoint checkpoint_max_size cpu_limit cwd kernel labels max_attempts memory_limit no_type_check notify_url output_path parameters path priority retry_on_error timeout_seconds wait_seconds",
		"get_job_logs":     "cursor job_id limit stream tail",
		"list_jobs":        "batch_id label limit notebook page_token status",
		"get_job_output":   "cell_from cell_to format job_id max_chars",
		"cancel_job":       "job_id reason",
		"start_batch":      "fail_fast labels max_parallel name no_type_check nodes notify_url priority",
		"get_batch_status": "batch_id",
		"rerun_job":        "allow_partial from_cell job_id",
	}
	for _, tool := range res.Tools {
		var in struct {
			Properties map[string]map[string]any `json:"properties"`
			Required   []string                  `json:"required"`
		}
		_ = json.Unmarshal(inputSchemaOf(t, tool), &in)
		var got []string
		for k := range in.Properties {
			got = append(got, k)
		}
		sort.Strings(got)
		if w, ok := args[tool.Name]; ok && strings.Join(got, " ") != w {
			t.Errorf("%s arguments: got %v, want %s", tool.Name, got, w)
		}
		if tool.Name == "rerun_job" {
			fc := in.Properties["from_cell"]
			if fc["type"] != "integer" || fc["minimum"] != 1.0 || !strings.Contains(fmt.Sprint(fc["description"]), "fix cell 12 in the notebook, rerun_job with from_cell 12") {
				t.Errorf("rerun_job from_cell schema: %v", fc)
			}
			if ap := in.Properties["allow_partial"]; ap["type"] != "boolean" || !strings.Contains(fmt.Sprint(ap["description"]), "partial") {
				t.Errorf("rerun_job allow_partial schema: %v", ap)
			}
			if strings.Join(in.Required, ",") != "job_id" {
				t.Errorf("rerun_job requires %v, want only job_id", in.Required)
			}
		}
		if tool.Name == "start_notebook" {
			if ws := in.Properties["wait_seconds"]; ws["minimum"] != 0.0 || ws["maximum"] != 50.0 {
				t.Errorf("wait_seconds bounds: %v", ws)
			}
			if strings.Join(in.Required, ",") != "path" {
				t.Errorf("start_notebook requires %v, want only path", in.Required)
			}
		}
	}
	templates, err := e.client.ListResourceTemplates(context.Background(), mcp.ListResourceTemplatesRequest{})
	if err != nil || len(templates.ResourceTemplates) != 6 {
		t.Fatalf("resource templates: %+v %v", templates, err)
	}
}

// inputSchemaOf is a listed tool's input schema as JSON.
func inputSchemaOf(t *testing.T, tool mcp.Tool) []byte {
	t.Helper()
	b, err := json.Marshal(tool)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		InputSchema json.RawMessage `json:"inputSchema"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v.InputSchema
}

func TestInspectNotebook(t *testing.T) {
	e := newEnv(t, progressNB)
	in, text := call[notebook.Inspection](t, e.client, "inspect_notebook", map[string]any{"path": "progress.ipynb"})
	if in.KernelName != "python3" || in.Language != "python" || in.Cells != 5 || in.CodeCells != 5 || len(in.Parameters) != 2 {
		t.Fatalf("got %+v", in)
	}
	delay, steps := in.Parameters[0], in.Parameters[1]
	if delay.Name != "delay" || delay.Default != "0.5" || delay.Help != "seconds each step cell sleeps" || steps.Name != "steps" || steps.InferredType != "int" {
		t.Fatalf("parameters %+v", in.Parameters)
	}
	if !strings.Contains(text, "kernel python3") || !strings.Contains(text, "steps: int = 4") {
		t.Errorf("text %q", text)
	}
}

// TestRunSucceedsAndEveryToolReadsIt drives a run with rich outputs from
// start to end through the tools, and reads its image and long text as
// resources.
func TestRunSucceedsAndEveryToolReadsIt(t *testing.T) {
	t.Parallel()
	e := newEnv(t, richNB)
	started, text := call[mcpserver.StartNotebookResult](t, e.client, "start_notebook", map[string]any{
		"path": "rich.ipynb", "parameters": map[string]any{"msg": "hi there", "repeat": 400}, "labels": []string{"rich"},
	})
	if !strings.HasPrefix(started.JobID, workflows.RunIDPrefix) || started.Status != workflows.StatusPending || started.Ended || started.Job != nil {
		t.Fatalf("start: %+v", started)
	}
	if !strings.Contains(text, started.JobID) || !strings.Contains(text, "get_job_status") {
		t.Errorf("start text %q does not say what to do next", text)
	}
	st := waitEnded(t, e.client, started.JobID)
	if st.Status != workflows.StatusSucceeded || st.Progress.CellsDone != st.Progress.CellsTotal || st.Progress.Percent != 100 || st.EndedAt == nil || st.OutputPath != started.OutputPath {
		t.Fatalf("status %+v", st)
	}
	_, text = call[jobs.Status](t, e.client, "get_job_status", map[string]any{"job_id": started.JobID})
	if !strings.HasPrefix(text, started.JobID+" SUCCEEDED: 5/5 cells") {
		t.Errorf("status text %q", text)
	}

	logs, text := call[jobs.Logs](t, e.client, "get_job_logs", map[string]any{"job_id": started.JobID})
	if !logs.Done || len(logs.Lines) == 0 || !strings.Contains(text, "shown") || !strings.Contains(text, "hi there hi there") {
		t.Fatalf("logs done=%v, %d lines, text %q", logs.Done, len(logs.Lines), text)
	}

	out, text := call[mcpserver.OutputResult](t, e.client, "get_job_output", map[string]any{"job_id": started.JobID})
	if out.Status != workflows.StatusSucceeded || len(out.Cells) != 5 || out.Parameters["msg"] != "hi there" {
		t.Fatalf("output %+v", out)
	}
	res := callTool(t, e.client, "get_job_output", map[string]any{"job_id": started.JobID}, nil)
	var links []mcp.ResourceLink
	for _, c := range res.Content {
		if l, ok := c.(mcp.ResourceLink); ok {
			links = append(links, l)
		}
	}
	var long, image, html, answer *mcpserver.OutputCell
	for i := range out.Cells {
		c := &out.Cells[i]
		switch {
		case c.Truncated:
			long = c
		case strings.Contains(c.Text, "shown"):
			image = c
		case strings.Contains(c.Text, "'answer': 42"):
			answer = c
		}
	}
	if long == nil || image == nil || answer == nil || !strings.Contains(text, "'answer': 42") {
		t.Fatalf("cells %+v\ntext %s", out.Cells, text)
	}
	if len(long.Resources) != 1 || long.Resources[0].MimeType != "text/plain" {
		t.Fatalf("truncated cell resources %+v", long.Resources)
	}
	for i := range image.Resources {
		if image.Resources[i].MimeType == "text/html" {
			html = image
		}
	}
	if len(image.Resources) != 2 || image.Resources[0].MimeType != "image/png" || html == nil {
		t.Fatalf("image cell resources %+v", image.Resources)
	}
	if len(links) != 3 || links[0].URI != long.Resources[0].URI || links[1].URI != image.Resources[0].URI {
		t.Fatalf("resource links %+v", links)
	}

	ctx := context.Background()
	read := func(uri string) []mcp.ResourceContents {
		t.Helper()
		req := mcp.ReadResourceRequest{}
		req.Params.URI = uri
		r, err := e.client.ReadResource(ctx, req)
		if err != nil {
			t.Fatalf("read %s: %v", uri, err)
		}
		return r.Contents
	}
	full := read(long.Resources[0].URI)
	if tc, ok := full[0].(mcp.TextResourceContents); !ok || strings.Count(tc.Text, "hi there") != 400 {
		t.Fatalf("whole text: %+v", full)
	}
	img := read(image.Resources[0].URI)
	var png []byte
	for _, c := range img {
		if b, ok := c.(mcp.BlobResourceContents); ok && b.MIMEType == "image/png" {
			png, _ = base64.StdEncoding.DecodeString(b.Blob)
		}
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("image resource %+v", img)
	}
	page := read(image.Resources[1].URI)
	found := false
	for _, c := range page {
		if tc, ok := c.(mcp.TextResourceContents); ok && tc.MIMEType == "text/html" && strings.Contains(tc.Text, "<b>hi there</b>") {
			found = true
		}
	}
	if !found {
		t.Fatalf("html resource %+v", page)
	}
	badURI := fmt.Sprintf("millrace://jobs/%s/outputs/%d/9", started.JobID, image.Index)
	req := mcp.ReadResourceRequest{}
	req.Params.URI = badURI
	if _, err := e.client.ReadResource(ctx, req); err == nil || !strings.Contains(err.Error(), "has no output 9") {
		t.Errorf("read %s: %v, want a 'has no output' error", badURI, err)
	}

	// A range of cells: [3, 4).
	part, _ := call[mcpserver.OutputResult](t, e.client, "get_job_output", map[string]any{"job_id": started.JobID, "cell_from": 3, "cell_to": 4})
	if len(part.Cells) != 1 || part.Cells[0].Index != 3 {
		t.Fatalf("cells 3 to 4: %+v", part.Cells)
	}

	list, text := call[jobs.List](t, e.client, "list_jobs", map[string]any{"label": "rich"})
	if len(list.Jobs) != 1 || list.Jobs[0].JobID != started.JobID || list.Jobs[0].Status != workflows.StatusSucceeded || list.Counts[workflows.StatusSucceeded] != 1 {
		t.Fatalf("list %+v", list)
	}
	if !strings.Contains(text, started.JobID+" SUCCEEDED rich.ipynb") {
		t.Errorf("list text %q", text)
	}

	// A finished job cannot be canceled, and says so.
	if msg := callError(t, e.client, "cancel_job", map[string]any{"job_id": started.JobID}); !strings.Contains(msg, "already ended SUCCEEDED") {
		t.Errorf("cancel of a finished job: %q", msg)
	}
}

func TestFailedRunReportsTheCellAndListPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.Testdata("fails_later.ipynb"))
	other, _ := call[mcpserver.StartNotebookResult](t, e.client, "start_notebook", map[string]any{"path": "fails_later.ipynb"})
	started, _ := call[mcpserver.StartNotebookResult](t, e.client, "start_notebook", map[string]any{"path": e.path("fails_later.ipynb"), "wait_seconds": 50})
	st := *started.Job
	if !started.Ended || st.Status != workflows.StatusFailed || st.Error == nil || st.Error.EName != "AssertionError" || st.Error.CellIndex == nil {
		t.Fatalf("got %+v", started)
	}
	_, text := call[jobs.Status](t, e.client, "get_job_status", map[string]any{"job_id": started.JobID})
	if !strings.Contains(text, "FAILED after") || !strings.Contains(text, "raised AssertionError") || !strings.Contains(text, "traceback") {
		t.Errorf("status text %q", text)
	}
	out, _ := call[mcpserver.OutputResult](t, e.client, "get_job_output", map[string]any{"job_id": started.JobID})
	failed := 0
	for _, c := range out.Cells {
		if c.Status == notebook.StatusFailed && c.Error != nil && c.Error.EName == "AssertionError" {
			failed++
		}
	}
	if failed != 1 {
		t.Fatalf("want one failed cell with the AssertionError: %+v", out.Cells)
	}

	// Two jobs of this notebook, listed a page of one at a time.
	waitEnded(t, e.client, other.JobID)
	seen := map[string]bool{}
	token := ""
	for page := 0; page < 2; page++ {
		l, _ := call[jobs.List](t, e.client, "list_jobs", map[string]any{"notebook": "fails_later.ipynb", "status": "FAILED", "limit": 1, "page_token": token})
		if len(l.Jobs) != 1 || seen[l.Jobs[0].JobID] || l.Counts[workflows.StatusFailed] != 2 {
			t.Fatalf("page %d: %+v", page, l)
		}
		seen[l.Jobs[0].JobID] = true
		token = l.NextPageToken
		if page == 0 && token == "" {
			t.Fatal("no next_page_token after the first of two jobs")
		}
	}
	if !seen[started.JobID] || !seen[other.JobID] {
		t.Fatalf("listed %v, want both jobs", seen)
	}
	if l, _ := call[jobs.List](t, e.client, "list_jobs", map[string]any{"notebook": "fails_later.ipynb", "status": "SUCCEEDED"}); len(l.Jobs) != 0 {
		t.Fatalf("SUCCEEDED filter: %+v", l)
	}
}

func TestStartNotebookWaitSendsProgress(t *testing.T) {
	t.Parallel()
	e := newEnv(t, progressNB)
	meta := &mcp.Meta{ProgressToken: "run-1"}
	res, text := callMeta[mcpserver.StartNotebookResult](t, e.client, "start_notebook", map[string]any{
		"path": "progress.ipynb", "parameters": map[string]any{"delay": 1.2}, "wait_seconds": 50,
	}, meta)
	if !res.Ended || res.Status != workflows.StatusSucceeded || res.Job == nil || res.Job.Progress.CellsDone != 6 {
		t.Fatalf("got %+v", res)
	}
	if !strings.Contains(text, "SUCCEEDED") || !strings.Contains(text, "get_job_output") {
		t.Errorf("text %q", text)
	}
	// Notifications may arrive after the result (stdio writes them from
	// another goroutine). Status is polled twice a second and heartbeats
	// come once a second: on a loaded machine a cell may pass unseen.
	var seen []mcp.ProgressNotification
	running := func() int {
		n := 0
		for _, p := range seen {
			if strings.Contains(p.Params.Message, "RUNNING cell") {
				n++
			}
		}
		return n
	}
	testenv.Eventually(t, 10*time.Second, "progress notifications for the cells", func() bool {
		seen = e.progressFor("run-1")
		return running() >= 2
	})
	for i, p := range seen {
		if i > 0 && p.Params.Progress <= seen[i-1].Params.Progress {
			t.Errorf("progress did not increase: %v after %v", p.Params.Progress, seen[i-1].Params.Progress)
		}
		// Before the first heartbeat a RUNNING job has no cell count yet:
		// its notification leaves the total out rather than guess it.
		if p.Params.Progress > 6 || (p.Params.Total != 6 && (p.Params.Total != 0 || strings.Contains(p.Params.Message, "RUNNING cell"))) {
			t.Errorf("progress %v of %v (%q), want at most 6 code cells", p.Params.Progress, p.Params.Total, p.Params.Message)
		}
	}
}

func TestWaitReturnsWhileRunningAndCancel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, slowNB)
	res, text := call[mcpserver.StartNotebookResult](t, e.client, "start_notebook", map[string]any{
		"path": "slow.ipynb", "parameters": map[string]any{"steps": 600, "delay": 0.1}, "wait_seconds": 1.5,
	})
	if res.Ended || res.Job == nil || res.Job.Ended() || !strings.Contains(text, "still running") {
		t.Fatalf("got %+v, text %q", res, text)
	}
	waitRunning(t, e.client, res.JobID)
	// The output so far: the loop cell is running, the last one pending.
	out, _ := call[mcpserver.OutputResult](t, e.client, "get_job_output", map[string]any{"job_id": res.JobID})
	if out.Status != workflows.StatusRunning || len(out.Cells) != 4 || out.Cells[2].Status != notebook.StatusRunning || out.Cells[3].Status != notebook.StatusPending {
		t.Fatalf("output while running: %+v", out)
	}
	if n := len(processesOf(res.JobID)); n < 2 {
		t.Fatalf("found %d processes of the run, want the runner and its kernel", n)
	}
	st, text := call[jobs.Status](t, e.client, "cancel_job", map[string]any{"job_id": res.JobID, "reason": "test"})
	if st.Status != workflows.StatusCanceled || !strings.Contains(text, "CANCELED") {
		t.Fatalf("after cancel: %+v, %q", st, text)
	}
	testenv.Eventually(t, 15*time.Second, "no process of the run left", func() bool { return len(processesOf(res.JobID)) == 0 })
	// Canceling again is harmless.
	st, text = call[jobs.Status](t, e.client, "cancel_job", map[string]any{"job_id": res.JobID})
	if st.Status != workflows.StatusCanceled || !strings.Contains(text, "already canceled") {
		t.Fatalf("second cancel: %+v, %q", st, text)
	}
}

// TestLogsPagedWhileRunning reads a run's log in small pages while it
// prints: every line arrives once, in order.
func TestLogsPagedWhileRunning(t *testing.T) {
	t.Parallel()
	e := newEnv(t, slowNB)
	const steps = 80
	res, _ := call[mcpserver.StartNotebookResult](t, e.client, "start_notebook", map[string]any{
		"path": "slow.ipynb", "parameters": map[string]any{"steps": steps, "delay": 0.05},
	})
	var got []string
	cursor, pagesWhileRunning := "", 0
	deadline := time.Now().Add(3 * time.Minute)
	var lastSeq int64
	for {
		if time.Now().After(deadline) {
			t.Fatalf("the log was not done after 3 minutes; got %d lines", len(got))
		}
		page, _ := call[jobs.Logs](t, e.client, "get_job_logs", map[string]any{"job_id": res.JobID, "cursor": cursor, "limit": 7, "stream": "stdout"})
		for _, l := range page.Lines {
			if l.Seq <= lastSeq || l.Stream != "stdout" || l.Attempt != 1 {
				t.Fatalf("line %+v after seq %d", l, lastSeq)
			}
			lastSeq = l.Seq
			got = append(got, l.Text)
		}
		if len(page.Lines) > 0 && page.Status == workflows.StatusRunning {
			pagesWhileRunning++
		}
		cursor = page.NextCursor
		if page.Done {
			break
		}
		if len(page.Lines) == 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	var want []string
	for i := 0; i < steps; i++ {
		want = append(want, fmt.Sprintf("step %d", i))
	}
	want = append(want, "slow done")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("paged log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if pagesWhileRunning < 2 {
		t.Errorf("only %d pages were read while the run wrote; the test did not test paging during the run", pagesWhileRunning)
	}
	tail, text := call[jobs.Logs](t, e.client, "get_job_logs", map[string]any{"job_id": res.JobID, "tail": 2, "stream": "stdout"})
	if len(tail.Lines) != 2 || tail.Lines[1].Text != "slow done" || !strings.HasSuffix(text, "slow done") {
		t.Fatalf("tail: %+v", tail)
	}
}

// TestUserErrorsAreToolErrors checks that every mistake the issue lists
// comes back as a tool error that says what to do.
func TestUserErrorsAreToolErrors(t *testing.T) {
	e := newEnv(t, progressNB, testenv.Testdata("greeting.ipynb"))
	outside := t.TempDir()
	testenv.CopyFile(t, progressNB, outside)
	if err := os.Symlink(filepath.Join(outside, "progress.ipynb"), e.path("link.ipynb")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.path("garbage.ipynb"), []byte("not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(e.root, filepath.Join(outside, "progress.ipynb"))
	if err != nil {
		t.Fatal(err)
	}
	unknown := workflows.RunIDPrefix + "00000000-0000-0000-0000-000000000000"
	cases := []struct {
		tool string
		args map[string]any
		want []string
	}{
		{"get_job_status", map[string]any{"job_id": unknown}, []string{"no job", "list_jobs"}},
		{"get_job_status", map[string]any{"job_id": "job 7"}, []string{"not a job id", "start_notebook"}},
		{"get_job_status", map[string]any{}, []string{"job_id"}},
		{"get_job_logs", map[string]any{"job_id": unknown}, []string{"no job"}},
		{"get_job_logs", map[string]any{"job_id": unknown, "cursor": "not-a-cursor"}, []string{"cursor"}},
		{"get_job_logs", map[string]any{"job_id": unknown, "stream": "stdin"}, []string{"stream"}},
		{"get_job_logs", map[string]any{"job_id": unknown, "tail": 5000}, []string{"tail"}},
		{"get_job_output", map[string]any{"job_id": unknown}, []string{"no job"}},
		{"get_job_output", map[string]any{"job_id": unknown, "max_chars": 200000}, []string{"max_chars"}},
		{"cancel_job", map[string]any{"job_id": unknown}, []string{"no job"}},
		{"list_jobs", map[string]any{"page_token": "%%%"}, []string{"page_token", "omit it"}},
		{"list_jobs", map[string]any{"status": "DONE"}, []string{"status"}},
		{"start_notebook", map[string]any{"path": filepath.Join(outside, "progress.ipynb")}, []string{"outside the allowed roots", "--roots"}},
		{"start_notebook", map[string]any{"path": "link.ipynb"}, []string{"outside the allowed roots"}},
		{"start_notebook", map[string]any{"path": rel}, []string{"outside the allowed roots"}},
		{"start_notebook", map[string]any{"path": "missing.ipynb"}, []string{"does not exist"}},
		{"start_notebook", map[string]any{"path": "garbage.ipynb"}, []string{"garbage.ipynb"}},
		{"start_notebook", map[string]any{"path": "progress.ipynb", "parameters": map[string]any{"stpes": 3}}, []string{"stpes", "steps"}},
		{"start_notebook", map[string]any{"path": "progress.ipynb", "parameters": map[string]any{"steps": "three"}}, []string{"steps"}},
		{"start_notebook", map[string]any{"path": "progress.ipynb", "output_path": filepath.Join(outside, "out.ipynb")}, []string{"output_path", "outside the allowed roots"}},
		{"start_notebook", map[string]any{"path": "progress.ipynb", "cwd": outside}, []string{"cwd", "outside the allowed roots"}},
		{"start_notebook", map[string]any{"path": "progress.ipynb", "wait_seconds": 51}, []string{"wait_seconds"}},
		{"start_notebook", map[string]any{"path": "progress.ipynb", "max_attempts": 99}, []string{"max_attempts"}},
		{"start_notebook", map[string]any{"path": "progress.ipynb", "kernel": "bad kernel"}, []string{"kernel"}},
		{"start_notebook", map[string]any{"path": "progress.ipynb", "bogus": true}, []string{"unknown argument", "bogus", "wait_seconds"}},
		{"start_notebook", map[string]any{"path": "progress.ipynb", "wait_seconds": "ten"}, []string{"wait_seconds", "want a number"}},
		{"start_notebook", map[string]any{"path": "progress.ipynb", "labels": "x"}, []string{"labels", "want a list"}},
		{"start_notebook", map[string]any{}, []string{"missing argument path"}},
		{"start_notebook", map[string]any{"path": "progress.ipynb", "priority": "asap"}, []string{"priority", "high, low, normal"}},
		{"start_notebook", map[string]any{"path": "progress.ipynb", "memory_limit": "plenty"}, []string{"memory_limit", "512MiB"}},
		{"start_notebook", map[string]any{"path": "progress.ipynb", "memory_limit": 4096}, []string{"memory_limit", "want a string"}},
		{"start_notebook", map[string]any{"path": "progress.ipynb", "cpu_limit": -1}, []string{"cpu_limit"}},
		{"start_notebook", map[string]any{"path": "progress.ipynb", "notify_url": "http://127.0.0.1:1/x"}, []string{"notify_url", "MILLRACE_NOTIFY_ALLOW"}},
		{"rerun_job", map[string]any{"job_id": unknown, "from_cell": "three"}, []string{"from_cell", "want a whole number"}},
		{"rerun_job", map[string]any{"job_id": unknown, "from_cell": 2.5}, []string{"from_cell", "want a whole number"}},
		{"rerun_job", map[string]any{"job_id": unknown, "allow_partial": "yes"}, []string{"allow_partial", "true or false"}},
		{"rerun_job", map[string]any{"job_id": unknown, "from_cell": -1}, []string{"from_cell -1", "1 or more"}},
		{"rerun_job", map[string]any{"job_id": unknown, "allow_partial": true}, []string{"allow_partial applies to a rerun with from_cell"}},
		{"rerun_job", map[string]any{"job_id": unknown, "from_cell": 3}, []string{"no job"}},
		{"inspect_notebook", map[string]any{"path": filepath.Join(outside, "progress.ipynb")}, []string{"outside the allowed roots"}},
		{"inspect_notebook", map[string]any{"path": "missing.ipynb"}, []string{"does not exist"}},
		{"inspect_notebook", map[string]any{"path": "garbage.ipynb"}, []string{"garbage.ipynb"}},
	}
	for _, c := range cases {
		msg := callError(t, e.client, c.tool, c.args)
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s %v: error %q does not mention %q", c.tool, c.args, msg, w)
			}
		}
	}
	// Nothing was started by the failed starts.
	list, _ := call[jobs.List](t, e.client, "list_jobs", map[string]any{"notebook": "progress.ipynb"})
	if len(list.Jobs) != 0 {
		t.Errorf("failed starts left jobs: %+v", list.Jobs)
	}
	req := mcp.ReadResourceRequest{}
	req.Params.URI = "millrace://jobs/" + unknown + "/outputs/1/0"
	if _, err := e.client.ReadResource(context.Background(), req); err == nil || !strings.Contains(err.Error(), "no job") {
		t.Errorf("read of an unknown job's output: %v", err)
	}
}

// TestBatchTools runs a small DAG through start_batch, follows it with
// get_batch_status, reruns its failed part with rerun_job, and cancels a
// batch with cancel_job.
func TestBatchTools(t *testing.T) {
	e := newEnv(t)
	nb := testenv.CopyFile(t, filepath.Join(testenv.RepoRoot(), "internal", "jobs", "testdata", "stage.ipynb"), e.root)
	flag := filepath.Join(e.root, "fail-b")
	os.WriteFile(flag, []byte("x"), 0o644)
	started, text := call[jobs.BatchStarted](t, e.client, "start_batch", map[string]any{
		"name": "mcp-dag",
		"nodes": []any{
			map[string]any{"id": "a", "path": nb, "parameters": map[string]any{"name": "a", "sleep": 0.1}},
			map[string]any{"id": "b", "path": nb, "depends_on": []any{"a"}, "parameters": map[string]any{"name": "b", "sleep": 0.1, "fail_if": flag, "inputs": []any{"${a.output_path}"}}},
			map[string]any{"id": "c", "path": nb, "depends_on": []any{"b"}, "parameters": map[string]any{"name": "c", "sleep": 0.1}},
		},
	})
	if len(started.Nodes) != 3 || !strings.Contains(text, "get_batch_status") {
		t.Fatalf("start_batch: %+v %q", started, text)
	}
	var st jobs.BatchStatus
	testenv.Eventually(t, 3*time.Minute, "the batch to end", func() bool {
		st, _ = call[jobs.BatchStatus](t, e.client, "get_batch_status", map[string]any{"batch_id": started.BatchID})
		return st.Ended()
	})
	if st.Status != workflows.StatusFailed || st.Counts[workflows.NodeSkipped] != 1 || !strings.Contains(st.Mermaid, "flowchart") {
		t.Fatalf("batch: %+v", st)
	}
	os.Remove(flag)
	rerun, _ := call[mcpserver.RerunResult](t, e.client, "rerun_job", map[string]any{"job_id": started.BatchID})
	if rerun.Batch == nil || rerun.Batch.Round != 2 || !rerun.Batch.Nodes[0].Reused {
		t.Fatalf("rerun_job: %+v", rerun)
	}
	testenv.Eventually(t, 3*time.Minute, "the rerun to end", func() bool {
		st, _ = call[jobs.BatchStatus](t, e.client, "get_batch_status", map[string]any{"batch_id": started.BatchID})
		return st.Ended()
	})
	if st.Status != workflows.StatusSucceeded {
		t.Fatalf("rerun: %+v", st)
	}

	long, _ := call[jobs.BatchStarted](t, e.client, "start_batch", map[string]any{
		"nodes": []any{map[string]any{"id": "long", "path": nb, "parameters": map[string]any{"sleep": 60}}},
	})
	cst, ctext := call[jobs.Status](t, e.client, "cancel_job", map[string]any{"job_id": long.BatchID})
	if cst.Status != workflows.StatusCanceled || !strings.Contains(ctext, "long: CANCELED") {
		t.Fatalf("cancel_job on a batch: %+v %q", cst, ctext)
	}
	if msg := callError(t, e.client, "start_batch", map[string]any{"nodes": []any{
		map[string]any{"id": "x", "path": nb, "depends_on": []any{"y"}},
		map[string]any{"id": "y", "path": nb, "depends_on": []any{"x"}},
	}}); !strings.Contains(msg, "cycle") {
		t.Fatalf("cycle: %q", msg)
	}
	if msg := callError(t, e.client, "get_batch_status", map[string]any{"batch_id": "nb-123"}); !strings.Contains(msg, "not a batch id") {
		t.Fatalf("bad batch id: %q", msg)
	}
}
