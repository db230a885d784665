package devmode_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"millrace/internal/testenv"
	"millrace/workflows"
)

// TestRunOutlivesItsMCPClient is dev mode as an assistant uses it: an MCP
// client starts millrace-mcp over stdio with no Temporal configured, starts
// a run, and goes away mid-run. The run must go on to SUCCEEDED on its first
// attempt: it lives in the background dev service, not in the MCP process.
func TestRunOutlivesItsMCPClient(t *testing.T) {
	dataDir := t.TempDir()
	stopService(t, dataDir)
	dir := t.TempDir()
	nb := testenv.CopyFile(t, filepath.Join(testenv.RepoRoot(), "activities", "testdata", "slow.ipynb"), dir)
	mcpBin, err := testenv.BuildBinary(t.TempDir(), "./cmd/mcp", "millrace-mcp")
	if err != nil {
		t.Fatal(err)
	}
	serverBin, _ := testenv.ServerBin()
	env := append(os.Environ(), "MILLRACE_TEMPORAL_BIN="+serverBin, "TEMPORAL_ADDRESS=")
	var cmd *exec.Cmd
	tr := transport.NewStdioWithOptions(mcpBin, env, []string{"--data-dir", dataDir, "--roots", dir, "--log-level", "warn"},
		transport.WithCommandFunc(func(ctx context.Context, command string, env, args []string) (*exec.Cmd, error) {
			cmd = exec.CommandContext(ctx, command, args...)
			cmd.Env = env
			cmd.Stderr = os.Stderr
			return cmd, nil
		}))
	c := client.NewClient(tr)
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "devmode-test", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}
	call := func(name string, args map[string]any) map[string]any {
		t.Helper()
		req := mcp.CallToolRequest{}
		req.Params.Name, req.Params.Arguments = name, args
		res, err := c.CallTool(ctx, req)
		if err != nil || res.IsError {
			t.Fatalf("%s: %v %+v", name, err, res)
		}
		b, _ := json.Marshal(res.StructuredContent)
		var out map[string]any
		json.Unmarshal(b, &out)
		return out
	}
	started := call("start_notebook", map[string]any{"path": nb, "parameters": map[string]any{"steps": 25, "delay": 0.2}})
	jobID, _ := started["job_id"].(string)
	if jobID == "" {
		t.Fatalf("start_notebook returned %v", started)
	}
	testenv.Eventually(t, time.Minute, "the run to execute its cells", func() bool {
		st := call("get_job_status", map[string]any{"job_id": jobID})
		p, _ := st["progress"].(map[string]any)
		done, _ := p["cells_done"].(float64)
		return st["status"] == workflows.StatusRunning && done >= 1
	})

	// The client goes away: it closes the server's stdin, and the server
	// exits.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if cmd.ProcessState == nil {
		t.Fatal("millrace-mcp still running after its client closed")
	}

	st := waitService(t, dataDir)
	end, err := service(t, st, dir).WaitEnded(ctx, jobID, 2*time.Minute, nil)
	if err != nil || end.Status != workflows.StatusSucceeded || end.Attempt != 1 {
		t.Fatalf("after the MCP process exited: %s on attempt %d (%v %+v), want SUCCEEDED on attempt 1", end.Status, end.Attempt, err, end.Error)
	}
}
