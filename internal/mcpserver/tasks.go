package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"go.temporal.io/api/workflowservice/v1"

	"millrace/internal/jobs"
	"millrace/workflows"
)

// MCP Tasks: start_notebook, start_batch and rerun_job answer a client that
// asks for a task with a task handle instead of a result, and the client
// polls it (tasks/get), awaits it (tasks/result), cancels it (tasks/cancel)
// or lists tasks (tasks/list).
//
// The task id is the job or batch id, and every answer is read from the
// workflow, so a task outlives this server process: another millrace-mcp
// process serves it the same way. Nothing is kept in memory; a task is
// forgotten when Temporal's retention drops its workflow.
//
// mcp-go keeps tasks in an in-memory store that its options cannot replace
// (task ids are uuids it makes, results live in a map), so the task methods
// are answered here, in front of mcp-go, by the transports (tasks_transport.go);
// mcp-go never sees a task and its task capability stays off.
//
// Two protocol versions are served, each in its own shape:
//   - 2025-11-25 (experimental tasks, SEP-1686): a session negotiated at
//     that version that sends params.task on tools/call; tasks/get, result,
//     cancel and list; notifications/tasks/status on status changes.
//   - 2026-07-28 with the io.modelcontextprotocol/tasks extension (SEP-2663):
//     a request whose per-request capabilities name the extension gets
//     resultType "task"; tasks/get carries the result inline; tasks/cancel
//     is an empty ack; tasks/result and tasks/list do not exist there.
//
// Older versions (2025-06-18 and before) never see a task: the tools list
// no execution field for them and params.task is ignored.

// TasksExtension is the 2026-07-28 extension's identifier.
const TasksExtension = "io.modelcontextprotocol/tasks"

// taskVersion is the one pre-2026 protocol version with (experimental) tasks.
const taskVersion = mcp.ProtocolVersion20251125

// MaxTaskResultWait bounds how long tasks/result holds a request open: long
// enough for most notebooks, short enough that a stuck client does not pin
// a request forever. A task still running then gets an error saying to
// call again; the run goes on.
const MaxTaskResultWait = 30 * time.Minute

// missingCapability is the 2026-07-28 error for a request that needs a
// capability the client did not declare on it.
const missingCapability = -32021

// taskTools are the tools that may answer with a task.
var taskTools = map[string]bool{"start_notebook": true, "start_batch": true, "rerun_job": true}

// era is the task protocol a request speaks.
type era int

const (
	eraNone   era = iota // no tasks: leave the request to mcp-go
	eraLegacy            // 2025-11-25
	eraModern            // 2026-07-28 with the tasks extension
)

// taskLayer answers the task methods for one MCP server.
type taskLayer struct {
	srv    *server.MCPServer
	svc    *jobs.Service
	logger *slog.Logger
	// retention is the namespace's retention, read once: it is the time to
	// live of an ended task.
	retention func(context.Context) (time.Duration, bool)
}

func newTaskLayer(srv *server.MCPServer, t *tools) *taskLayer {
	l := &taskLayer{srv: srv, svc: t.svc, logger: t.logger}
	l.retention = onceRetention(t.svc)
	return l
}

// onceRetention reads the namespace's retention on first use and keeps it
// once read; a failed read is tried again next time.
func onceRetention(svc *jobs.Service) func(context.Context) (time.Duration, bool) {
	var mu sync.Mutex
	var got *time.Duration
	return func(ctx context.Context) (time.Duration, bool) {
		mu.Lock()
		defer mu.Unlock()
		if got != nil {
			return *got, true
		}
		resp, err := svc.Client.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: svc.Namespace})
		if err != nil || resp.GetConfig().GetWorkflowExecutionRetentionTtl() == nil {
			return 0, false
		}
		d := resp.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration()
		got = &d
		return d, true
	}
}

