package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"millrace/internal/config"
	"millrace/internal/executor"
	"millrace/internal/jobs"
	"millrace/internal/mcpserver"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// tserver is the package's embedded Temporal server, and binary the built
// millrace-mcp that every test runs.
var (
	tserver *testenv.Server
	binary  string
)

func TestMain(m *testing.M) {
	testenv.MainWithBinary(m, &tserver, &binary, "./cmd/mcp", "millrace-mcp")
}

// Notebooks the tests run.
var (
	progressNB = filepath.Join(testenv.RepoRoot(), "internal", "mcpserver", "testdata", "progress.ipynb")
	richNB     = filepath.Join(testenv.RepoRoot(), "internal", "mcpserver", "testdata", "rich.ipynb")
	slowNB     = filepath.Join(testenv.RepoRoot(), "activities", "testdata", "slow.ipynb")
)

// world is a test's task queue and data dir with an in-process worker
// serving its runs, and a root holding its notebooks.
type world struct {
	cfg  *config.Config
	root string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{cfg: tserver.Config(t), root: t.TempDir()}
	for _, nb := range []string{progressNB, richNB, slowNB} {
		testenv.CopyFile(t, nb, w.root)
	}
	tserver.StartWorker(t, w.cfg)
	return w
}

// args are the binary's flags for this world.
func (w *world) args(extra ...string) []string {
	return append([]string{
		"--temporal-address", tserver.Address, "--namespace", w.cfg.Namespace, "--task-queue", w.cfg.TaskQueue,
		"--data-dir", w.cfg.DataDir, "--roots", w.root, "--log-level", "warn",
	}, extra...)
}

// buffer is an io.Writer safe to read while a process writes to it.
type buffer = testenv.SyncBuffer

// progressLog records the progress notifications a client receives.
type progressLog struct {
	mu    sync.Mutex
	items []mcp.ProgressNotification
}

func (p *progressLog) attach(t *testing.T, c *client.Client) {
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method != string(mcp.MethodNotificationProgress) {
			return
		}
		b, _ := json.Marshal(n)
		var pn mcp.ProgressNotification
		if err := json.Unmarshal(b, &pn); err != nil {
			t.Errorf("progress notification %s: %v", b, err)
			return
		}
		p.mu.Lock()
		p.items = append(p.items, pn)
		p.mu.Unlock()
	})
}

func (p *progressLog) forToken(token string) []mcp.ProgressNotification {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []mcp.ProgressNotification
	for _, n := range p.items {
		if fmt.Sprint(n.Params.ProgressToken) == token {
			out = append(out, n)
		}
	}
	return out
}

func initialize(t *testing.T, c *client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req := mcp.InitializeRequest{}
	req.Params.ClientInfo = mcp.Implementation{Name: "millrace-cmd-test", Version: "0"}
	if _, err := c.Initialize(ctx, req); err != nil {
		t.Fatalf("initialize: %v", err)
	}
}

func callRaw(t *testing.T, c *client.Client, name string, args map[string]any, meta *mcp.Meta) *mcp.CallToolResult {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments, req.Params.Meta = name, args, meta
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return res
}

// call calls a tool that must succeed and decodes its structured content.
func call[T any](t *testing.T, c *client.Client, name string, args map[string]any, meta *mcp.Meta) T {
	t.Helper()
	res := callRaw(t, c, name, args, meta)
	var out T
	if res.IsError {
		t.Fatalf("%s %v: tool error %+v", name, args, res.Content)
	}
	b, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s: structured content %s: %v", name, b, err)
	}
	return out
}

// waitProgress waits for progress notifications of at least two cells
// ("RUNNING cell k/n") under token, increasing. Status is polled twice a
// second and heartbeats come once a second: on a loaded machine some cells
// pass unseen, so not every cell is asked for.
func waitProgress(t *testing.T, progress *progressLog, token string) {
	t.Helper()
	var notes []mcp.ProgressNotification
	testenv.Eventually(t, 10*time.Second, "progress notifications for the cells", func() bool {
		notes = progress.forToken(token)
		cells := 0
		for _, n := range notes {
			if strings.Contains(n.Params.Message, "RUNNING cell") {
				cells++
			}
		}
		return cells >= 2
	})
	for i, n := range notes {
		if i > 0 && n.Params.Progress <= notes[i-1].Params.Progress {
			t.Errorf("progress did not increase: %+v", notes)
		}
	}
}

