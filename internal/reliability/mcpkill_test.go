package reliability_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"millrace/internal/executor"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// mcpProcess is the built millrace-mcp serving HTTP on the suite's server.
type mcpProcess struct {
	cmd *exec.Cmd
	url string
}

func startMCP(t *testing.T, bin string, args []string) *mcpProcess {
	t.Helper()
	cmd := exec.Command(bin, args...)
	errs, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(errs)
		for sc.Scan() {
			if u := regexp.MustCompile(`http://127\.0\.0\.1:\d+/mcp`).FindString(sc.Text()); u != "" {
				urls <- u
			}
		}
	}()
	select {
	case u := <-urls:
		return &mcpProcess{cmd: cmd, url: u}
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		t.Fatal("millrace-mcp did not start serving")
	}
	return nil
}

func mcpCall(t *testing.T, url, token, tool string, args map[string]any) map[string]any {
	t.Helper()
	c, err := client.NewStreamableHttpClient(url, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "reliability", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatalf("initialize %s: %v", url, err)
	}
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = tool, args
	res, err := c.CallTool(ctx, req)
	if err != nil || res.IsError {
		t.Fatalf("%s: %v %+v", tool, err, res)
	}
	b, _ := json.Marshal(res.StructuredContent)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

// TestMCPServerKilledMidRun kills the MCP server with SIGKILL while a run it
// started executes, starts it again, and expects the run unaffected and its
// status and logs still served.
func TestMCPServerKilledMidRun(t *testing.T) {
	const name = "SIGKILL and restart of the MCP server mid-run"
	longOnly(t, name)
	sc := begin(t, name)
	root := t.TempDir()
	nb := testenv.CopyFile(t, "testdata/slow.ipynb", root)
	cfg, _ := setup(t, root)
	bin, err := testenv.BuildBinary(t.TempDir(), "./cmd/mcp", "millrace-mcp")
	if err != nil {
		t.Fatal(err)
	}
	const token = "reliability-token"
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--http", "127.0.0.1:0", "--token-file", tokenFile, "--temporal-address", server.Address,
		"--task-queue", cfg.TaskQueue, "--data-dir", cfg.DataDir, "--roots", root, "--log-level", "error"}
	first := startMCP(t, bin, args)
	started := mcpCall(t, first.url, token, "start_notebook", map[string]any{"path": nb, "parameters": slowParams(30, 0.2)})
	jobID, _ := started["job_id"].(string)
	sc.run()
	testenv.Eventually(t, time.Minute, "the run to execute", func() bool {
		st := mcpCall(t, first.url, token, "get_job_status", map[string]any{"job_id": jobID})
		return st["status"] == workflows.StatusRunning
	})
	_ = first.cmd.Process.Signal(syscall.SIGKILL)
	_ = first.cmd.Wait()

	second := startMCP(t, bin, args)
	defer func() { _ = second.cmd.Process.Signal(os.Interrupt); _ = second.cmd.Wait() }()
	var st map[string]any
	testenv.Eventually(t, 3*time.Minute, "the run to end", func() bool {
		st = mcpCall(t, second.url, token, "get_job_status", map[string]any{"job_id": jobID})
		return st["status"] != workflows.StatusRunning && st["status"] != workflows.StatusPending
	})
	logs := mcpCall(t, second.url, token, "get_job_logs", map[string]any{"job_id": jobID, "tail": 1})
	lines, _ := logs["lines"].([]any)
	attempt, _ := st["attempt"].(float64)
	if st["status"] == workflows.StatusSucceeded && attempt == 1 && len(lines) == 1 {
		sc.ok()
	} else {
		t.Errorf("after the MCP restart: status %v attempt %v, %d log lines", st["status"], st["attempt"], len(lines))
	}
	// start_notebook takes no environment: find the run's processes by the
	// marker the worker gives every attempt.
	sc.orphans(leftover(executor.MarkerEnv + "=" + jobID + ".1"))
	sc.note("run unaffected: %v on attempt %v; status and logs served by the restarted server", st["status"], st["attempt"])
}