// advertise declares tasks to the clients that can use them: the tasks
// capability in the initialize result of a 2025-11-25 session, the
// extension in server/discover, and each task tool's execution.taskSupport
// in a 2025-11-25 tools/list. The registered tools carry no execution field,
// so mcp-go never routes a call to its own in-memory tasks.
func advertiseTasks(hooks *server.Hooks) server.ServerOption {
	hooks.AddAfterInitialize(func(_ context.Context, _ any, _ *mcp.InitializeRequest, res *mcp.InitializeResult) {
		if res.ProtocolVersion == taskVersion {
			res.Capabilities.Tasks = mcp.NewTasksCapability()
		}
	})
	hooks.AddAfterDiscover(func(_ context.Context, _ any, _ *mcp.DiscoverRequest, res *mcp.DiscoverResult) {
		if res.Capabilities.Extensions == nil {
			res.Capabilities.Extensions = map[string]any{}
		}
		res.Capabilities.Extensions[TasksExtension] = map[string]any{}
	})
	return server.WithToolFilter(func(ctx context.Context, list []mcp.Tool) []mcp.Tool {
		if server.RequestProtocolVersion(ctx) != taskVersion {
			return list
		}
		out := make([]mcp.Tool, len(list))
		for i, tool := range list {
			if taskTools[tool.Name] {
				tool.Execution = &mcp.ToolExecution{TaskSupport: mcp.TaskSupportOptional}
			}
			out[i] = tool
		}
		return out
	})
}

// rpcRequest is what the layer reads of a JSON-RPC message.
type rpcRequest struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method"`
	Params  struct {
		Name   string          `json:"name,omitempty"`
		TaskID string          `json:"taskId,omitempty"`
		Cursor string          `json:"cursor,omitempty"`
		Task   json.RawMessage `json:"task,omitempty"`
		Meta   *mcp.Meta       `json:"_meta,omitempty"`
	} `json:"params"`
}

// era says which task protocol the request speaks, given the version the
// transport negotiated for its session (legacy sessions only).
func (r *rpcRequest) era(sessionVersion string) era {
	if v := r.Params.Meta.ProtocolVersion(); v != "" {
		if !mcp.IsModernProtocol(v) {
			return eraNone
		}
		if caps := r.Params.Meta.ClientCapabilities(); caps != nil && caps.Extensions[TasksExtension] != nil {
			return eraModern
		}
		return eraNone
	}
	if sessionVersion == taskVersion {
		return eraLegacy
	}
	return eraNone
}

// route decides whether the layer answers msg. When it does, the returned
// func computes the answer (it may block: tasks/result waits for the end)
// and the transport sends it; notify sends a notification to the session
// (nil when the transport has none).
func (l *taskLayer) route(msg []byte, sessionVersion string, notify notifyFunc) (func(context.Context) []byte, bool) {
	var req rpcRequest
	if json.Unmarshal(msg, &req) != nil || len(req.ID) == 0 || req.JSONRPC != mcp.JSONRPC_VERSION {
		return nil, false
	}
	e := req.era(sessionVersion)
	answer := func(fn func(context.Context) (any, *rpcError)) func(context.Context) []byte {
		return func(ctx context.Context) []byte {
			res, rerr := fn(ctx)
			return encodeResponse(req.ID, res, rerr)
		}
	}
	switch req.Method {
	case string(mcp.MethodToolsCall):
		if !taskTools[req.Params.Name] || e == eraNone || (e == eraLegacy && isNull(req.Params.Task)) {
			return nil, false
		}
		return answer(func(ctx context.Context) (any, *rpcError) { return l.callAsTask(ctx, msg, e, notify) }), true
	case string(mcp.MethodTasksGet), string(mcp.MethodTasksCancel), string(mcp.MethodTasksResult), string(mcp.MethodTasksList), "tasks/update":
	default:
		return nil, false
	}
	if req.Params.Meta.ProtocolVersion() != "" && e == eraNone {
		// A 2026-07-28 request without the extension on it.
		return answer(func(context.Context) (any, *rpcError) {
			return nil, &rpcError{Code: missingCapability, Message: "Missing required client capability: declare the " + TasksExtension + " extension in this request's client capabilities",
				Data: map[string]any{"requiredCapabilities": map[string]any{"extensions": map[string]any{TasksExtension: map[string]any{}}}}}
		}), true
	}
	if e == eraNone {
		return nil, false // an older session: mcp-go answers that the method does not exist
	}
	id := req.Params.TaskID
	switch {
	case req.Method == string(mcp.MethodTasksGet):
		return answer(func(ctx context.Context) (any, *rpcError) { return l.get(ctx, id, e) }), true
	case req.Method == string(mcp.MethodTasksCancel):
		return answer(func(ctx context.Context) (any, *rpcError) { return l.cancel(ctx, id, e) }), true
	case e == eraModern && req.Method == "tasks/update":
		return answer(func(ctx context.Context) (any, *rpcError) {
			if _, err := l.state(ctx, id); err != nil {
				return nil, err
			}
			return nil, &rpcError{Code: mcp.INVALID_PARAMS, Message: "task " + id + " asks for no input: millrace tasks never enter input_required"}
		}), true
	case e == eraModern:
		return answer(func(context.Context) (any, *rpcError) {
			return nil, &rpcError{Code: mcp.METHOD_NOT_FOUND, Message: req.Method + " does not exist in protocol 2026-07-28: poll tasks/get, which carries the result once the task is completed"}
		}), true
	case req.Method == string(mcp.MethodTasksResult):
		return answer(func(ctx context.Context) (any, *rpcError) { return l.result(ctx, id) }), true
	case req.Method == string(mcp.MethodTasksList):
		return answer(func(ctx context.Context) (any, *rpcError) { return l.list(ctx, req.Params.Cursor) }), true
	}
	return nil, false // tasks/update in a 2025-11-25 session: no such method there
}

