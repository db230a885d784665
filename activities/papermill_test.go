package activities_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/client"

	"millrace/internal/executor"
	"millrace/internal/executor/runner"
	"millrace/internal/failure"
	"millrace/internal/jobs"
	"millrace/internal/runenv"
	"millrace/internal/runopts"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// TestPapermillExecutorPath runs notebooks through the papermill code path:
// papermill's command line, no result file, the outcome read from the exit
// status and the output notebook. papermill itself cannot be installed on
// the test machine, so testdata/papermill stands in for it (it runs the
// bundled runner, which takes papermill's flags).
func TestPapermillExecutorPath(t *testing.T) {
	script := filepath.Join(t.TempDir(), "runner.py")
	if err := os.WriteFile(script, runner.Script, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PAPERMILL_SHIM_RUNNER", script)
	shim, err := filepath.Abs("testdata/papermill")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range []string{testenv.Testdata("greeting.ipynb"), testenv.Testdata("fails_later.ipynb"), "testdata/dies_once.ipynb"} {
		testenv.CopyFile(t, f, dir)
	}
	cfg := server.Config(t)
	cfg.Executor, cfg.Papermill = executor.ChoosePapermill, shim
	// Kernels and executors get an allow-listed environment: the operator
	// passes the shim's variable.
	cfg.PassEnv = runenv.Patterns{"PAPERMILL_SHIM_RUNNER"}
	w := server.StartWorker(t, cfg)
	if w.Executor.Name != executor.Papermill {
		t.Fatalf("executor %s, want papermill", w.Executor.Name)
	}
	svc := server.Service(t, cfg, dir)

	ok := start(t, svc, jobs.StartRequest{Path: "greeting.ipynb", Options: runopts.Options{Parameters: map[string]any{"greeting": "Hello"}, Checkpoint: workflows.CheckpointEveryCell}})
	bad := start(t, svc, jobs.StartRequest{Path: "fails_later.ipynb"})
	dies := start(t, svc, jobs.StartRequest{Path: "dies_once.ipynb"})

	st := waitEnd(t, svc, ok.JobID, 2*time.Minute)
	if st.Status != workflows.StatusSucceeded || st.Executor != executor.Papermill || st.Kernel != "python3" {
		t.Fatalf("got %s executor %q kernel %q (%+v), want SUCCEEDED by papermill on python3", st.Status, st.Executor, st.Kernel, st.Error)
	}
	if !strings.Contains(logText(t, svc, ok.JobID), "Hello\n") {
		t.Fatal("cell output missing from the logs")
	}
	// papermill takes no checkpoints: a run that asked for them says so.
	if len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], "takes no checkpoints (the bundled runner does)") || st.Checkpoint != nil {
		t.Errorf("warnings %q, checkpoint %+v; want one warning that papermill takes no checkpoints, and none", st.Warnings, st.Checkpoint)
	}
	// Nor can it restore one: a rerun with from_cell fails at once.
	in, err := svc.StartedInput(context.Background(), ok.JobID)
	if err != nil {
		t.Fatal(err)
	}
	in.Resume = &workflows.Resume{Job: ok.JobID, FromCell: 1, Checkpoint: workflows.Checkpoint{Cell: 0, Path: "/nonexistent/cell-0.ckpt", SHA256: strings.Repeat("0", 64)}}
	resumed, err := server.Client.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{ID: workflows.RunIDPrefix + uuid.NewString(), TaskQueue: cfg.TaskQueue}, workflows.NotebookRunWorkflow, in)
	if err != nil {
		t.Fatal(err)
	}
	if err := resumed.Get(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "resuming needs the bundled runner") {
		t.Errorf("a resume on papermill: %v; want it refused, naming the bundled runner", err)
	}
	st = waitEnd(t, svc, bad.JobID, 2*time.Minute)
	if e := st.Error; st.Status != workflows.StatusFailed || e == nil || e.Type != failure.TypeCellError || e.EName != "AssertionError" || e.CellIndex == nil || *e.CellIndex != 4 || st.Attempt != 1 {
		t.Fatalf("got %s attempt %d %+v, want a non-retried AssertionError in cell 4", st.Status, st.Attempt, st.Error)
	}
	st = waitEnd(t, svc, dies.JobID, 2*time.Minute)
	if st.Status != workflows.StatusSucceeded || st.Attempt != 2 || st.Attempts[0].Outcome != string(failure.KindKernelDied) {
		t.Fatalf("got %s attempt %d %+v, want SUCCEEDED on attempt 2 after kernel_died", st.Status, st.Attempt, st.Attempts)
	}
}
