package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
)

// TestStdio runs the built binary as an MCP client would: a subprocess
// spoken to over stdin and stdout.
func TestStdio(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	var stderr buffer
	var cmd *exec.Cmd
	tr := transport.NewStdioWithOptions(binary, nil, w.args(),
		transport.WithCommandStderrWriter(&stderr),
		transport.WithCommandFunc(func(ctx context.Context, command string, env, args []string) (*exec.Cmd, error) {
			cmd = exec.CommandContext(ctx, command, args...)
			cmd.Env = env
			return cmd, nil
		}))
	if err := tr.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr)
	defer func() {
		if t.Failed() {
			t.Logf("millrace-mcp stderr:\n%s", stderr.String())
		}
	}()
	var progress progressLog
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	progress.attach(t, c)
	initialize(t, c)
	exercise(t, c, &progress)

	// Closing stdin ends the server, cleanly.
	began := time.Now()
	if err := c.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if cmd.ProcessState == nil || !cmd.ProcessState.Success() {
		t.Fatalf("the server did not exit cleanly when stdin closed: %v", cmd.ProcessState)
	}
	t.Logf("exit after stdin closed: %s", time.Since(began).Round(time.Millisecond))
}

// TestStdioStdoutCarriesOnlyProtocol: with debug logging on, stdout holds
// nothing but JSON-RPC messages; logs go to stderr.
func TestStdioStdoutCarriesOnlyProtocol(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	cmd := exec.Command(binary, append(w.args(), "--log-level", "debug")...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, req := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`,
		`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"get_job_status","arguments":{"job_id":"nb-00000000-0000-0000-0000-000000000000"}}}`,
		`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"no_such_tool","arguments":{}}}`,
	} {
		if _, err := io.WriteString(stdin, req+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	ids := map[float64]bool{}
	lines := bufio.NewScanner(stdout)
	lines.Buffer(nil, 1<<20)
	for len(ids) < 4 && lines.Scan() {
		line := lines.Text()
		var msg struct {
			JSONRPC string          `json:"jsonrpc"`
			ID      float64         `json:"id"`
			Result  json.RawMessage `json:"result"`
			Error   json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal([]byte(line), &msg); err != nil || msg.JSONRPC != "2.0" {
			t.Fatalf("stdout line is not JSON-RPC: %q", line)
		}
		ids[msg.ID] = true
		if msg.ID == 3 && !strings.Contains(string(msg.Result), `"isError":true`) {
			t.Errorf("unknown job: %s, want a tool error", line)
		}
		if msg.ID == 4 && msg.Error == nil {
			t.Errorf("unknown tool: %s, want a JSON-RPC error", line)
		}
	}
	stdin.Close()
	if rest, _ := io.ReadAll(stdout); len(bytes.TrimSpace(rest)) > 0 {
		t.Errorf("stdout after the answers: %q", rest)
	}
	if err := cmd.Wait(); err != nil || len(ids) != 4 {
		t.Fatalf("exit %v, answers to %v (want 1 to 4)\nstderr:\n%s", err, ids, stderr.String())
	}
}
