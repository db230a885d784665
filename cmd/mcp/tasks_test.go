package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"millrace/internal/executor"
	"millrace/internal/jobs"
	"millrace/internal/mcpserver"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// peer speaks raw JSON-RPC to a millrace-mcp process over stdio, so a test
// controls every byte of the protocol (versions, params.task, _meta) and can
// SIGKILL the process.
type peer struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr buffer
	mu     sync.Mutex
	nextID int
	waits  map[int]chan json.RawMessage
	notes  []json.RawMessage
}

func startPeer(t *testing.T, w *world) *peer {
	t.Helper()
	p := &peer{t: t, cmd: exec.Command(binary, w.args()...), waits: map[int]chan json.RawMessage{}}
	p.cmd.Stderr = &p.stderr
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.stdin.Close()
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
		if t.Failed() {
			t.Logf("millrace-mcp stderr:\n%s", p.stderr.String())
		}
	})
	go func() {
		lines := bufio.NewScanner(stdout)
		lines.Buffer(nil, 4<<20)
		for lines.Scan() {
			var m struct {
				ID     *int   `json:"id"`
				Method string `json:"method"`
			}
			line := json.RawMessage(bytes.Clone(lines.Bytes()))
			if json.Unmarshal(line, &m) != nil {
				t.Errorf("stdout line is not JSON-RPC: %s", line)
				continue
			}
			p.mu.Lock()
			if m.ID != nil && m.Method == "" {
				if ch := p.waits[*m.ID]; ch != nil {
					ch <- line
				}
			} else {
				p.notes = append(p.notes, line)
			}
			p.mu.Unlock()
		}
	}()
	return p
}

// request sends method with params and returns the whole response.
func (p *peer) request(method string, params any) map[string]any {
	p.t.Helper()
	p.mu.Lock()
	p.nextID++
	id := p.nextID
	ch := make(chan json.RawMessage, 1)
	p.waits[id] = ch
	p.mu.Unlock()
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	if _, err := p.stdin.Write(append(b, '\n')); err != nil {
		p.t.Fatalf("%s: %v", method, err)
	}
	select {
	case raw := <-ch:
		var out map[string]any
		if err := json.Unmarshal(raw, &out); err != nil {
			p.t.Fatal(err)
		}
		return out
	case <-time.After(3 * time.Minute):
		p.t.Fatalf("%s: no answer in 3 minutes", method)
		return nil
	}
}

// result is request's result, failing the test on a JSON-RPC error.
func (p *peer) result(method string, params any) map[string]any {
	p.t.Helper()
	resp := p.request(method, params)
	res, ok := resp["result"].(map[string]any)
	if !ok {
		p.t.Fatalf("%s %v: %v", method, params, resp)
	}
	return res
}

// errorCode is the code of request's JSON-RPC error, failing the test on a result.
func (p *peer) errorCode(method string, params any) float64 {
	p.t.Helper()
	resp := p.request(method, params)
	e, ok := resp["error"].(map[string]any)
	if !ok {
		p.t.Fatalf("%s %v: %v, want an error", method, params, resp)
	}
	return e["code"].(float64)
}

func (p *peer) initialize(version string) map[string]any {
	p.t.Helper()
	res := p.result("initialize", map[string]any{"protocolVersion": version, "capabilities": map[string]any{}, "clientInfo": map[string]any{"name": "raw", "version": "1"}})
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": "notifications/initialized"})
	_, _ = p.stdin.Write(append(b, '\n'))
	return res
}

// modernMeta is a 2026-07-28 request's _meta, with the tasks extension when asked.
func modernMeta(withTasks bool) map[string]any {
	caps := map[string]any{}
	if withTasks {
		caps["extensions"] = map[string]any{mcpserver.TasksExtension: map[string]any{}}
	}
	return map[string]any{
		"io.modelcontextprotocol/protocolVersion":    "2026-07-28",
		"io.modelcontextprotocol/clientInfo":         map[string]any{"name": "raw", "version": "1"},
		"io.modelcontextprotocol/clientCapabilities": caps,
	}
}

