package reliability_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"millrace/internal/jobs"
	"millrace/internal/mcpserver"
	"millrace/internal/runopts"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// badInput is one hostile or mistaken request and the words its error must
// hold.
type badInput struct {
	name string
	do   func() error
	want string // a substring of the error, case-insensitive
}

// TestBadInputJobService sends every bad input of the list through
// the job service (which the MCP tools and the CLI share): each must be a
// user error that says what is wrong, and nothing may start.
func TestBadInputJobService(t *testing.T) {
	sc := begin(t, "bad input: job service (each a user error, nothing started)")
	root, outside := t.TempDir(), t.TempDir()
	nb := testenv.CopyFile(t, "testdata/slow.ipynb", root)
	trivial := testenv.CopyFile(t, "testdata/trivial.ipynb", root)
	escape := testenv.CopyFile(t, "testdata/trivial.ipynb", outside)
	write := func(name, body string) string {
		p := filepath.Join(root, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	notJSON := write("notjson.ipynb", "this is not JSON {")
	notNotebook := write("object.ipynb", `{"hello": "world", "cells": 3}`)
	v3 := write("v3.ipynb", `{"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": [{"cells": [{"cell_type": "code", "input": "1", "language": "python", "outputs": []}]}]}`)
	noCode := write("markdown.ipynb", `{"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}, "cells": [{"cell_type": "markdown", "id": "m1", "metadata": {}, "source": "# only prose"}]}`)
	if err := os.Mkdir(filepath.Join(root, "dir.ipynb"), 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(root, "link.ipynb")
	if err := os.Symlink(escape, link); err != nil {
		t.Fatal(err)
	}
	cfg, svc := setup(t, root)
	ctx := context.Background()

	// One real job, for the malformed cursor and cancel-after-end.
	done, err := svc.Start(ctx, jobs.StartRequest{Path: trivial})
	if err != nil {
		t.Fatal(err)
	}
	if st := waitEnd(t, svc, done.JobID, 2*time.Minute); st.Status != workflows.StatusSucceeded {
		t.Fatalf("baseline run: %s %+v", st.Status, st.Error)
	}
	before := jobCount(t, svc)
	runsBefore := runDirs(cfg.DataDir)

	start := func(req jobs.StartRequest) func() error {
		return func() error { _, err := svc.Start(ctx, req); return err }
	}
	batch := func(req jobs.BatchRequest) func() error {
		return func() error { _, err := svc.StartBatch(ctx, req); return err }
	}
	bigNodes := make([]jobs.BatchNodeRequest, 10000)
	for i := range bigNodes {
		bigNodes[i] = jobs.BatchNodeRequest{ID: fmt.Sprintf("n%d", i), Path: trivial}
		if i > 0 {
			bigNodes[i].DependsOn = []string{fmt.Sprintf("n%d", i-1)}
		}
	}
	unknown := workflows.RunIDPrefix + "00000000-0000-4000-8000-000000000000"
	cases := []badInput{
		{"missing file", start(jobs.StartRequest{Path: filepath.Join(root, "missing.ipynb")}), "missing.ipynb"},
		{"a directory", start(jobs.StartRequest{Path: filepath.Join(root, "dir.ipynb")}), "director"},
		{"a non-JSON file", start(jobs.StartRequest{Path: notJSON}), "notjson.ipynb"},
		{"JSON that is not a notebook", start(jobs.StartRequest{Path: notNotebook}), "object.ipynb"},
		{"nbformat 3", start(jobs.StartRequest{Path: v3}), "nbformat"},
		{"no code cells", start(jobs.StartRequest{Path: noCode}), "code cell"},
		{"a path outside the roots", start(jobs.StartRequest{Path: escape}), "root"},
		{"a symlink escaping the roots", start(jobs.StartRequest{Path: link}), "root"},
		{"'..' out of the root", start(jobs.StartRequest{Path: root + "/../" + filepath.Base(outside) + "/trivial.ipynb"}), "root"},
		{"'..' into a relative path", start(jobs.StartRequest{Path: "../../../../../../etc/passwd"}), ""},
		{"output path equal to the input", start(jobs.StartRequest{Path: nb, Options: runopts.Options{OutputPath: nb}}), "output"},
		{"output path outside the roots", start(jobs.StartRequest{Path: nb, Options: runopts.Options{OutputPath: filepath.Join(outside, "out.ipynb")}}), "root"},
		{"cwd outside the roots", start(jobs.StartRequest{Path: nb, Options: runopts.Options{Cwd: outside}}), "root"},
		{"parameter name not an identifier", start(jobs.StartRequest{Path: nb, Options: runopts.Options{Parameters: map[string]any{"1steps": 1.0}}, Direct: runopts.Direct{AllowExtraParameters: true}}), "1steps"},
		{"parameter name with code", start(jobs.StartRequest{Path: nb, Options: runopts.Options{Parameters: map[string]any{"x=1;import os;os._exit(3)#": 1.0}}, Direct: runopts.Direct{AllowExtraParameters: true}}), "identifier"},
		{"parameter name a Python keyword", start(jobs.StartRequest{Path: nb, Options: runopts.Options{Parameters: map[string]any{"class": 1.0}}, Direct: runopts.Direct{AllowExtraParameters: true}}), "class"},
		{"code injection through a string into an int", start(jobs.StartRequest{Path: nb, Options: runopts.Options{Parameters: map[string]any{"steps": "1\nimport os; os._exit(3)"}}}), "steps"},
		{"a 10 MB parameter value", start(jobs.StartRequest{Path: nb, Options: runopts.Options{Parameters: map[string]any{"steps": strings.Repeat("x", 10<<20)}}, Direct: runopts.Direct{AllowExtraParameters: true}}), "steps"},
		{"unknown parameter name", start(jobs.StartRequest{Path: nb, Options: runopts.Options{Parameters: map[string]any{"stepz": 1.0}}}), "stepz"},
		{"a kernel name that is not a name", start(jobs.StartRequest{Path: nb, Options: runopts.Options{Kernel: "python3; rm -rf /"}}), "kernel"},
		{"max attempts out of range", start(jobs.StartRequest{Path: nb, Options: runopts.Options{MaxAttempts: 1000}}), "attempt"},
		{"negative timeout", start(jobs.StartRequest{Path: nb, Options: runopts.Options{TimeoutSeconds: -1}}), "timeout"},
		{"an unknown priority", start(jobs.StartRequest{Path: nb, Job: runopts.Job{Priority: "urgent!"}}), "priority"},
		{"a memory limit that is not a size", start(jobs.StartRequest{Path: nb, Options: runopts.Options{MemoryLimit: "lots"}}), "memory_limit"},
		{"a memory limit too small for a kernel", start(jobs.StartRequest{Path: nb, Options: runopts.Options{MemoryLimit: "1MiB"}}), "below the minimum"},
		{"an unknown checkpoint policy", start(jobs.StartRequest{Path: nb, Options: runopts.Options{Checkpoint: "sometimes"}}), "every_cell"},
		{"a checkpoint cap that is not a size", start(jobs.StartRequest{Path: nb, Options: runopts.Options{CheckpointMaxSize: "huge"}}), "checkpoint_max_size"},
		{"a negative CPU limit", start(jobs.StartRequest{Path: nb, Options: runopts.Options{CPULimit: -2}}), "cpu_limit"},
		{"a webhook to a metadata address", start(jobs.StartRequest{Path: nb, Job: runopts.Job{NotifyURL: "http://169.254.169.254/latest/meta-data"}}), "notify_url"},
		{"a webhook to a file URL", start(jobs.StartRequest{Path: nb, Job: runopts.Job{NotifyURL: "file:///etc/passwd"}}), "http"},
		{"status of an unknown job id", func() error { _, err := svc.Status(ctx, unknown); return err }, "no job"},
		{"status of a malformed job id", func() error { _, err := svc.Status(ctx, "nb-'; DROP TABLE"); return err }, ""},
		{"logs of an unknown job id", func() error { _, err := svc.Logs(ctx, jobs.LogsRequest{JobID: unknown}); return err }, "no job"},
		{"cancel of an unknown job id", func() error { _, err := svc.Cancel(ctx, unknown, ""); return err }, "no job"},
		{"cancel of an ended job", func() error { _, err := svc.Cancel(ctx, done.JobID, ""); return err }, "already ended"},
		{"a malformed cursor", func() error {
			_, err := svc.Logs(ctx, jobs.LogsRequest{JobID: done.JobID, Cursor: "garbage!"})
			return err
		}, "cursor"},
		{"a forged cursor", func() error {
			_, err := svc.Logs(ctx, jobs.LogsRequest{JobID: done.JobID, Cursor: "eyJhIjo5OTksInMiOi01fQ"})
			return err
		}, "cursor"},
		{"a list filter with a query injection", func() error {
			_, err := svc.List(ctx, jobs.ListRequest{Status: "RUNNING' OR 1=1"})
			return err
		}, "status"},
		{"a batch with a cycle", batch(jobs.BatchRequest{Nodes: []jobs.BatchNodeRequest{
			{ID: "a", Path: trivial, DependsOn: []string{"c"}}, {ID: "b", Path: trivial, DependsOn: []string{"a"}}, {ID: "c", Path: trivial, DependsOn: []string{"b"}},
		}}), "cycle"},
		{"a batch of 10,000 nodes", batch(jobs.BatchRequest{Nodes: bigNodes}), "500"},
		{"a batch with an unknown dependency", batch(jobs.BatchRequest{Nodes: []jobs.BatchNodeRequest{{ID: "a", Path: trivial, DependsOn: []string{"zz"}}}}), "zz"},
		{"a batch whose one node is bad", batch(jobs.BatchRequest{Nodes: []jobs.BatchNodeRequest{{ID: "a", Path: trivial}, {ID: "b", Path: escape}}}), "root"},
	}
	for _, c := range cases {
		sc.run()
		err := c.do()
		switch {
		case err == nil:
			t.Errorf("%s: accepted, want a user error", c.name)
			sc.note("%s: accepted", c.name)
		case !jobs.IsUserError(err):
			t.Errorf("%s: %v (%T), want a user error", c.name, err, err)
			sc.note("%s: not a user error", c.name)
		case !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(c.want)):
			t.Errorf("%s: %q does not say %q", c.name, err, c.want)
			sc.note("%s: unclear message", c.name)
		default:
			t.Logf("%s: %s", c.name, firstLine(err.Error()))
			if after := jobCount(t, svc); after != before {
				t.Errorf("%s: %d jobs listed after, %d before", c.name, after, before)
				sc.note("%s: a job appeared", c.name)
				before = after
				continue
			}
			sc.ok()
		}
	}
	// Visibility is eventually consistent: look again a little later.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if after := jobCount(t, svc); after != before {
			t.Errorf("%d jobs listed after the bad inputs, %d before", after, before)
			sc.note("a job appeared late")
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if after := runDirs(cfg.DataDir); after != runsBefore {
		t.Errorf("%d run directories after the bad inputs, %d before", after, runsBefore)
		sc.note("a run directory appeared")
	}
	sc.note("%d requests; List and runs/ unchanged", len(cases))
}

// TestUnknownKernelFailsAtOnce: whether a kernel exists is only known on
// the worker's machine, so a well-formed but unknown kernel name starts a
// run; it must fail at once, not retried, naming the installed kernels.
func TestUnknownKernelFailsAtOnce(t *testing.T) {
	sc := begin(t, "bad input: unknown kernel (FAILED at once, not retried)")
	root := t.TempDir()
	nb := testenv.CopyFile(t, "testdata/trivial.ipynb", root)
	_, svc := setup(t, root)
	env, kv := marker()
	sc.run()
	run, err := svc.Start(context.Background(), jobs.StartRequest{Path: nb, Options: runopts.Options{Kernel: "no-such-kernel"}, Direct: runopts.Direct{Env: env}})
	if err != nil {
		if jobs.IsUserError(err) {
			sc.ok()
			sc.note("refused up front: %s", firstLine(err.Error()))
			return
		}
		t.Fatal(err)
	}
	st := waitEnd(t, svc, run.JobID, 2*time.Minute)
	sc.orphans(leftover(kv))
	switch {
	case !st.Ended():
		sc.lost()
		t.Errorf("still %s after 2 min", st.Status)
	case st.Status != workflows.StatusFailed || st.Attempt != 1 || st.Error == nil || !strings.Contains(st.Error.Message+st.Error.EValue, "no-such-kernel"):
		t.Errorf("got %s attempt %d %+v, want FAILED on attempt 1 naming the kernel", st.Status, st.Attempt, st.Error)
		sc.note("got %s attempt %d", st.Status, st.Attempt)
	default:
		sc.ok()
		sc.note("starts (kernels are known on the worker), FAILED on attempt 1 in %.1fs: %s", st.Duration, firstLine(st.Error.Message))
	}
}

// TestBadInputHTTP sends hostile HTTP requests to the MCP server's
// streamable HTTP handler, set up with a token: each is refused, and no
// job starts.
func TestBadInputHTTP(t *testing.T) {
	sc := begin(t, "bad input: MCP over HTTP (token, Origin, JSON-RPC)")
	root := t.TempDir()
	nb := testenv.CopyFile(t, "testdata/trivial.ipynb", root)
	_, svc := setup(t, root)
	const token = "reliability-token"
	srv := httptest.NewServer(mcpserver.HTTPHandler(mcpserver.New(svc, mcpserver.Options{}), mcpserver.HTTPOptions{Token: token}))
	defer srv.Close()
	url := srv.URL + mcpserver.EndpointPath
	before := jobCount(t, svc)

	startCall := fmt.Sprintf(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"start_notebook","arguments":{"path":%q}}}`, nb)
	initialize := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"reliability","version":"1"}}}`
	bearer := "Bearer " + token
	cases := []struct {
		name    string
		headers map[string]string
		body    string
		want    func(code int, body string) bool
		expect  string
	}{
		{"no token", nil, startCall, status(http.StatusUnauthorized), "401"},
		{"a wrong token", map[string]string{"Authorization": "Bearer nope"}, startCall, status(http.StatusUnauthorized), "401"},
		{"a token of another scheme", map[string]string{"Authorization": "Basic " + token}, startCall, status(http.StatusUnauthorized), "401"},
		{"a foreign Origin with the token", map[string]string{"Authorization": bearer, "Origin": "http://evil.example"}, startCall, status(http.StatusForbidden), "403"},
		{"a foreign Origin looking local", map[string]string{"Authorization": bearer, "Origin": "http://localhost.evil.example"}, startCall, status(http.StatusForbidden), "403"},
		{"malformed JSON", map[string]string{"Authorization": bearer}, `{"jsonrpc":"2.0","id":1,"method":`, rpcError, "4xx or a JSON-RPC error"},
		{"JSON that is not JSON-RPC", map[string]string{"Authorization": bearer}, `[1, 2, 3]`, rpcError, "4xx or a JSON-RPC error"},
		{"a tool call without a session", map[string]string{"Authorization": bearer}, startCall, rpcError, "4xx or a JSON-RPC error"},
		{"an unknown method", map[string]string{"Authorization": bearer}, `{"jsonrpc":"2.0","id":1,"method":"no/such"}`, rpcError, "4xx or a JSON-RPC error"},
		{"a control: initialize with the token", map[string]string{"Authorization": bearer}, initialize, status(http.StatusOK), "200"},
	}
	for _, c := range cases {
		sc.run()
		req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		for k, v := range c.headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		t.Logf("%s: %d %s", c.name, resp.StatusCode, firstLine(string(b)))
		if !c.want(resp.StatusCode, string(b)) {
			t.Errorf("%s: got %d %q, want %s", c.name, resp.StatusCode, b, c.expect)
			sc.note("%s: got %d", c.name, resp.StatusCode)
			continue
		}
		if after := jobCount(t, svc); after != before {
			t.Errorf("%s: %d jobs listed after, %d before", c.name, after, before)
			sc.note("%s: a job appeared", c.name)
			before = after
			continue
		}
		sc.ok()
	}
	sc.note("mcpserver.HTTPHandler with a token; List unchanged")
}

func status(want int) func(int, string) bool {
	return func(code int, _ string) bool { return code == want }
}

// rpcError accepts a refusal: an HTTP client error, or a JSON-RPC error.
func rpcError(code int, body string) bool {
	return code >= 400 && code < 500 || code == http.StatusOK && strings.Contains(body, `"error"`)
}

// jobCount counts the jobs of a scenario's task queue.
func jobCount(t *testing.T, svc *jobs.Service) int {
	t.Helper()
	l, err := svc.List(context.Background(), jobs.ListRequest{Limit: jobs.MaxListLimit})
	if err != nil {
		t.Fatal(err)
	}
	return len(l.Jobs)
}

// runDirs counts the run directories of a data dir.
func runDirs(dataDir string) int {
	e, _ := os.ReadDir(filepath.Join(dataDir, "runs"))
	return len(e)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return s
}
