package mcpserver_test

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

// server is shared by every test of the package: one embedded Temporal
// server; each test has its own task queue, data dir, worker and root.
var server *testenv.Server

func TestMain(m *testing.M) { testenv.Main(m, &server) }

// env is one test's world: a root folder holding its notebooks, a worker,
// the job service and an MCP client connected in-process to the server.
type env struct {
	root   string
	cfg    *config.Config
	svc    *jobs.Service
	client *client.Client

	mu       sync.Mutex
	progress []mcp.ProgressNotification
}

func newEnv(t testing.TB, notebooks ...string) *env {
	t.Helper()
	e := &env{root: t.TempDir(), cfg: server.Config(t)}
	for _, nb := range notebooks {
		testenv.CopyFile(t, nb, e.root)
	}
	server.StartWorker(t, e.cfg)
	e.svc = server.Service(t, e.cfg, e.root)
	e.client = connect(t, e.svc)
	e.client.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method != string(mcp.MethodNotificationProgress) {
			return
		}
		b, _ := json.Marshal(n)
		var p mcp.ProgressNotification
		if err := json.Unmarshal(b, &p); err != nil {
			t.Errorf("progress notification %s: %v", b, err)
			return
		}
		e.mu.Lock()
		e.progress = append(e.progress, p)
		e.mu.Unlock()
	})
	return e
}

// connect starts an in-process MCP client on a new server for svc. Tests
// check every result against its output schema; the benchmark measures
// the production setting.
func connect(t testing.TB, svc *jobs.Service) *client.Client {
	t.Helper()
	_, bench := t.(*testing.B)
	return connectWith(t, svc, mcpserver.Options{Logger: testenv.Logger(), ValidateOutput: !bench})
}

// connectWith starts an in-process MCP client on a new server with opts.
func connectWith(t testing.TB, svc *jobs.Service, opts mcpserver.Options) *client.Client {
	t.Helper()
	return testenv.MCPClient(t, mcpserver.New(svc, opts))
}

func (e *env) path(name string) string { return filepath.Join(e.root, name) }

func (e *env) progressFor(token string) []mcp.ProgressNotification {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []mcp.ProgressNotification
	for _, p := range e.progress {
		if fmt.Sprint(p.Params.ProgressToken) == token {
			out = append(out, p)
		}
	}
	return out
}

// callTool calls a tool; a JSON-RPC error fails the test.
func callTool(t testing.TB, c *client.Client, name string, args map[string]any, meta *mcp.Meta) *mcp.CallToolResult {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	req.Params.Meta = meta
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return res
}

// call calls a tool that must succeed and decodes its structured content.
func call[T any](t testing.TB, c *client.Client, name string, args map[string]any) (T, string) {
	t.Helper()
	return callMeta[T](t, c, name, args, nil)
}

func callMeta[T any](t testing.TB, c *client.Client, name string, args map[string]any, meta *mcp.Meta) (T, string) {
	t.Helper()
	var out T
	res := callTool(t, c, name, args, meta)
	text := resultText(res)
	if res.IsError {
		t.Fatalf("%s %v: tool error: %s", name, args, text)
	}
	if res.StructuredContent == nil {
		t.Fatalf("%s: no structured content (text %q)", name, text)
	}
	if text == "" {
		t.Fatalf("%s: no text content", name)
	}
	b, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s: structured content %s: %v", name, b, err)
	}
	return out, text
}

// callError calls a tool that must fail with a tool error, and returns its
// message.
func callError(t testing.TB, c *client.Client, name string, args map[string]any) string {
	t.Helper()
	res := callTool(t, c, name, args, nil)
	text := resultText(res)
	if !res.IsError {
		t.Fatalf("%s %v: got success (%s), want a tool error", name, args, text)
	}
	return text
}

func resultText(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// waitStatus polls get_job_status until cond holds.
func waitStatus(t testing.TB, c *client.Client, jobID string, timeout time.Duration, what string, cond func(jobs.Status) bool) jobs.Status {
	t.Helper()
	var st jobs.Status
	testenv.Eventually(t, timeout, what, func() bool {
		st, _ = call[jobs.Status](t, c, "get_job_status", map[string]any{"job_id": jobID})
		return cond(st)
	})
	return st
}

func waitEnded(t testing.TB, c *client.Client, jobID string) jobs.Status {
	t.Helper()
	return waitStatus(t, c, jobID, 3*time.Minute, "job "+jobID+" to end", jobs.Status.Ended)
}

func waitRunning(t testing.TB, c *client.Client, jobID string) jobs.Status {
	t.Helper()
	return waitStatus(t, c, jobID, 2*time.Minute, "job "+jobID+" to run a cell", func(st jobs.Status) bool {
		if st.Ended() {
			t.Fatalf("job ended %s before it was seen running: %+v", st.Status, st.Error)
		}
		return st.Status == workflows.StatusRunning && st.Progress.CurrentCell > 0
	})
}

// processesOf lists the live processes of a job's first attempt: the
// executor and its kernel carry the attempt's marker in their environment.
func processesOf(jobID string) []testenv.Process {
	return testenv.ProcessesWithEnv(executor.MarkerEnv + "=" + jobID + ".1")
}