func shortRun() map[string]any {
	return map[string]any{"path": "slow.ipynb", "parameters": map[string]any{"steps": 2, "delay": 0.01}}
}

// TestTasksProtocolNegotiation: tasks go only to clients that negotiated
// them, each in its version's shape. A 2025-06-18 session sees plain tools
// and gets a plain result even when it sends params.task.
func TestTasksProtocolNegotiation(t *testing.T) {
	t.Parallel()
	w := newWorld(t)

	old := startPeer(t, w)
	init := old.initialize("2025-06-18")
	if caps := init["capabilities"].(map[string]any); caps["tasks"] != nil || caps["extensions"] != nil {
		t.Errorf("2025-06-18 capabilities: %v", caps)
	}
	tools, _ := json.Marshal(old.result("tools/list", map[string]any{}))
	if bytes.Contains(tools, []byte(`"execution"`)) || bytes.Contains(tools, []byte(`taskSupport`)) {
		t.Errorf("2025-06-18 tools/list mentions tasks: %s", tools)
	}
	plain := old.result("tools/call", map[string]any{"name": "start_notebook", "arguments": shortRun(), "task": map[string]any{"ttl": 60000}})
	if plain["task"] != nil || plain["structuredContent"].(map[string]any)["job_id"] == nil {
		t.Errorf("2025-06-18 tools/call with params.task: %v, want a plain result", plain)
	}
	if code := old.errorCode("tasks/get", map[string]any{"taskId": plain["structuredContent"].(map[string]any)["job_id"]}); code != mcp.METHOD_NOT_FOUND {
		t.Errorf("2025-06-18 tasks/get: code %v", code)
	}

	legacy := startPeer(t, w)
	init = legacy.initialize("2025-11-25")
	if caps := init["capabilities"].(map[string]any); caps["tasks"] == nil {
		t.Errorf("2025-11-25 capabilities: %v", caps)
	}
	tools, _ = json.Marshal(legacy.result("tools/list", map[string]any{}))
	if n := bytes.Count(tools, []byte(`"taskSupport":"optional"`)); n != 3 {
		t.Errorf("2025-11-25 tools/list: %d task tools, want 3 (start_notebook, start_batch, rerun_job)", n)
	}
	// Without params.task a task tool answers as it always did.
	sync := legacy.result("tools/call", map[string]any{"name": "start_notebook", "arguments": shortRun()})
	if sync["task"] != nil {
		t.Errorf("2025-11-25 call without params.task: %v", sync)
	}
	// start_batch and rerun_job as tasks: the batch id, and the rerun's new job id.
	taskOf := func(name string, args map[string]any, prefix string) string {
		res := legacy.result("tools/call", map[string]any{"name": name, "arguments": args, "task": map[string]any{}})
		task, _ := res["task"].(map[string]any)
		if id, _ := task["taskId"].(string); strings.HasPrefix(id, prefix) {
			return id
		}
		t.Fatalf("%s as a task: %v", name, res)
		return ""
	}
	batch := taskOf("start_batch", map[string]any{"nodes": []any{map[string]any{"id": "a", "path": "slow.ipynb", "parameters": map[string]any{"steps": 1, "delay": 0.01}}}}, workflows.BatchIDPrefix)
	syncID := sync["structuredContent"].(map[string]any)["job_id"].(string)
	rerun := taskOf("rerun_job", map[string]any{"job_id": syncID}, workflows.RunIDPrefix)
	if rerun == syncID {
		t.Errorf("rerun_job's task is the rerun job, not %s", syncID)
	}
	if res := legacy.result("tasks/result", map[string]any{"taskId": batch}); res["structuredContent"].(map[string]any)["status"] != workflows.StatusSucceeded {
		t.Errorf("batch task result: %v", res)
	}
	if res := legacy.result("tasks/result", map[string]any{"taskId": rerun}); res["structuredContent"].(map[string]any)["ended"] != true {
		t.Errorf("rerun task result: %v", res)
	}

	// 2026-07-28: the extension in discover; a task only for a request that
	// declares it.
	modern := startPeer(t, w)
	disc := modern.result("server/discover", map[string]any{"_meta": modernMeta(false)})
	if ext := disc["capabilities"].(map[string]any)["extensions"].(map[string]any); ext[mcpserver.TasksExtension] == nil {
		t.Errorf("discover extensions: %v", ext)
	}
	without := modern.result("tools/call", map[string]any{"name": "start_notebook", "arguments": shortRun(), "_meta": modernMeta(false)})
	if without["resultType"] != "complete" || without["structuredContent"] == nil {
		t.Errorf("2026-07-28 call without the extension: %v", without)
	}
	task := modern.result("tools/call", map[string]any{"name": "start_notebook", "arguments": shortRun(), "_meta": modernMeta(true)})
	id, _ := task["taskId"].(string)
	if task["resultType"] != "task" || !strings.HasPrefix(id, workflows.RunIDPrefix) || task["status"] != "working" {
		t.Fatalf("2026-07-28 task: %v", task)
	}
	if code := modern.errorCode("tasks/get", map[string]any{"taskId": id, "_meta": modernMeta(false)}); code != -32021 {
		t.Errorf("tasks/get without the extension: code %v, want -32021", code)
	}
	var got map[string]any
	testenv.Eventually(t, 2*time.Minute, "the 2026-07-28 task to complete", func() bool {
		got = modern.result("tasks/get", map[string]any{"taskId": id, "_meta": modernMeta(true)})
		return got["status"] != "working"
	})
	res, _ := got["result"].(map[string]any)
	if got["status"] != "completed" || got["resultType"] != "complete" || res == nil || res["structuredContent"].(map[string]any)["status"] != workflows.StatusSucceeded {
		t.Errorf("completed 2026-07-28 task: %v", got)
	}
	if got["ttlMs"] == nil || got["pollIntervalMs"] == nil {
		t.Errorf("completed task without ttlMs (the namespace retention) or pollIntervalMs: %v", got)
	}
	for _, m := range []string{"tasks/result", "tasks/list"} {
		if code := modern.errorCode(m, map[string]any{"taskId": id, "_meta": modernMeta(true)}); code != mcp.METHOD_NOT_FOUND {
			t.Errorf("2026-07-28 %s: code %v", m, code)
		}
	}
	if code := modern.errorCode("tasks/get", map[string]any{"taskId": "nb-00000000-0000-0000-0000-000000000000", "_meta": modernMeta(true)}); code != mcp.INVALID_PARAMS {
		t.Errorf("unknown task: code %v", code)
	}
}

