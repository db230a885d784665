package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"millrace/internal/executor"
	"millrace/internal/jobs"
	"millrace/internal/runopts"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// TestWorkerHeartbeatingEvery3s runs the binary with --heartbeat-every 3s:
// a run reports its progress while it runs and succeeds, and a quiet run
// (a cell that sleeps) is canceled with no process left, the cancel
// reaching it within a look.
func TestWorkerHeartbeatingEvery3s(t *testing.T) {
	cfg := tserver.Config(t)
	root := t.TempDir()
	slow := testenv.CopyFile(t, filepath.Join(testenv.RepoRoot(), "activities", "testdata", "slow.ipynb"), root)
	sleeps := testenv.CopyFile(t, testenv.Testdata("sleeps.ipynb"), root)
	args := []string{
		"--temporal-address", tserver.Address, "--namespace", cfg.Namespace, "--task-queue", cfg.TaskQueue,
		"--data-dir", cfg.DataDir, "--executor", "bundled", "--heartbeat-every", "3s", "--grace", "2s", "--log-level", "info",
	}
	bin, _ := testenv.StartBinary(t, binary, args, os.Environ(), workerStarted)
	if !strings.Contains(bin.Stderr(), "heartbeat_every=3s") {
		t.Errorf("the worker does not log its interval:\n%s", bin.Stderr())
	}
	svc := tserver.Service(t, cfg, root)
	ctx := context.Background()

	// 12 s of steps, each printing: progress arrives while it runs.
	run, err := svc.Start(ctx, jobs.StartRequest{Path: slow, Options: runopts.Options{Parameters: map[string]any{"steps": 48.0, "delay": 0.25}}})
	if err != nil {
		t.Fatal(err)
	}
	var seen []jobs.Progress
	end, err := svc.WaitEnded(ctx, run.JobID, 3*time.Minute, func(st jobs.Status) {
		if !st.Ended() {
			seen = append(seen, st.Progress)
		}
	})
	if err != nil || end.Status != workflows.StatusSucceeded {
		t.Fatalf("run ended %s %+v (%v)", end.Status, end.Error, err)
	}
	if end.Attempt != 1 {
		t.Errorf("the run took %d attempts, want 1: a 3 s interval is within the 15 s heartbeat timeout", end.Attempt)
	}
	inLoop := false
	for _, p := range seen {
		if strings.HasPrefix(p.CurrentSource, "import time") && p.CellsTotal > 0 && p.CellsDone < p.CellsTotal {
			inLoop = true
		}
	}
	if !inLoop {
		t.Errorf("no progress showed the run in its 12 s cell: %+v", seen)
	}

	// A quiet run: the cancel reaches it through a keep-alive.
	quiet, err := svc.Start(ctx, jobs.StartRequest{Path: sleeps})
	if err != nil {
		t.Fatal(err)
	}
	marker := executor.MarkerEnv + "=" + quiet.JobID + ".1"
	testenv.Eventually(t, time.Minute, "the quiet run's runner and kernel", func() bool { return len(testenv.ProcessesWithEnv(marker)) >= 2 })
	testenv.Eventually(t, time.Minute, "the quiet run in its cell", func() bool {
		st, err := svc.Status(ctx, quiet.JobID)
		return err == nil && st.Progress.CurrentCell > 0
	})
	began := time.Now()
	st, err := svc.Cancel(ctx, quiet.JobID, "test")
	if err != nil || st.Status != workflows.StatusCanceled {
		t.Fatalf("after cancel: %s (%v)", st.Status, err)
	}
	// A look (3 s), the stop (grace 2 s), the workflow's close: well
	// within 10 s.
	if took := time.Since(began); took > 10*time.Second {
		t.Errorf("cancel to CANCELED took %s, want within a 3 s look, the 2 s grace and the close", took)
	}
	testenv.Eventually(t, 15*time.Second, "no process of the canceled run", func() bool { return len(testenv.ProcessesWithEnv(marker)) == 0 })
}

// TestWorkerRefusesAHeartbeatIntervalTheTimeoutCannotCarry: the binary
// names the interval and the heartbeat timeout and exits before it
// connects to anything.
func TestWorkerRefusesAHeartbeatIntervalTheTimeoutCannotCarry(t *testing.T) {
	for value, want := range map[string]*regexp.Regexp{
		"30s": regexp.MustCompile(`--heartbeat-every 30s: must be less than half the heartbeat timeout runs get \(15s\).*less than 7\.5s`),
		"0":   regexp.MustCompile(`--heartbeat-every 0s: must be more than 0`),
	} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		// No server listens at this address: the refusal must come first.
		out, err := exec.CommandContext(ctx, binary, "--temporal-address", "127.0.0.1:1", "--data-dir", t.TempDir(), "--heartbeat-every", value).CombinedOutput()
		cancel()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
			t.Errorf("--heartbeat-every %s: exit %v, want 2: %s", value, err, out)
			continue
		}
		if !want.Match(out) {
			t.Errorf("--heartbeat-every %s: %s, want it to match %s", value, out, want)
		}
	}
}
