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

	"millrace/activities"
	"millrace/internal/jobs"
	"millrace/internal/metrics"
	"millrace/internal/metrics/metricstest"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// tserver is the package's embedded Temporal server, and binary the built
// millrace-worker.
var (
	tserver *testenv.Server
	binary  string
)

func TestMain(m *testing.M) {
	testenv.MainWithBinary(m, &tserver, &binary, "./cmd/worker", "millrace-worker")
}

var (
	workerStarted = regexp.MustCompile(`worker started`)
	metricsPort   = regexp.MustCompile(`serving Prometheus metrics" url=http://[^ ]*:(\d+)/metrics`)
)

// TestWorkerMetrics runs the binary as docker-compose does (--metrics on
// all interfaces, a token in the environment), runs a notebook on it and
// scrapes it through loopback with the token.
func TestWorkerMetrics(t *testing.T) {
	const token = "worker-metrics-token"
	cfg := tserver.Config(t)
	root := t.TempDir()
	nb := testenv.CopyFile(t, filepath.Join(testenv.RepoRoot(), "internal", "metrics", "testdata", "ok.ipynb"), root)
	args := []string{
		"--temporal-address", tserver.Address, "--namespace", cfg.Namespace, "--task-queue", cfg.TaskQueue,
		"--data-dir", cfg.DataDir, "--executor", "bundled", "--max-runs", "3",
		"--metrics", "0.0.0.0:0", "--log-level", "info",
	}
	bin, _ := testenv.StartBinary(t, binary, args, append(os.Environ(), metrics.TokenEnv+"="+token), workerStarted)
	m := metricsPort.FindStringSubmatch(bin.Stderr())
	if m == nil {
		t.Fatalf("no metrics address in the log:\n%s", bin.Stderr())
	}
	url := "http://127.0.0.1:" + m[1] + metrics.Path
	if _, err := metricstest.Scrape(url, ""); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("scrape without the token: %v, want 401", err)
	}

	svc := tserver.Service(t, cfg, root)
	ctx := context.Background()
	st, err := svc.Start(ctx, jobs.StartRequest{Path: nb})
	if err != nil {
		t.Fatal(err)
	}
	if end, err := svc.WaitEnded(ctx, st.JobID, 3*time.Minute, nil); err != nil || end.Status != workflows.StatusSucceeded {
		t.Fatalf("run ended %s %+v (%v)", end.Status, end.Error, err)
	}
	queue := map[string]string{"task_queue": cfg.TaskQueue}
	page := metricstest.Wait(t, url, token, time.Minute, "the run on the worker's page", func(p metricstest.Page) bool {
		return p.Sum(workflows.RunsEndedMetric, queue) == 1
	})
	if got := page.Sum(activities.CellsExecutedMetric, queue); got != 4 {
		t.Errorf("cells executed = %v, want the notebook's 4 code cells", got)
	}
	// --max-runs is the activity worker's slot count.
	slots := map[string]string{"task_queue": cfg.TaskQueue, "worker_type": "ActivityWorker"}
	metricstest.Wait(t, url, token, time.Minute, "3 free activity slots once the run is over", func(p metricstest.Page) bool {
		return p.Sum("temporal_worker_task_slots_available", slots) == 3
	})
}

// TestWorkerRefusesNonLoopbackMetricsWithoutToken: the binary says what to
// do and exits before it connects to anything.
func TestWorkerRefusesNonLoopbackMetricsWithoutToken(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// No server listens at this address: the refusal must come first.
	cmd := exec.CommandContext(ctx, binary, "--temporal-address", "127.0.0.1:1", "--data-dir", t.TempDir(), "--metrics", "0.0.0.0:9464")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, metrics.TokenEnv+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("exit %v, want 2: %s", err, out)
	}
	if !strings.Contains(string(out), metrics.TokenEnv) || !strings.Contains(string(out), "not a loopback address") {
		t.Errorf("the refusal does not say what to do: %s", out)
	}
}