// exercise drives real runs through a client of the built binary: start
// with progress notifications, logs paged while the run writes, output,
// cancel with no process left.
func exercise(t *testing.T, c *client.Client, progress *progressLog) {
	t.Helper()
	res, err := c.ListTools(context.Background(), mcp.ListToolsRequest{})
	if err != nil || len(res.Tools) != 10 {
		t.Fatalf("tools: %d, %v", len(res.Tools), err)
	}

	// A long run to cancel at the end; it runs meanwhile.
	long := call[mcpserver.StartNotebookResult](t, c, "start_notebook", map[string]any{"path": "slow.ipynb", "parameters": map[string]any{"steps": 3000, "delay": 0.1}}, nil)

	// start_notebook with wait_seconds and a progress token.
	started := call[mcpserver.StartNotebookResult](t, c, "start_notebook",
		map[string]any{"path": "progress.ipynb", "parameters": map[string]any{"delay": 1.2}, "wait_seconds": 50},
		&mcp.Meta{ProgressToken: "p-1"})
	if !started.Ended || started.Status != workflows.StatusSucceeded {
		t.Fatalf("start with wait: %+v", started)
	}
	waitProgress(t, progress, "p-1")
	out := call[mcpserver.OutputResult](t, c, "get_job_output", map[string]any{"job_id": started.JobID}, nil)
	if len(out.Cells) != 6 || !strings.Contains(out.Cells[5].Text, "step 4") {
		t.Fatalf("output %+v", out)
	}

	// Logs paged while the run writes: every line once, in order, across
	// both streams (the executor's own lines are on stderr).
	const steps = 60
	logged := call[mcpserver.StartNotebookResult](t, c, "start_notebook", map[string]any{"path": "slow.ipynb", "parameters": map[string]any{"steps": steps, "delay": 0.05}}, nil)
	var lines []string
	cursor, whileRunning, lastSeq := "", 0, int64(0)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("logs not done after 3 minutes: %d lines", len(lines))
		}
		page := call[jobs.Logs](t, c, "get_job_logs", map[string]any{"job_id": logged.JobID, "cursor": cursor, "limit": 5}, nil)
		for _, l := range page.Lines {
			if l.Seq <= lastSeq {
				t.Fatalf("line %+v repeats or goes back (after seq %d)", l, lastSeq)
			}
			lastSeq = l.Seq
			if l.Stream == "stdout" {
				lines = append(lines, l.Text)
			}
		}
		if len(page.Lines) > 0 && page.Status == workflows.StatusRunning {
			whileRunning++
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
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("paged logs:\n%s", strings.Join(lines, "\n"))
	}
	if whileRunning < 2 {
		t.Errorf("only %d pages read while the run wrote", whileRunning)
	}

	// Cancel the long run: it ends CANCELED with no process left.
	marker := executor.MarkerEnv + "=" + long.JobID + ".1"
	testenv.Eventually(t, time.Minute, "the long run's processes", func() bool { return len(testenv.ProcessesWithEnv(marker)) >= 2 })
	st := call[jobs.Status](t, c, "cancel_job", map[string]any{"job_id": long.JobID, "reason": "test"}, nil)
	if st.Status != workflows.StatusCanceled {
		t.Fatalf("after cancel: %+v", st)
	}
	testenv.Eventually(t, 15*time.Second, "no process of the canceled run", func() bool { return len(testenv.ProcessesWithEnv(marker)) == 0 })
	if again := call[jobs.Status](t, c, "cancel_job", map[string]any{"job_id": long.JobID}, nil); again.Status != workflows.StatusCanceled {
		t.Fatalf("second cancel: %+v", again)
	}
}
