package mcpserver

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// TestTaskRoute: which messages the task layer answers in front of mcp-go,
// by protocol version and capability, and the errors it answers without
// reading any job. The whole flow, on real runs, is in cmd/mcp's tests.
func TestTaskRoute(t *testing.T) {
	l := &taskLayer{}
	modern := func(ext bool) string {
		caps := `{}`
		if ext {
			caps = `{"extensions":{"` + TasksExtension + `":{}}}`
		}
		return `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":` + caps + `}`
	}
	start := `"name":"start_notebook","arguments":{"path":"a.ipynb","wait_seconds":5}`
	for _, c := range []struct {
		what, session, msg string
		owned              bool
		code               float64 // the error answered without a job lookup, if any
	}{
		{"2025-11-25 call with params.task", "2025-11-25", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{` + start + `,"task":{"ttl":1000}}}`, true, 0},
		{"2025-11-25 call without params.task", "2025-11-25", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{` + start + `}}`, false, 0},
		{"2025-11-25 call with a null task", "2025-11-25", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{` + start + `,"task":null}}`, false, 0},
		{"a tool that is not a task tool", "2025-11-25", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_job_status","arguments":{},"task":{}}}`, false, 0},
		{"2025-06-18 call with params.task", "2025-06-18", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{` + start + `,"task":{}}}`, false, 0},
		{"2025-06-18 tasks/get", "2025-06-18", `{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"taskId":"nb-x"}}`, false, 0},
		{"2025-11-25 tasks/get", "2025-11-25", `{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"taskId":"nb-x"}}`, true, 0},
		{"2025-11-25 tasks/update", "2025-11-25", `{"jsonrpc":"2.0","id":1,"method":"tasks/update","params":{"taskId":"nb-x"}}`, false, 0},
		{"a notification", "2025-11-25", `{"jsonrpc":"2.0","method":"tasks/get","params":{"taskId":"nb-x"}}`, false, 0},
		{"2026-07-28 call with the extension", "", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{` + start + `,` + modern(true) + `}}`, true, 0},
		{"2026-07-28 call without it", "", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{` + start + `,` + modern(false) + `}}`, false, 0},
		{"2026-07-28 tasks/get without it", "", `{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"taskId":"nb-x",` + modern(false) + `}}`, true, missingCapability},
		{"2026-07-28 tasks/result", "", `{"jsonrpc":"2.0","id":1,"method":"tasks/result","params":{"taskId":"nb-x",` + modern(true) + `}}`, true, -32601},
		{"2026-07-28 tasks/list", "", `{"jsonrpc":"2.0","id":1,"method":"tasks/list","params":{` + modern(true) + `}}`, true, -32601},
		{"2026-07-28 tasks/get without a task id", "", `{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{` + modern(true) + `}}`, true, -32602},
	} {
		answer, owned := l.route([]byte(c.msg), c.session, nil)
		if owned != c.owned {
			t.Errorf("%s: owned %v, want %v", c.what, owned, c.owned)
			continue
		}
		if c.code == 0 {
			continue
		}
		var resp struct {
			Error *rpcError `json:"error"`
		}
		if err := json.Unmarshal(answer(context.Background()), &resp); err != nil || resp.Error == nil || float64(resp.Error.Code) != c.code {
			t.Errorf("%s: answer %+v (%v), want error %v", c.what, resp.Error, err, c.code)
		}
	}
}

// TestWithoutTaskParams: the call mcp-go runs for a task is the plain call,
// without params.task and wait_seconds, everything else kept.
func TestWithoutTaskParams(t *testing.T) {
	got, err := withoutTaskParams([]byte(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"start_notebook","arguments":{"path":"a.ipynb","wait_seconds":50,"parameters":{"n":1}},"task":{"ttl":5},"_meta":{"k":"v"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	s := string(got)
	for _, want := range []string{`"id":7`, `"path":"a.ipynb"`, `"parameters":{"n":1}`, `"_meta":{"k":"v"}`} {
		if !strings.Contains(s, want) {
			t.Errorf("%s lacks %s", s, want)
		}
	}
	for _, gone := range []string{`"task"`, `wait_seconds`} {
		if strings.Contains(s, gone) {
			t.Errorf("%s still has %s", s, gone)
		}
	}
	if _, err := withoutTaskParams([]byte(`{"params":[1]}`)); err == nil {
		t.Error("params that are not an object: no error")
	}
}