func isNull(raw json.RawMessage) bool { return len(raw) == 0 || string(raw) == "null" }

// callAsTask runs the tool as a synchronous call through mcp-go (the same
// argument checks, metrics and result), then answers with the task of the
// job it started. A call that started nothing (a tool error) is answered
// with its tool result as it is: the spec lets a server answer a task-capable
// request without a task.
func (l *taskLayer) callAsTask(ctx context.Context, msg []byte, e era, notify notifyFunc) (any, *rpcError) {
	plain, err := withoutTaskParams(msg)
	if err != nil {
		return nil, &rpcError{Code: mcp.INVALID_PARAMS, Message: err.Error()}
	}
	raw, err := json.Marshal(l.srv.HandleMessage(ctx, plain))
	if err != nil {
		return nil, &rpcError{Code: mcp.INTERNAL_ERROR, Message: err.Error()}
	}
	var resp struct {
		Result *struct {
			IsError    bool `json:"isError"`
			Structured struct {
				JobID   string `json:"job_id"`
				BatchID string `json:"batch_id"`
			} `json:"structuredContent"`
		} `json:"result"`
		Error *rpcError `json:"error"`
	}
	if err := json.Unmarshal(raw, &resp); err != nil {
		return nil, &rpcError{Code: mcp.INTERNAL_ERROR, Message: err.Error()}
	}
	if resp.Error != nil {
		return nil, resp.Error
	}
	if resp.Result == nil || resp.Result.IsError {
		var whole struct {
			Result json.RawMessage `json:"result"`
		}
		_ = json.Unmarshal(raw, &whole)
		return whole.Result, nil
	}
	id := resp.Result.Structured.JobID
	if id == "" {
		id = resp.Result.Structured.BatchID
	}
	st, rerr := l.state(ctx, id)
	if rerr != nil {
		return nil, rerr
	}
	if e == eraLegacy {
		if notify != nil {
			go l.watch(context.WithoutCancel(ctx), st, notify)
		}
		return map[string]any{"task": st.wire(eraLegacy, false)}, nil
	}
	out := st.wire(eraModern, false)
	out["resultType"] = "task"
	return out, nil
}