// TestTaskSurvivesServerKill: a task started through one millrace-mcp
// process is read, awaited and cancelled through another after the first
// was SIGKILLed, with the result the synchronous tools give.
func TestTaskSurvivesServerKill(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	first := startPeer(t, w)
	first.initialize("2025-11-25")
	create := func(args map[string]any) string {
		res := first.result("tools/call", map[string]any{"name": "start_notebook", "arguments": args, "task": map[string]any{"ttl": 60000}})
		task, _ := res["task"].(map[string]any)
		if task == nil || task["status"] != "working" {
			t.Fatalf("task-augmented call: %v", res)
		}
		return task["taskId"].(string)
	}
	awaited := create(map[string]any{"path": "progress.ipynb", "parameters": map[string]any{"delay": 1}})
	cancelled := create(map[string]any{"path": "slow.ipynb", "parameters": map[string]any{"steps": 3000, "delay": 0.1}})
	var began time.Time
	if err := first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = first.cmd.Wait()

	second := startPeer(t, w)
	second.initialize("2025-11-25")
	began = time.Now()
	if st := second.result("tasks/get", map[string]any{"taskId": awaited}); st["taskId"] != awaited || st["status"] == nil {
		t.Fatalf("tasks/get through the second process: %v", st)
	}
	t.Logf("tasks/get through the second process: %s", time.Since(began).Round(time.Millisecond))
	res := second.result("tasks/result", map[string]any{"taskId": awaited})
	var got mcpserver.StartNotebookResult
	b, _ := json.Marshal(res["structuredContent"])
	if err := json.Unmarshal(b, &got); err != nil || !got.Ended || got.Job == nil {
		t.Fatalf("tasks/result: %v (%v)", res, err)
	}
	sync := second.result("tools/call", map[string]any{"name": "get_job_status", "arguments": map[string]any{"job_id": awaited}})
	var want jobs.Status
	b, _ = json.Marshal(sync["structuredContent"])
	_ = json.Unmarshal(b, &want)
	if got.Status != workflows.StatusSucceeded || got.Job.Status != want.Status || got.Job.OutputPath != want.OutputPath || got.Job.Progress != want.Progress {
		t.Errorf("tasks/result after the kill: %+v\nget_job_status: %+v", got.Job, want)
	}
	if meta, _ := res["_meta"].(map[string]any); meta[mcp.RelatedTaskMetaKey] == nil {
		t.Errorf("tasks/result without related-task _meta: %v", res)
	}

	marker := executor.MarkerEnv + "=" + cancelled + ".1"
	testenv.Eventually(t, time.Minute, "the cancelled task's kernel", func() bool { return len(testenv.ProcessesWithEnv(marker)) >= 2 })
	began = time.Now()
	after := second.result("tasks/cancel", map[string]any{"taskId": cancelled})
	t.Logf("tasks/cancel through the second process answered cancelled in %s", time.Since(began).Round(time.Millisecond))
	if after["status"] != "cancelled" {
		t.Fatalf("tasks/cancel: %v", after)
	}
	if left := testenv.ProcessesWithEnv(marker); len(left) > 0 {
		t.Errorf("processes left after tasks/cancel said cancelled: %v", left)
	}
	list := second.result("tasks/list", map[string]any{})
	b, _ = json.Marshal(list)
	for _, id := range []string{awaited, cancelled} {
		if !bytes.Contains(b, []byte(id)) {
			t.Errorf("tasks/list lacks %s: %s", id, b)
		}
	}
	if code := second.errorCode("tasks/cancel", map[string]any{"taskId": awaited}); code != mcp.INVALID_PARAMS {
		t.Errorf("cancel of a completed task: code %v", code)
	}
}

