package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"millrace/internal/devmode"
	"millrace/internal/metrics/metricstest"
	"millrace/internal/notebook"
	"millrace/internal/testenv"
	"millrace/workflows"
)

func TestInspectShowsKernelAndParameters(t *testing.T) {
	root := t.TempDir()
	nb := testenv.CopyFile(t, trainNotebook, root)
	e := &env{cfg: server.Config(t), root: root}

	r := e.millrace(t, "inspect", nb, "--json")
	wantCode(t, r, 0)
	var in notebook.Inspection
	if err := json.Unmarshal([]byte(r.stdout), &in); err != nil {
		t.Fatalf("inspect --json: %v\n%s", err, r.stdout)
	}
	var names []string
	for _, p := range in.Parameters {
		names = append(names, p.Name+"="+p.Default)
	}
	if got, want := strings.Join(names, " "), `epochs=5 lr=0.05 seed=42 out_dir="."`; got != want || in.KernelName != "python3" || in.ParametersCell != 1 {
		t.Errorf("inspect --json: parameters %s, want %s; %+v", got, want, in)
	}

	r = e.millrace(t, "inspect", nb)
	wantCode(t, r, 0)
	for _, want := range []string{"python3 (python)", "in cell 1:", "epochs", "0.05"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("inspect lacks %q: %s", want, r)
		}
	}
}

func TestVersionAndHelp(t *testing.T) {
	var none *env
	r := none.millrace(t, "version", "--json")
	wantCode(t, r, 0)
	var v versionInfo
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.Version == "" || !strings.HasPrefix(v.Go, "go") {
		t.Errorf("version --json: %v %s", err, r)
	}
	r = none.millrace(t, "version")
	wantCode(t, r, 0)
	if !strings.HasPrefix(r.stdout, "millrace ") {
		t.Errorf("version: %s", r)
	}

	r = none.millrace(t, "help")
	wantCode(t, r, 0)
	for _, want := range []string{"run NOTEBOOK", "jobs", "status ID", "logs ID", "cancel ID", "inspect NOTEBOOK", "output ID", "dev status", "dev stop", "version", "NO_COLOR", "Exit status"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("help lacks %q", want)
		}
	}
	for _, args := range [][]string{{"help", "run"}, {"run", "-h"}, {"run", "--help"}} {
		r = none.millrace(t, args...)
		wantCode(t, r, 0)
		for _, want := range []string{"Usage: millrace run NOTEBOOK", "-p name=value", "--on-interrupt", "--detach", "--temporal-address"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("%v lacks %q: %s", args, want, r)
			}
		}
	}
	r = none.millrace(t, "help", "dev", "stop")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "Usage: millrace dev stop") {
		t.Errorf("help dev stop: %s", r)
	}
	r = none.millrace(t, "help", "nosuch")
	wantCode(t, r, exitUsage)
}