// withoutTaskParams is msg as a plain call: no params.task (mcp-go would
// otherwise be asked for its own task) and no wait_seconds (a task never
// holds the call open).
func withoutTaskParams(msg []byte) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(msg, &m); err != nil {
		return nil, err
	}
	var params map[string]json.RawMessage
	if err := json.Unmarshal(m["params"], &params); err != nil {
		return nil, fmt.Errorf("params: %w", err)
	}
	delete(params, "task")
	if raw, ok := params["arguments"]; ok && !isNull(raw) {
		var args map[string]json.RawMessage
		if err := json.Unmarshal(raw, &args); err == nil {
			delete(args, "wait_seconds")
			params["arguments"], _ = json.Marshal(args)
		}
	}
	m["params"], _ = json.Marshal(params)
	return json.Marshal(m)
}

// taskState is a task as read from its workflow.
type taskState struct {
	id       string
	status   mcp.TaskStatus
	jobState string // PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED, TIMED_OUT
	message  string
	created  time.Time
	updated  time.Time
	ttl      *int64 // milliseconds from creation; nil while the job runs
	poll     int64  // milliseconds
	result   *mcp.CallToolResult
}

func (s taskState) terminal() bool { return s.status.IsTerminal() }

// state reads task id's state: a run's from get_job_status, a batch's from
// get_batch_status. Its result is set once the job ended.
func (l *taskLayer) state(ctx context.Context, id string) (taskState, *rpcError) {
	var st taskState
	switch {
	case jobs.IsBatchID(id):
		b, err := l.svc.BatchStatus(ctx, id)
		if err != nil {
			return st, l.lookupError(id, err)
		}
		st = taskState{id: id, jobState: b.Status, message: batchLine(b), created: b.CreatedAt, updated: b.CreatedAt}
		if b.EndedAt != nil {
			st.updated = *b.EndedAt
		}
		if b.Status != workflows.StatusRunning && b.Status != workflows.StatusPending {
			res := mcp.NewToolResultStructured(b, batchText(b))
			res.IsError = b.Status != workflows.StatusSucceeded && b.Status != workflows.StatusCanceled
			st.result = res
		}
	case id != "":
		j, err := l.svc.Status(ctx, id)
		if err != nil {
			return st, l.lookupError(id, err)
		}
		st = taskState{id: id, jobState: j.Status, message: statusLine(j), created: j.CreatedAt, updated: j.CreatedAt}
		if j.StartedAt != nil {
			st.updated = *j.StartedAt
		}
		if j.EndedAt != nil {
			st.updated = *j.EndedAt
		}
		if j.Ended() {
			res := mcp.NewToolResultStructured(StartNotebookResult{JobID: j.JobID, Status: j.Status, OutputPath: j.OutputPath, Notebook: j.Notebook, Ended: true, Job: &j},
				statusText(j)+"\nget_job_output shows the executed cells, get_job_logs what the run printed")
			res.IsError = j.Status == workflows.StatusFailed || j.Status == workflows.StatusTimedOut
			st.result = res
		}
	default:
		return st, &rpcError{Code: mcp.INVALID_PARAMS, Message: "taskId is missing: pass the task id tools/call returned (a job id nb-... or a batch id batch-...)"}
	}
	st.status = taskStatus(st.jobState)
	st.poll = pollInterval(time.Since(st.created))
	if st.terminal() {
		if r, ok := l.retention(ctx); ok {
			ms := (st.updated.Sub(st.created) + r).Milliseconds()
			st.ttl = &ms
		}
	}
	return st, nil
}

func batchLine(b jobs.BatchStatus) string {
	line := fmt.Sprintf("%s %s (round %d)", b.BatchID, b.Status, b.Round)
	for _, s := range []string{workflows.StatusSucceeded, workflows.StatusRunning, workflows.StatusFailed} {
		if n := b.Counts[s]; n > 0 {
			line += fmt.Sprintf(", %d %s", n, s)
		}
	}
	return line + fmt.Sprintf(" of %d nodes", len(b.Nodes))
}