// TestTasksMCPGoClient drives tasks with mcp-go's own client over stdio
// (2025-11-25): its GetTask, WaitForTask, TaskResult, CancelTask and
// ListTasks. Its CallTool cannot return a task handle (it parses every
// answer as a CallToolResult), so the task-augmented call goes through its
// transport.
func TestTasksMCPGoClient(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	var stderr buffer
	tr := transport.NewStdioWithOptions(binary, nil, w.args(), transport.WithCommandStderrWriter(&stderr))
	if err := tr.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr, client.WithProtocolVersion(mcp.ProtocolVersion20251125))
	defer c.Close()
	var mu sync.Mutex
	var statuses []string
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == mcp.MethodNotificationTasksStatus {
			mu.Lock()
			statuses = append(statuses, fmt.Sprint(n.Params.AdditionalFields["taskId"], " ", n.Params.AdditionalFields["status"]))
			mu.Unlock()
		}
	})
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	init, err := c.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{ClientInfo: mcp.Implementation{Name: "mcp-go", Version: "0"}}})
	if err != nil || init.Capabilities.Tasks == nil || init.ProtocolVersion != mcp.ProtocolVersion20251125 {
		t.Fatalf("initialize: %+v, %v", init, err)
	}
	start := func(args map[string]any) string {
		resp, err := tr.SendRequest(ctx, transport.JSONRPCRequest{JSONRPC: "2.0", ID: mcp.NewRequestId(fmt.Sprint(time.Now().UnixNano())), Method: "tools/call",
			Params: map[string]any{"name": "start_notebook", "arguments": args, "task": map[string]any{}}})
		if err != nil || resp.Error != nil {
			t.Fatalf("task-augmented call: %v %+v", err, resp)
		}
		var created mcp.CreateTaskResult
		if err := json.Unmarshal(resp.Result, &created); err != nil || created.Task.TaskId == "" {
			t.Fatalf("CreateTaskResult %s: %v", resp.Result, err)
		}
		return created.Task.TaskId
	}
	id := start(map[string]any{"path": "progress.ipynb", "parameters": map[string]any{"delay": 0.5}})
	done, err := c.WaitForTask(ctx, mcp.GetTaskRequest{Params: mcp.GetTaskParams{TaskId: id}}, time.Second)
	if err != nil || done.Status != mcp.TaskStatusCompleted || !strings.Contains(done.StatusMessage, "SUCCEEDED") || done.TTL == nil {
		t.Fatalf("WaitForTask: %+v, %v", done, err)
	}
	res, err := c.TaskResult(ctx, mcp.TaskResultRequest{Params: mcp.TaskResultParams{TaskId: id}})
	if err != nil || res.IsError {
		t.Fatalf("TaskResult: %+v, %v", res, err)
	}
	if b, _ := json.Marshal(res.StructuredContent); !bytes.Contains(b, []byte(`"ended":true`)) || !bytes.Contains(b, []byte(`"cells_done":6`)) {
		t.Errorf("task result: %s", b)
	}
	testenv.Eventually(t, 10*time.Second, "a completed status notification", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(strings.Join(statuses, ","), id+" completed")
	})

	long := start(map[string]any{"path": "slow.ipynb", "parameters": map[string]any{"steps": 3000, "delay": 0.1}})
	marker := executor.MarkerEnv + "=" + long + ".1"
	testenv.Eventually(t, time.Minute, "the long task's kernel", func() bool { return len(testenv.ProcessesWithEnv(marker)) >= 2 })
	cancelled, err := c.CancelTask(ctx, mcp.CancelTaskRequest{Params: mcp.CancelTaskParams{TaskId: long}})
	if err != nil || cancelled.Status != mcp.TaskStatusCancelled {
		t.Fatalf("CancelTask: %+v, %v", cancelled, err)
	}
	if left := testenv.ProcessesWithEnv(marker); len(left) > 0 {
		t.Errorf("processes left after CancelTask said cancelled: %v", left)
	}
	list, err := c.ListTasks(ctx, mcp.ListTasksRequest{})
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, task := range list.Tasks {
		if task.TaskId == id || task.TaskId == long {
			found++
		}
	}
	if found != 2 {
		t.Errorf("ListTasks: %d of the 2 tasks in %+v", found, list.Tasks)
	}
}

