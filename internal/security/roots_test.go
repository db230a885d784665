package security_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	tclient "go.temporal.io/sdk/client"

	"millrace/internal/failure"
	"millrace/internal/jobs"
	"millrace/internal/mcpserver"
	"millrace/internal/runopts"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// mcpOn is an in-process MCP client of a server for svc.
func mcpOn(t *testing.T, svc *jobs.Service) *client.Client {
	return testenv.MCPClient(t, mcpserver.New(svc, mcpserver.Options{Logger: testenv.Logger()}))
}

// toolAnswer calls a tool and returns its error text ("" when it succeeded).
func toolAnswer(t *testing.T, c *client.Client, name string, args map[string]any) (string, *mcp.CallToolResult) {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = name, args
	res, err := c.CallTool(context.Background(), req)
	if err != nil {
		return err.Error(), nil
	}
	if !res.IsError {
		return "", res
	}
	var text []string
	for _, ct := range res.Content {
		if tc, ok := ct.(mcp.TextContent); ok {
			text = append(text, tc.Text)
		}
	}
	return strings.Join(text, "\n"), res
}

// readResource reads a resource and returns its error text and content.
func readResource(c *client.Client, uri string) (string, string) {
	req := mcp.ReadResourceRequest{}
	req.Params.URI = uri
	res, err := c.ReadResource(context.Background(), req)
	if err != nil {
		return err.Error(), ""
	}
	var b strings.Builder
	for _, ct := range res.Contents {
		switch v := ct.(type) {
		case mcp.TextResourceContents:
			b.WriteString(v.Text)
		case mcp.BlobResourceContents:
			b.WriteString(v.Blob)
		}
	}
	return "", b.String()
}

func waitEnded(t *testing.T, svc *jobs.Service, jobID string) jobs.Status {
	t.Helper()
	st, err := svc.WaitEnded(context.Background(), jobID, 2*time.Minute, nil)
	if err != nil || !st.Ended() {
		t.Fatalf("job %s did not end: %+v, %v", jobID, st, err)
	}
	return st
}