// TestDevRunsTheServiceInTheForeground runs `millrace dev` in-process on a
// fresh data dir, runs a notebook through it in dev mode (no Temporal
// address), and stops it as Ctrl-C does.
func TestDevRunsTheServiceInTheForeground(t *testing.T) {
	bin, err := testenv.ServerBin()
	if err != nil {
		t.Fatal(err)
	}
	dataDir, root := t.TempDir(), t.TempDir()
	nb := testenv.CopyFile(t, typesNotebook, root)
	local := []string{"--data-dir", dataDir, "--roots", root, "--task-queue", "cli-dev"}
	var none *env

	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	var out, errs syncBuffer
	done := make(chan result, 1)
	go func() {
		done <- none.run(ctx, &out, &errs, append([]string{"dev", "--temporal-bin", bin, "--executor", "bundled", "--log-level", "error", "--mcp", "127.0.0.1:0", "--metrics", "127.0.0.1:0"}, local...)...)
	}()
	waitFor(t, 2*time.Minute, out.String, "Ctrl-C stops it")

	// --mcp serves the MCP tools over HTTP beside the service.
	waitFor(t, time.Minute, errs.String, "/mcp")
	url := regexp.MustCompile(`http://127\.0\.0\.1:\d+/mcp`).FindString(errs.String())
	mc, err := client.NewStreamableHttpClient(url)
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "dev-test", Version: "1"}
	if _, err := mc.Initialize(context.Background(), init); err != nil {
		t.Fatalf("MCP over --mcp at %q: %v", url, err)
	}
	ireq := mcp.CallToolRequest{}
	ireq.Params.Name, ireq.Params.Arguments = "inspect_notebook", map[string]any{"path": nb}
	if res, err := mc.CallTool(context.Background(), ireq); err != nil || res.IsError {
		t.Fatalf("inspect_notebook over --mcp: %v %+v", err, res)
	}

	r := none.millrace(t, append([]string{"dev", "status", "--json"}, local...)...)
	wantCode(t, r, 0)
	var st devStatus
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || !st.Running || st.State == nil || st.Address == "" || st.TaskQueue != "cli-dev" {
		t.Fatalf("dev status --json: %v %s", err, r)
	}
	r = none.millrace(t, append([]string{"dev", "status"}, local...)...)
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "dev service running") || !strings.Contains(r.stdout, st.Address) || !strings.Contains(r.stdout, "python     "+st.Python.String()) {
		t.Errorf("dev status: %s", r)
	}
	// The Web UI: dev status and millrace ui print one address, with the
	// token, and dev printed it when it was ready.
	if st.UI == "" || !strings.HasPrefix(st.UIURL, st.UI+"/?token=") || !strings.Contains(r.stdout, "ui         "+st.UIURL) {
		t.Errorf("dev status shows no UI address (json %q %q): %s", st.UI, st.UIURL, r)
	}
	if !strings.Contains(out.String(), "Temporal UI at "+st.UIURL) {
		t.Errorf("dev printed no UI address %s: %s", st.UIURL, out.String())
	}
	if r = none.millrace(t, append([]string{"ui", "--print"}, local...)...); strings.TrimSpace(r.stdout) != st.UIURL {
		t.Errorf("ui --print: %s, want %s", r, st.UIURL)
	}

	r = none.millrace(t, append([]string{"run", nb, "-p", "i=3"}, local...)...)
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "TYPE i int 3") {
		t.Errorf("run in dev mode: %s", r)
	}

	// --metrics serves one page for the service's worker and its MCP tools.
	murl := regexp.MustCompile(`metrics at (http://127\.0\.0\.1:\d+/metrics)`).FindStringSubmatch(out.String())
	if murl == nil {
		t.Fatalf("dev printed no metrics address: %s", out.String())
	}
	metricstest.Wait(t, murl[1], "", time.Minute, "the dev run and MCP call on the metrics page", func(p metricstest.Page) bool {
		return p.Sum("millrace_runs_ended_total", map[string]string{"status": "SUCCEEDED", "task_queue": "cli-dev"}) == 1 &&
			p.Sum("millrace_mcp_tool_calls_total", map[string]string{"tool": "inspect_notebook", "outcome": "ok"}) == 1
	})

	cancel(interrupted{syscall.SIGINT})
	select {
	case r = <-done:
	case <-time.After(time.Minute):
		t.Fatalf("dev did not stop: %s", errs.String())
	}
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "stopped") {
		t.Errorf("dev: %s", r)
	}
	r = none.millrace(t, append([]string{"dev", "status", "--json"}, local...)...)
	wantCode(t, r, exitFailed)
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.Running {
		t.Errorf("dev status after stop: %v %s", err, r)
	}
	r = none.millrace(t, append([]string{"dev", "stop"}, local...)...)
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "no dev service is running") {
		t.Errorf("dev stop with none running: %s", r)
	}
}

// TestDevModeStartsTheBackgroundServiceAndDevStopStopsIt runs the built
// binary with no Temporal address: the first command starts the dev
// service in the background (the binary re-executes itself), and dev stop
// stops it.
func TestDevModeStartsTheBackgroundServiceAndDevStopStopsIt(t *testing.T) {
	bin := builtBinary(t)
	serverBin, err := testenv.ServerBin()
	if err != nil {
		t.Fatal(err)
	}
	dataDir, root := t.TempDir(), t.TempDir()
	t.Cleanup(func() { _, _ = devmode.Stop(dataDir, 30*time.Second) })
	millrace := func(args ...string) result {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append(args, "--data-dir", dataDir, "--roots", root, "--temporal-bin", serverBin)...)
		cmd.Env = withoutEnv("TEMPORAL_ADDRESS", "MILLRACE_DATA_DIR")
		var out, errs strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errs
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return result{stdout: out.String(), stderr: errs.String(), code: code}
	}

	r := millrace("dev", "status")
	wantCode(t, r, exitFailed)
	// Bad input is refused before anything starts the service.
	nb := testenv.CopyFile(t, typesNotebook, root)
	r = millrace("run", nb, "-p", "nope=1")
	wantCode(t, r, exitUsage)
	r = millrace("dev", "status")
	wantCode(t, r, exitFailed)

	r = millrace("jobs", "--status", workflows.StatusRunning)
	wantCode(t, r, 0)
	if !strings.Contains(r.stderr, "starting the local dev service") || !strings.Contains(r.stdout, "no jobs match") {
		t.Errorf("jobs in dev mode: %s", r)
	}
	r = millrace("dev", "status", "--json")
	wantCode(t, r, 0)
	var st devStatus
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || !st.Running || st.PID == 0 {
		t.Fatalf("dev status --json: %v %s", err, r)
	}
	r = millrace("dev", "stop")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "stopped the dev service") {
		t.Errorf("dev stop: %s", r)
	}
	r = millrace("dev", "status")
	wantCode(t, r, exitFailed)
	if !strings.Contains(r.stdout, "no dev service is running") {
		t.Errorf("dev status after stop: %s", r)
	}
}