// TestTasksTypeScriptSDKv2 runs the official TypeScript SDK v2 client with
// the official Tasks extension package against the binary, over stdio and
// over streamable HTTP with 2025-11-25, and over HTTP with 2026-07-28 and the
// tasks extension: a notebook as a task polled to completion and its result
// read, another cancelled, and no process of it left.
func TestTasksTypeScriptSDKv2(t *testing.T) {
	t.Parallel()
	const dir = "testdata/sdk2"
	installNodePackages(t, dir, filepath.Join("@modelcontextprotocol", "ext-tasks"))
	w := newWorld(t)
	for _, mode := range []string{"stdio", "http", "http-2026"} {
		t.Run(mode, func(t *testing.T) {
			args := append([]string{"tasks.mjs", mode, binary}, w.args()...)
			if mode != "stdio" {
				args = []string{"tasks.mjs", mode, startHTTP(t, w, nil, "--http", "127.0.0.1:0")}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			var stdout, stderr bytes.Buffer
			node := exec.CommandContext(ctx, "node", args...)
			node.Dir = dir
			node.Stdout, node.Stderr = &stdout, &stderr
			if err := node.Run(); err != nil {
				t.Fatalf("node tasks.mjs %s: %v\nstdout:\n%s\nstderr:\n%s", mode, err, stdout.String(), stderr.String())
			}
			var got struct {
				Era          string `json:"era"`
				Kind         string `json:"kind"`
				TaskID       string `json:"taskId"`
				FinalStatus  string `json:"finalStatus"`
				OutcomeState string `json:"outcomeStatus"`
				TTL          *int64 `json:"ttl"`
				Polled       []struct {
					Status  string `json:"status"`
					Message string `json:"message"`
					Poll    int64  `json:"poll"`
				} `json:"polled"`
				Result struct {
					StructuredContent mcpserver.StartNotebookResult `json:"structuredContent"`
				} `json:"result"`
				CancelID       string   `json:"cancelId"`
				RunningMessage string   `json:"runningMessage"`
				CancelStatus   string   `json:"cancelStatus"`
				Listed         []string `json:"listed"`
				Notifications  []string `json:"notifications"`
			}
			if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
				t.Fatalf("summary %q: %v\nstderr:\n%s", stdout.String(), err, stderr.String())
			}
			t.Logf("TypeScript SDK v2 + ext-tasks over %s: %s", mode, strings.TrimSpace(stdout.String()))
			if got.Kind != "task" || !strings.HasPrefix(got.TaskID, workflows.RunIDPrefix) {
				t.Fatalf("start_notebook as a task: kind %q, task %q", got.Kind, got.TaskID)
			}
			if got.FinalStatus != "completed" || got.OutcomeState != "completed" || got.TTL == nil {
				t.Errorf("final %s, outcome %s, ttl %v", got.FinalStatus, got.OutcomeState, got.TTL)
			}
			sc := got.Result.StructuredContent
			if sc.JobID != got.TaskID || !sc.Ended || sc.Job == nil || sc.Job.Status != workflows.StatusSucceeded || sc.Job.Progress.CellsDone != 6 {
				t.Errorf("task result: %+v", sc)
			}
			cells := 0
			for _, p := range got.Polled {
				if p.Status == "working" && strings.Contains(p.Message, "RUNNING cell") && p.Poll > 0 {
					cells++
				}
			}
			if cells == 0 {
				t.Errorf("no poll saw \"RUNNING cell k/n\" with a poll interval: %+v", got.Polled)
			}
			if got.CancelStatus != "cancelled" {
				t.Errorf("after cancel: %q", got.CancelStatus)
			}
			if left := testenv.ProcessesWithEnv(executor.MarkerEnv + "=" + got.CancelID + ".1"); len(left) > 0 {
				t.Errorf("processes of the cancelled task left: %v", left)
			}
			if wantEra := map[bool]string{true: "modern", false: "legacy"}[mode == "http-2026"]; got.Era != wantEra {
				t.Errorf("protocol era %q, want %q", got.Era, wantEra)
			}
			if listed := strings.Join(got.Listed, " "); mode != "http-2026" && (!strings.Contains(listed, got.TaskID) || !strings.Contains(listed, got.CancelID)) {
				t.Errorf("listed %v", got.Listed)
			}
		})
	}
}

// installNodePackages runs `npm ci` in dir unless node_modules already
// holds pkg: the lock file pins every version.
func installNodePackages(t *testing.T, dir, pkg string) {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed for this test (Node.js 20 or later): %v", tool, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	npm := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
	npm.Dir = dir
	if out, err := npm.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
}