// TestRootsJobUnderAnotherRootIsUnknown: an MCP server with roots /a acts
// on no job of a server with roots /b sharing its namespace and task queue
// (the dev service's case), and answers each exactly as an unknown id.
func TestRootsJobUnderAnotherRootIsUnknown(t *testing.T) {
	o := attack(t, "read, rerun or cancel a job started under another server's roots (MCP server --roots /a, CLI job in /b)")
	cfg := server.Config(t)
	server.StartWorker(t, cfg)
	rootA, rootB := t.TempDir(), t.TempDir()
	svcA, svcB := server.Service(t, cfg, rootA), server.Service(t, cfg, rootB)
	ctx := context.Background()

	testenv.WriteNotebook(t, rootB, "b.ipynb", `import os; print("B-OUTPUT", os.environ.get("B_TOKEN"))`)
	testenv.WriteNotebook(t, rootB, "slow.ipynb", "import time\ntime.sleep(120)")
	testenv.WriteNotebook(t, rootA, "a.ipynb", `print("A-OUTPUT")`)
	done, err := svcB.Start(ctx, jobs.StartRequest{Path: "b.ipynb", Options: runopts.Options{OutputPath: "out/b.ipynb"}, Direct: runopts.Direct{Env: map[string]string{"B_TOKEN": "b-secret-value"}}})
	if err != nil {
		t.Fatal(err)
	}
	running, err := svcB.Start(ctx, jobs.StartRequest{Path: "slow.ipynb"})
	if err != nil {
		t.Fatal(err)
	}
	mine, err := svcA.Start(ctx, jobs.StartRequest{Path: "a.ipynb"})
	if err != nil {
		t.Fatal(err)
	}
	if st := waitEnded(t, svcB, done.JobID); st.Status != workflows.StatusSucceeded {
		t.Fatalf("B's job: %+v", st)
	}
	waitEnded(t, svcA, mine.JobID)
	testenv.Eventually(t, time.Minute, "B's slow job running", func() bool {
		st, err := svcB.Status(ctx, running.JobID)
		return err == nil && st.Status == workflows.StatusRunning
	})

	c := mcpOn(t, svcA)
	unknown := workflows.RunIDPrefix + uuid.NewString()
	same := func(what, got, want, id string) {
		t.Helper()
		if got == "" {
			t.Errorf("%s of B's job succeeded on A's server", what)
			return
		}
		if g, w := strings.ReplaceAll(got, id, "ID"), strings.ReplaceAll(want, unknown, "ID"); g != w {
			t.Errorf("%s: B's job answers\n  %s\nan unknown job answers\n  %s", what, g, w)
		}
		for _, leak := range []string{rootB, "b-secret-value", "B-OUTPUT", "b.ipynb"} {
			if strings.Contains(got, leak) {
				t.Errorf("%s answer names %q: %s", what, leak, got)
			}
		}
	}
	for _, id := range []string{done.JobID, running.JobID} {
		for _, tool := range []string{"get_job_status", "get_job_logs", "get_job_output", "rerun_job", "cancel_job"} {
			got, _ := toolAnswer(t, c, tool, map[string]any{"job_id": id})
			want, _ := toolAnswer(t, c, tool, map[string]any{"job_id": unknown})
			same(tool, got, want, id)
		}
		for _, form := range []string{"millrace://jobs/%s", "millrace://jobs/%s/logs", "millrace://jobs/%s/output.ipynb", "millrace://jobs/%s/outputs/0/0", "millrace://jobs/%s/cells/0/text"} {
			got, content := readResource(c, strings.ReplaceAll(form, "%s", id))
			want, _ := readResource(c, strings.ReplaceAll(form, "%s", unknown))
			if content != "" {
				t.Errorf("resources/read %s served %q", form, content)
			}
			same("resources/read "+form, got, want, id)
		}
	}

	// The slow job still runs: the cancel did nothing.
	if st, err := svcB.Status(ctx, running.JobID); err != nil || st.Status != workflows.StatusRunning {
		t.Errorf("B's running job after A's cancel: %+v, %v", st, err)
	}
	// A's listing shows A's job only, and counts it alone.
	_, res := toolAnswer(t, c, "list_jobs", map[string]any{})
	var list jobs.List
	b, _ := json.Marshal(res.StructuredContent)
	_ = json.Unmarshal(b, &list)
	total := 0
	for _, n := range list.Counts {
		total += n
	}
	if len(list.Jobs) != 1 || list.Jobs[0].JobID != mine.JobID || total != 1 {
		t.Errorf("A's list_jobs = %d jobs %+v, counts %v; want only %s", len(list.Jobs), list.Jobs, list.Counts, mine.JobID)
	}
	// B's listing: nothing was rerun.
	bl, err := svcB.List(ctx, jobs.ListRequest{})
	if err != nil || len(bl.Jobs) != 2 {
		t.Errorf("B's list after A's attempts: %d jobs, %v; want its 2", len(bl.Jobs), err)
	}
	if _, err := svcB.Cancel(ctx, running.JobID, "test over"); err != nil {
		t.Errorf("B cancels its own job: %v", err)
	}
	o.saw("status, logs, output, rerun, cancel and 5 resources/read answer as for an unknown id; list_jobs shows 1 of 3 jobs, counts 1; B's job still running")
}