// lookupError turns a job service error into the spec's: an unknown task is
// invalid params, anything else internal.
func (l *taskLayer) lookupError(id string, err error) *rpcError {
	if jobs.IsUserError(err) {
		return &rpcError{Code: mcp.INVALID_PARAMS, Message: fmt.Sprintf("Failed to retrieve task %s: %v", id, err)}
	}
	l.logger.Warn("task lookup", "task_id", id, "error", err)
	return &rpcError{Code: mcp.INTERNAL_ERROR, Message: fmt.Sprintf("task %s: %v", id, err)}
}

// taskStatus maps a job status to a task status. A notebook that failed or
// timed out is "failed" (the 2025-11-25 shape of a tool error); in 2026-07-28
// the wire shape makes it "completed" with an isError result (see wire).
func taskStatus(jobStatus string) mcp.TaskStatus {
	switch jobStatus {
	case workflows.StatusPending, workflows.StatusRunning:
		return mcp.TaskStatusWorking
	case workflows.StatusSucceeded:
		return mcp.TaskStatusCompleted
	case workflows.StatusCanceled:
		return mcp.TaskStatusCancelled
	default:
		return mcp.TaskStatusFailed
	}
}

// pollInterval suggests polling a young task often and an old one rarely:
// notebooks that run hours need no second-by-second polls.
func pollInterval(age time.Duration) int64 {
	switch {
	case age < time.Minute:
		return 1000
	case age < 10*time.Minute:
		return 5000
	default:
		return 30000
	}
}

// wire is the task in e's shape. withResult inlines the result of an ended
// task (2026-07-28 tasks/get).
func (s taskState) wire(e era, withResult bool) map[string]any {
	t := map[string]any{
		"taskId":        s.id,
		"status":        s.status,
		"statusMessage": s.message,
		"createdAt":     s.created.UTC().Format(time.RFC3339),
		"lastUpdatedAt": s.updated.UTC().Format(time.RFC3339),
	}
	ttl := any(nil)
	if s.ttl != nil {
		ttl = *s.ttl
	}
	if e == eraLegacy {
		t["ttl"], t["pollInterval"] = ttl, s.poll
		return t
	}
	t["ttlMs"], t["pollIntervalMs"] = ttl, s.poll
	if s.status == mcp.TaskStatusFailed {
		// 2026-07-28 keeps "failed" for JSON-RPC errors; a run that failed is
		// a completed call whose result is a tool error.
		t["status"] = mcp.TaskStatusCompleted
	}
	if withResult && s.result != nil {
		res := *s.result
		res.ResultType = mcp.ResultTypeComplete // a 2026-07-28 result always says its type
		t["result"] = res
	}
	return t
}

func (l *taskLayer) get(ctx context.Context, id string, e era) (any, *rpcError) {
	st, err := l.state(ctx, id)
	if err != nil {
		return nil, err
	}
	out := st.wire(e, true)
	if e == eraModern {
		out["resultType"] = "complete"
	}
	return out, nil
}

// result waits for the task to end (2025-11-25 tasks/result) and answers
// with the tool's final result: for a run, start_notebook's answer with
// ended true and job as get_job_status gives it; for a batch,
// get_batch_status's.
func (l *taskLayer) result(ctx context.Context, id string) (any, *rpcError) {
	ctx, cancel := context.WithTimeout(ctx, MaxTaskResultWait)
	defer cancel()
	for {
		st, err := l.state(ctx, id)
		if err != nil {
			return nil, err
		}
		if st.terminal() {
			res := *st.result
			res.Meta = mcp.WithRelatedTask(id)
			return res, nil
		}
		select {
		case <-ctx.Done():
			return nil, &rpcError{Code: mcp.INTERNAL_ERROR, Message: fmt.Sprintf("task %s is still %s (%s); the run goes on: call tasks/result again or poll tasks/get", id, st.jobState, st.message)}
		case <-time.After(time.Second):
		}
	}
}

