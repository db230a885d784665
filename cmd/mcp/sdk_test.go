package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"millrace/workflows"
)

// sdkDir holds the script driving the official MCP TypeScript SDK client,
// its package.json and lock file; `npm ci` fills node_modules on first use.
const sdkDir = "testdata/sdk"

// TestTypeScriptSDKClient runs the binary under a client this project did
// not write: the official TypeScript SDK's, over stdio.
func TestTypeScriptSDKClient(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed for this test (Node.js 20 or later): %v", tool, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if _, err := os.Stat(filepath.Join(sdkDir, "node_modules", "@modelcontextprotocol", "sdk", "package.json")); err != nil {
		npm := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
		npm.Dir = sdkDir
		if out, err := npm.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in %s: %v\n%s", sdkDir, err, out)
		}
	}
	w := newWorld(t)
	var stdout, stderr bytes.Buffer
	node := exec.CommandContext(ctx, "node", append([]string{"client.mjs", w.root, binary}, w.args()...)...)
	node.Dir = sdkDir
	node.Stdout, node.Stderr = &stdout, &stderr
	if err := node.Run(); err != nil {
		t.Fatalf("node client.mjs: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	var got struct {
		Server                map[string]any            `json:"server"`
		Tools                 []string                  `json:"tools"`
		Annotations           map[string]map[string]any `json:"annotations"`
		Parameters            []string                  `json:"parameters"`
		JobID                 string                    `json:"jobId"`
		Status                string                    `json:"status"`
		WaitedStatus          string                    `json:"waitedStatus"`
		ProgressNotifications int                       `json:"progressNotifications"`
		LogLines              []string                  `json:"logLines"`
		LogsDone              bool                      `json:"logsDone"`
		Links                 []string                  `json:"links"`
		ImageHeader           string                    `json:"imageHeader"`
		ErrorIsError          bool                      `json:"errorIsError"`
		ErrorText             string                    `json:"errorText"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("summary %q: %v\nstderr:\n%s", stdout.String(), err, stderr.String())
	}
	t.Logf("TypeScript SDK client: %s", strings.TrimSpace(stdout.String()))
	if strings.Join(got.Tools, " ") != "cancel_job get_batch_status get_job_logs get_job_output get_job_status inspect_notebook list_jobs rerun_job start_batch start_notebook" {
		t.Errorf("tools %v", got.Tools)
	}
	if got.Server["name"] != "millrace" || got.Annotations["cancel_job"]["destructiveHint"] != true || got.Annotations["get_job_status"]["readOnlyHint"] != true {
		t.Errorf("server %v, annotations %v", got.Server, got.Annotations)
	}
	if strings.Join(got.Parameters, ",") != "msg,repeat" {
		t.Errorf("inspected parameters %v", got.Parameters)
	}
	if got.Status != workflows.StatusSucceeded || !strings.HasPrefix(got.JobID, workflows.RunIDPrefix) {
		t.Fatalf("run %s ended %s", got.JobID, got.Status)
	}
	if got.WaitedStatus != workflows.StatusSucceeded || got.ProgressNotifications < 2 {
		t.Errorf("start_notebook with wait_seconds: %s with %d progress notifications, want SUCCEEDED with one per cell or so", got.WaitedStatus, got.ProgressNotifications)
	}
	if !got.LogsDone || len(got.LogLines) == 0 || !strings.Contains(strings.Join(got.LogLines, "\n"), "from node") {
		t.Errorf("logs done=%v: %v", got.LogsDone, got.LogLines)
	}
	if strings.Join(got.Links, ",") != "text/plain,image/png,text/html" || got.ImageHeader != "PNG" {
		t.Errorf("resource links %v, image header %q", got.Links, got.ImageHeader)
	}
	if !got.ErrorIsError || !strings.Contains(got.ErrorText, "no job") {
		t.Errorf("unknown job: isError %v, %q", got.ErrorIsError, got.ErrorText)
	}
}