// TestRootsFolderSwappedWhilePending: a run's output folder is swapped for
// a symlink out of the roots while the run waits for a worker; the worker
// refuses it and writes nothing outside.
func TestRootsFolderSwappedWhilePending(t *testing.T) {
	o := attack(t, "swap a run's output folder or cwd for a symlink out of the roots while the run is PENDING")
	cfg := server.Config(t)
	root, outside := t.TempDir(), t.TempDir()
	svc := server.Service(t, cfg, root)
	ctx := context.Background()
	testenv.WriteNotebook(t, root, "nb.ipynb", `open("written-by-kernel.txt", "w").write("x"); print("ran")`)
	for _, d := range []string{"out", "work"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// No worker listens yet: both runs stay PENDING.
	byOutput, err := svc.Start(ctx, jobs.StartRequest{Path: "nb.ipynb", Options: runopts.Options{OutputPath: "out/result.ipynb"}})
	if err != nil {
		t.Fatal(err)
	}
	byCwd, err := svc.Start(ctx, jobs.StartRequest{Path: "nb.ipynb", Options: runopts.Options{Cwd: "work"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"out", "work"} {
		p := filepath.Join(root, d)
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(outside, p); err != nil {
			t.Fatal(err)
		}
	}
	// The worker's own roots (home and the temporary folder) hold the
	// outside folder too: the run's roots are what refuse it.
	server.StartWorker(t, cfg)
	for _, id := range []string{byOutput.JobID, byCwd.JobID} {
		st := waitEnded(t, svc, id)
		if st.Status != workflows.StatusFailed || st.Error == nil || st.Error.Type != failure.TypeBadInput || !strings.Contains(st.Error.Message, "symlink") {
			t.Errorf("run %s: %s %+v; want FAILED BadInput naming the symlink", id, st.Status, st.Error)
		}
		if st.Error != nil && strings.Contains(st.Error.Message, outside) {
			t.Errorf("the refusal names the symlink's target: %s", st.Error.Message)
		}
	}
	entries, _ := os.ReadDir(outside)
	if len(entries) != 0 {
		t.Errorf("files written outside the roots: %v", entries)
	}
	st, _ := svc.Status(ctx, byOutput.JobID)
	o.saw("both runs FAILED %s (%q); nothing written outside", failure.TypeBadInput, st.Error.Message)
}

// TestRootsOutputSwappedForSymlinkAfterEnd: once a run has succeeded, its
// output notebook is replaced by a symlink to a secret outside the roots;
// get_job_output and resources/read refuse it without echoing the target.
func TestRootsOutputSwappedForSymlinkAfterEnd(t *testing.T) {
	o := attack(t, "replace a finished run's output notebook with a symlink to a secret file, then read it over MCP")
	cfg := server.Config(t)
	server.StartWorker(t, cfg)
	root, outside := t.TempDir(), t.TempDir()
	svc := server.Service(t, cfg, root)
	ctx := context.Background()
	secret := filepath.Join(outside, "secret.ipynb")
	// A valid notebook, so a reader that followed the link would serve it.
	testenv.WriteNotebook(t, outside, "secret.ipynb", `print("TOP-SECRET-CONTENT")`)
	testenv.WriteNotebook(t, root, "nb.ipynb", `print("hello")`)
	explicit, err := svc.Start(ctx, jobs.StartRequest{Path: "nb.ipynb", Options: runopts.Options{OutputPath: "out.ipynb"}})
	if err != nil {
		t.Fatal(err)
	}
	byDefault, err := svc.Start(ctx, jobs.StartRequest{Path: "nb.ipynb"})
	if err != nil {
		t.Fatal(err)
	}
	c := mcpOn(t, svc)
	var answers []string
	for _, started := range []jobs.Started{explicit, byDefault} {
		st := waitEnded(t, svc, started.JobID)
		if st.Status != workflows.StatusSucceeded {
			t.Fatalf("run: %+v", st)
		}
		// Before the swap the output is served.
		if got, _ := toolAnswer(t, c, "get_job_output", map[string]any{"job_id": started.JobID}); got != "" {
			t.Fatalf("get_job_output before the swap: %s", got)
		}
		if err := os.Remove(st.OutputPath); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(secret, st.OutputPath); err != nil {
			t.Fatal(err)
		}
		got, _ := toolAnswer(t, c, "get_job_output", map[string]any{"job_id": started.JobID})
		answers = append(answers, got)
		for _, form := range []string{"millrace://jobs/%s/output.ipynb", "millrace://jobs/%s/outputs/1/0", "millrace://jobs/%s/cells/1/text"} {
			e, content := readResource(c, strings.ReplaceAll(form, "%s", started.JobID))
			if content != "" {
				t.Errorf("resources/read %s served %q", form, content)
			}
			answers = append(answers, e)
		}
	}
	for _, a := range answers {
		if a == "" {
			t.Error("a read through the symlink succeeded")
		}
		if strings.Contains(a, "TOP-SECRET") || strings.Contains(a, outside) {
			t.Errorf("the refusal echoes the target: %s", a)
		}
	}
	o.saw("get_job_output and 3 resources/read refused for an explicit and a default output: %q", answers[0])
}

// TestRootsOutsideAnswerSameWhetherFileExists: a path outside the roots is
// refused with the same words whether a file is there or not, directly or
// through a symlink inside the root.
func TestRootsOutsideAnswerSameWhetherFileExists(t *testing.T) {
	o := attack(t, "probe which files exist outside the roots through start_notebook and inspect_notebook errors")
	cfg := server.Config(t)
	root, outside := t.TempDir(), t.TempDir()
	testenv.WriteNotebook(t, outside, "exists.ipynb", `print(1)`)
	for link, target := range map[string]string{"l-exists.ipynb": "exists.ipynb", "l-missing.ipynb": "missing.ipynb"} {
		if err := os.Symlink(filepath.Join(outside, target), filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	c := mcpOn(t, server.Service(t, cfg, root))
	ask := func(tool, p string) string {
		got, _ := toolAnswer(t, c, tool, map[string]any{"path": p})
		if got == "" {
			t.Fatalf("%s %s succeeded", tool, p)
		}
		return strings.ReplaceAll(got, p, "P")
	}
	for _, tool := range []string{"start_notebook", "inspect_notebook"} {
		for _, pair := range [][2]string{
			{filepath.Join(outside, "exists.ipynb"), filepath.Join(outside, "missing.ipynb")},
			{"l-exists.ipynb", "l-missing.ipynb"},
			{filepath.Join(outside, "exists.ipynb"), filepath.Join(outside, "nodir", "missing.ipynb")},
		} {
			a, b := ask(tool, pair[0]), ask(tool, pair[1])
			if a != b {
				t.Errorf("%s: an existing and a missing file outside answer differently:\n  %s\n  %s", tool, a, b)
			}
			if strings.Contains(a, outside) {
				t.Errorf("%s names the outside folder: %s", tool, a)
			}
		}
	}
	o.saw("one answer for existing and missing files, direct or by symlink: %q", ask("start_notebook", filepath.Join(outside, "exists.ipynb")))
}

// TestRootsWorkerRefusesForgedInputs: a workflow started straight with the
// Temporal client (bypassing the job service) with a notebook outside the
// worker's roots, or a malformed job id, is refused by the worker.
func TestRootsWorkerRefusesForgedInputs(t *testing.T) {
	o := attack(t, "forge a workflow input (Temporal client) with a notebook outside the worker's roots, or a job id that is a path")
	cfg := server.Config(t)
	root, outside := t.TempDir(), t.TempDir()
	wcfg := *cfg
	wcfg.Roots = []string{root}
	server.StartWorker(t, &wcfg)
	inside := testenv.WriteNotebook(t, root, "nb.ipynb", `open("ran.txt", "w").write("x")`)
	evil := testenv.WriteNotebook(t, outside, "evil.ipynb", `open("ran.txt", "w").write("x")`)
	ctx := context.Background()
	forge := func(id string, in workflows.RunInput) error {
		run, err := server.Client.ExecuteWorkflow(ctx, clientOptions(id, cfg.TaskQueue), workflows.NotebookRunWorkflow, in)
		if err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		return run.Get(wctx, nil)
	}
	var msgs []string
	for _, c := range []struct {
		id   string
		in   workflows.RunInput
		want string
	}{
		{workflows.RunIDPrefix + uuid.NewString(), workflows.RunInput{Notebook: evil, Cwd: outside, Output: filepath.Join(root, "o.ipynb"), MaxAttempts: 1}, "outside"},
		{workflows.RunIDPrefix + uuid.NewString(), workflows.RunInput{Notebook: inside, Cwd: outside, Output: filepath.Join(root, "o.ipynb"), MaxAttempts: 1}, "outside"},
		{workflows.RunIDPrefix + uuid.NewString(), workflows.RunInput{Notebook: inside, Cwd: root, Output: filepath.Join(outside, "o.ipynb"), MaxAttempts: 1}, "outside"},
		{workflows.RunIDPrefix + "../../escape", workflows.RunInput{Notebook: inside, Cwd: root, Output: filepath.Join(root, "o.ipynb"), MaxAttempts: 1}, "not a notebook run id"},
		{workflows.RunIDPrefix + "x", workflows.RunInput{Notebook: inside, Cwd: root, Output: filepath.Join(root, "o.ipynb"), MaxAttempts: 1}, "not a notebook run id"},
	} {
		err := forge(c.id, c.in)
		if err == nil || !strings.Contains(err.Error(), "refused by the worker") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("forged %s %+v: %v; want the worker's refusal saying %q", c.id, c.in, err, c.want)
			continue
		}
		msgs = append(msgs, rootCause(err))
	}
	for _, p := range []string{filepath.Join(outside, "ran.txt"), filepath.Join(root, "ran.txt"), filepath.Join(outside, "o.ipynb"), filepath.Join(filepath.Dir(cfg.DataDir), "escape")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s exists: a forged run ran or wrote", p)
		}
	}
	if len(msgs) > 0 {
		o.saw("%d forged runs failed %s before any executor started, e.g. %q", len(msgs), failure.TypeBadInput, msgs[0])
	}
}

// clientOptions start a forged workflow as a Temporal client could.
func clientOptions(id, taskQueue string) tclient.StartWorkflowOptions {
	return tclient.StartWorkflowOptions{ID: id, TaskQueue: taskQueue, WorkflowExecutionErrorWhenAlreadyStarted: true}
}

// rootCause is the worker's words in a failed workflow's error chain.
func rootCause(err error) string {
	s := err.Error()
	if i := strings.Index(s, "refused by the worker"); i >= 0 {
		s = s[i:]
	}
	return s
}