// cancel stops the task's workflow and waits (as cancel_job does) until its
// processes are gone, so the answer says cancelled.
func (l *taskLayer) cancel(ctx context.Context, id string, e era) (any, *rpcError) {
	before, rerr := l.state(ctx, id)
	if rerr != nil {
		return nil, rerr
	}
	if before.terminal() {
		if e == eraModern {
			return map[string]any{"resultType": "complete"}, nil // the cancel is cooperative: nothing left to stop
		}
		if before.status != mcp.TaskStatusCancelled {
			return nil, &rpcError{Code: mcp.INVALID_PARAMS, Message: fmt.Sprintf("Cannot cancel task %s: it already ended %s", id, before.jobState)}
		}
		return before.wire(e, false), nil
	}
	var err error
	if jobs.IsBatchID(id) {
		_, err = l.svc.CancelBatch(ctx, id, "tasks/cancel")
	} else {
		_, err = l.svc.Cancel(ctx, id, "tasks/cancel")
	}
	if err != nil && !jobs.IsUserError(err) {
		// A user error here is a race with the job ending: the state read
		// below says how it ended.
		return nil, l.lookupError(id, err)
	}
	if e == eraModern {
		return map[string]any{"resultType": "complete"}, nil
	}
	after, rerr := l.state(ctx, id)
	if rerr != nil {
		return nil, rerr
	}
	return after.wire(e, false), nil
}

// list lists the jobs of this server's roots as tasks (2025-11-25
// tasks/list), newest first as list_jobs does; the cursor is list_jobs's
// page token.
func (l *taskLayer) list(ctx context.Context, cursor string) (any, *rpcError) {
	page, err := l.svc.List(ctx, jobs.ListRequest{PageToken: cursor})
	if err != nil {
		if jobs.IsUserError(err) {
			return nil, &rpcError{Code: mcp.INVALID_PARAMS, Message: err.Error()}
		}
		return nil, &rpcError{Code: mcp.INTERNAL_ERROR, Message: err.Error()}
	}
	tasks := make([]map[string]any, 0, len(page.Jobs))
	for _, j := range page.Jobs {
		st := taskState{id: j.JobID, status: taskStatus(j.Status), jobState: j.Status, message: j.JobID + " " + j.Status, created: j.CreatedAt, updated: j.CreatedAt, poll: pollInterval(time.Since(j.CreatedAt))}
		if j.EndedAt != nil {
			st.updated = *j.EndedAt
			if r, ok := l.retention(ctx); ok {
				ms := (j.EndedAt.Sub(j.CreatedAt) + r).Milliseconds()
				st.ttl = &ms
			}
		}
		tasks = append(tasks, st.wire(eraLegacy, false))
	}
	out := map[string]any{"tasks": tasks}
	if page.NextPageToken != "" {
		out["nextCursor"] = page.NextPageToken
	}
	return out, nil
}

// notifyFunc sends a notification to the session a request came from.
type notifyFunc func(method string, params any) error

// watch sends notifications/tasks/status to a 2025-11-25 session while the
// task it created changes status, until the task ends or the session is
// gone. It only notifies: the task's state is always read from the
// workflow, so a watch lost with this process loses nothing.
func (l *taskLayer) watch(ctx context.Context, st taskState, notify notifyFunc) {
	last := st.status
	for !st.terminal() {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(st.poll) * time.Millisecond):
		}
		next, err := l.state(ctx, st.id)
		if err != nil {
			return
		}
		st = next
		if st.status == last {
			continue
		}
		last = st.status
		if notify(mcp.MethodNotificationTasksStatus, st.wire(eraLegacy, false)) != nil {
			return
		}
	}
}

// rpcError is a JSON-RPC error object.
type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

func encodeResponse(id json.RawMessage, result any, rerr *rpcError) []byte {
	resp := map[string]any{"jsonrpc": mcp.JSONRPC_VERSION, "id": id}
	if rerr != nil {
		resp["error"] = rerr
	} else {
		resp["result"] = result
	}
	b, err := json.Marshal(resp)
	if err != nil {
		b, _ = json.Marshal(map[string]any{"jsonrpc": mcp.JSONRPC_VERSION, "id": id,
			"error": rpcError{Code: mcp.INTERNAL_ERROR, Message: errors.Join(errors.New("encode task answer"), err).Error()}})
	}
	return b
}
