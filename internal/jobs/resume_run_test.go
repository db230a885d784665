package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"millrace/internal/jobs"
	"millrace/internal/notebook"
	"millrace/internal/runopts"
	"millrace/internal/runopts/runoptstest"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// resumeCells is the notebook of the resume tests. Every code cell after
// the parameters appends a line to the file log names, so the file shows
// which cells ran, in order and how often. Cell 2 is markdown: cells are
// counted as the notebook holds them. Cell 3 fails while the file fail_if
// names exists, and with bug it always fails (the "bug" the test fixes in
// the notebook).
func resumeCells(bug bool) []string {
	cell3 := "y = x + 1\nwith open(log, \"a\") as f:\n    f.write(\"cell 3\\n\")\nif fail_if and os.path.exists(fail_if):\n    raise RuntimeError(\"cell 3 failed on purpose\")\n"
	if bug {
		cell3 += "raise ValueError(\"a bug in cell 3\")\n"
	}
	return []string{
		"log = \"cells.log\"\nfail_if = \"\"\nscale = 1\npause = 0.0",
		"import os, time\nx = 10 * scale\ntime.sleep(pause)\nwith open(log, \"a\") as f:\n    f.write(\"cell 1\\n\")\nprint(\"x is\", x)",
		"#markdown: the middle",
		cell3,
		"with open(log, \"a\") as f:\n    f.write(\"cell 4\\n\")\nprint(\"RESULT\", x, y)",
	}
}

// writeResumeNotebook writes the notebook to path.
func writeResumeNotebook(t *testing.T, path string, bug bool) {
	t.Helper()
	var cells []map[string]any
	for i, src := range resumeCells(bug) {
		c := map[string]any{"cell_type": "code", "metadata": map[string]any{}, "source": src, "outputs": []any{}, "execution_count": nil}
		switch {
		case i == 0:
			c["metadata"] = map[string]any{"tags": []string{"parameters"}}
		case strings.HasPrefix(src, "#markdown: "):
			c = map[string]any{"cell_type": "markdown", "metadata": map[string]any{}, "source": strings.TrimPrefix(src, "#markdown: ")}
		}
		cells = append(cells, c)
	}
	nb := map[string]any{
		"nbformat": 4, "nbformat_minor": 5, "cells": cells,
		"metadata": map[string]any{"kernelspec": map[string]any{"name": "python3", "display_name": "Python 3", "language": "python"}, "language_info": map[string]any{"name": "python"}},
	}
	b, err := json.MarshalIndent(nb, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// resumeSetup is a worker, a service and a folder holding resume.ipynb.
func resumeSetup(t *testing.T, bug bool) (*jobs.Service, string) {
	t.Helper()
	dir := t.TempDir()
	writeResumeNotebook(t, filepath.Join(dir, "resume.ipynb"), bug)
	cfg := server.Config(t)
	server.StartWorker(t, cfg)
	return server.Service(t, cfg, dir), dir
}

// resumeOptions are a run of resume.ipynb that saves a checkpoint after
// every cell and logs its cells to log.
func resumeOptions(log string, params map[string]any) runopts.Options {
	p := map[string]any{"log": log}
	for k, v := range params {
		p[k] = v
	}
	return runopts.Options{MaxAttempts: 1, Checkpoint: workflows.CheckpointEveryCell, Parameters: p}
}

func waitRun(t *testing.T, svc *jobs.Service, id string) jobs.Status {
	t.Helper()
	st, err := svc.WaitEnded(context.Background(), id, 3*time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func readLog(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// failedAtCell3 runs resume.ipynb until cell 3 fails and returns the job.
func failedAtCell3(t *testing.T, svc *jobs.Service, log string, params map[string]any, checkpoint string) string {
	t.Helper()
	opts := resumeOptions(log, params)
	opts.Checkpoint = checkpoint
	started, err := svc.Start(context.Background(), jobs.StartRequest{Path: "resume.ipynb", Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	st := waitRun(t, svc, started.JobID)
	if st.Status != workflows.StatusFailed || st.Error == nil || st.Error.CellIndex == nil || *st.Error.CellIndex != 3 {
		t.Fatalf("first run: %s %+v, want FAILED at cell 3", st.Status, st.Error)
	}
	return started.JobID
}

// TestRerunFromCellAfterFixingTheNotebook is the fix-and-continue loop: a
// run fails at cell 3, the notebook is fixed, and a rerun from cell 3
// restores the checkpoint after cell 1 (cell 2 is markdown) and runs cells
// 3 and 4 only; its output notebook has every cell's outputs, the restored
// ones marked.
func TestRerunFromCellAfterFixingTheNotebook(t *testing.T) {
	ctx := context.Background()
	svc, dir := resumeSetup(t, true)
	log := filepath.Join(dir, "cells.log")
	first := failedAtCell3(t, svc, log, nil, workflows.CheckpointEveryCell)
	if got := readLog(t, log); got != "cell 1\ncell 3\n" {
		t.Fatalf("first run's cells: %q", got)
	}
	writeResumeNotebook(t, filepath.Join(dir, "resume.ipynb"), false)

	again, err := svc.RerunRunWith(ctx, first, jobs.RerunOptions{FromCell: 3})
	if err != nil {
		t.Fatal(err)
	}
	r := again.Resume
	if r == nil || r.Job != first || r.FromCell != 3 || r.Checkpoint.Cell != 1 || r.Checkpoint.SHA256 == "" {
		t.Fatalf("resume %+v, want the checkpoint %s took after cell 1", r, first)
	}
	if len(again.Warnings) != 0 {
		t.Errorf("warnings %q: only a markdown cell lies between the checkpoint and cell 3", again.Warnings)
	}
	st := waitRun(t, svc, again.JobID)
	if st.Status != workflows.StatusSucceeded {
		t.Fatalf("resumed run: %s %s %+v", st.Status, st.Message, st.Error)
	}
	if got := readLog(t, log); got != "cell 1\ncell 3\ncell 3\ncell 4\n" {
		t.Fatalf("cells run across both jobs: %q, want cell 1 once (restored), cells 3 and 4 again", got)
	}
	if rf := st.ResumedFrom; rf == nil || rf.JobID != first || rf.FromCell != 3 || rf.CheckpointCell != 1 {
		t.Errorf("status resumed_from %+v, want %s's checkpoint after cell 1", rf, first)
	}
	nb, err := notebook.Load(st.OutputPath)
	if err != nil {
		t.Fatal(err)
	}
	var restored []int
	var text []string
	for i, c := range nb.Cells {
		var m struct {
			Millrace struct {
				Restored bool `json:"restored"`
			} `json:"millrace"`
		}
		_ = json.Unmarshal(c.Metadata, &m)
		if m.Millrace.Restored {
			restored = append(restored, i)
		}
		for _, o := range c.Outputs {
			text = append(text, o.Text)
		}
	}
	all := strings.Join(text, "")
	if !strings.Contains(all, "x is 10") || !strings.Contains(all, "RESULT 10 11") {
		t.Errorf("output notebook lacks a cell's outputs: %q", all)
	}
	if len(restored) == 0 {
		t.Errorf("no cell of %s is marked metadata.millrace.restored", st.OutputPath)
	}
	for _, i := range restored {
		if strings.Contains(nb.Cells[i].Source, "cell 3") || strings.Contains(nb.Cells[i].Source, "cell 4") {
			t.Errorf("cell %d ran in the resumed job but is marked restored", i)
		}
	}
	server.ReplayHistory(t, again.JobID, "notebook_run_resumed")
}

// TestRerunFromCellRefusals: each refusal comes at the call, says why, and
// starts nothing: a job still running, a job without checkpoints, a cell
// past the notebook, other parameters than the checkpoint's, a cell before
// the checkpoint edited since, a checkpoint changed on disk.
func TestRerunFromCellRefusals(t *testing.T) {
	ctx := context.Background()
	svc, dir := resumeSetup(t, true)
	log := filepath.Join(dir, "cells.log")
	refused := func(what string, id string, opts jobs.RerunOptions, want ...string) {
		t.Helper()
		_, err := svc.RerunRunWith(ctx, id, opts)
		if !jobs.IsUserError(err) {
			t.Fatalf("%s: %v, want a user error", what, err)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", what, err, w)
			}
		}
	}

	slow, err := svc.Start(ctx, jobs.StartRequest{Path: "resume.ipynb", Options: resumeOptions(filepath.Join(dir, "slow.log"), map[string]any{"pause": 60.0})})
	if err != nil {
		t.Fatal(err)
	}
	refused("a running job", slow.JobID, jobs.RerunOptions{FromCell: 3}, "has ended")
	if _, err := svc.Cancel(ctx, slow.JobID, "done"); err != nil {
		t.Fatal(err)
	}

	off := failedAtCell3(t, svc, filepath.Join(dir, "off.log"), map[string]any{}, workflows.CheckpointOff)
	refused("a job without checkpoints", off, jobs.RerunOptions{FromCell: 3}, "job "+off+" took no checkpoint (checkpoint: off", "rerun without from_cell")

	first := failedAtCell3(t, svc, log, nil, workflows.CheckpointEveryCell)
	refused("past the notebook", first, jobs.RerunOptions{FromCell: 5}, "has 5 cells now", "from_cell must be 1 to 4")

	// A job that went on from first's checkpoint with other parameters
	// (the runner refuses that today; an older worker or another client
	// could have recorded it): a stand-in activity ends it at once with
	// first's checkpoint among its own, as a resumed run lists it. A
	// rerun of it from cell 3 would restore first's values under its own
	// parameters.
	cp := checkpointAfter(t, svc, first, 1)
	in := runoptstest.StartedInput(t, svc, first)
	other := workflows.RunIDPrefix + uuid.NewString()
	in.Parameters = json.RawMessage(`{"log":` + quote(log) + `,"scale":2}`)
	in.Resume = &workflows.Resume{Job: first, FromCell: 3, Checkpoint: cp}
	in.Output = filepath.Join(filepath.Dir(filepath.Dir(in.Output)), other, "output.ipynb")
	queue := "stand-in-" + uuid.NewString()
	w := worker.New(server.Client, queue, worker.Options{})
	workflows.Register(w)
	w.RegisterActivityWithOptions(func(ctx context.Context, in workflows.RunInput) (workflows.AttemptResult, error) {
		return workflows.AttemptResult{Attempt: 1, Executor: "stand-in", OutputPath: in.Output, Checkpoints: []workflows.Checkpoint{in.Resume.Checkpoint}}, nil
	}, activity.RegisterOptions{Name: workflows.RunNotebookActivity})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	if _, err := svc.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: other, TaskQueue: queue,
		TypedSearchAttributes: temporal.NewSearchAttributes(append(workflows.RunScope(in).Attributes(), workflows.KeyKind.ValueSet("run"), workflows.KeyNotebook.ValueSet(in.Notebook))...),
	}, workflows.NotebookRunWorkflow, in); err != nil {
		t.Fatal(err)
	}
	if st := waitRun(t, svc, other); st.Status != workflows.StatusSucceeded {
		t.Fatalf("the stand-in job with other parameters: %s %+v", st.Status, st.Error)
	}
	refused("other parameters", other, jobs.RerunOptions{FromCell: 3}, "parameters differ from those of "+first, "scale (was not given, now 2)")

	// A cell before the checkpoint edited since: the runner would refuse
	// the resume, so the call goes back to a checkpoint before that cell,
	// or refuses when there is none, saying which cell changed.
	nbPath := filepath.Join(dir, "resume.ipynb")
	orig, err := os.ReadFile(nbPath)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(orig), "x = 10 * scale", "x = 20 * scale", 1)
	if edited == string(orig) {
		t.Fatal("the test notebook has no line to edit")
	}
	os.WriteFile(nbPath, []byte(edited), 0o644)
	const changed = "cell 1 changed since the checkpoint after cell 1 was taken"
	earlier, err := svc.RerunRunWith(ctx, first, jobs.RerunOptions{FromCell: 3})
	var also string
	switch {
	case err != nil:
		t.Logf("after an edit of cell 1: %v", err)
		if !jobs.IsUserError(err) || !strings.Contains(err.Error(), changed) {
			t.Errorf("rerun from cell 3 after cell 1 was edited: %v, want a refusal saying %q", err, changed)
		}
	default:
		also = earlier.JobID
		t.Logf("after an edit of cell 1: %s resumes from %+v: %q", also, earlier.Resume, earlier.Warnings)
		waitRun(t, svc, also)
		if earlier.Resume == nil || earlier.Resume.Checkpoint.Cell >= 1 || len(earlier.Warnings) == 0 || !strings.Contains(earlier.Warnings[0], changed) {
			t.Errorf("rerun from cell 3 after cell 1 was edited: resume %+v warnings %q, want a checkpoint before cell 1 and a warning saying %q", earlier.Resume, earlier.Warnings, changed)
		}
	}
	os.WriteFile(nbPath, orig, 0o644)

	// first's checkpoint changed on disk.
	b, err := os.ReadFile(cp.Path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 1
	if err := os.WriteFile(cp.Path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	refused("a checkpoint changed on disk", first, jobs.RerunOptions{FromCell: 3}, "does not match the hash recorded when it was saved: it was changed on disk; rerun without from_cell")

	list, err := svc.List(ctx, jobs.ListRequest{Notebook: "resume.ipynb"})
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range list.Jobs {
		if j.JobID != slow.JobID && j.JobID != off && j.JobID != first && j.JobID != other && j.JobID != also {
			t.Errorf("a refused rerun started %s", j.JobID)
		}
	}
}

// checkpointAfter is the record of the checkpoint job took after cell,
// from its result in Temporal (the details of its failure).
func checkpointAfter(t *testing.T, svc *jobs.Service, job string, cell int) workflows.Checkpoint {
	t.Helper()
	var res workflows.RunResult
	err := svc.Client.GetWorkflow(context.Background(), job, "").Get(context.Background(), &res)
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.HasDetails() {
		err = appErr.Details(&res)
	}
	if err != nil {
		t.Fatalf("result of %s: %v", job, err)
	}
	for _, cp := range res.Checkpoints {
		if cp.Cell == cell {
			return cp
		}
	}
	t.Fatalf("%s has no checkpoint after cell %d: %+v", job, cell, res.Checkpoints)
	return workflows.Checkpoint{}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestBatchRerunResumesFailedNode: a batch's node fails at cell 3; the
// rerun with from_cell reuses the node before it, resumes the failed node
// from its own checkpoint after cell 1, and runs the node below it (which
// never ran) from its first cell with a warning.
func TestBatchRerunResumesFailedNode(t *testing.T) {
	ctx := context.Background()
	svc, dir := resumeSetup(t, false)
	testenv.CopyFile(t, "testdata/stage.ipynb", dir)
	flag := filepath.Join(dir, "fail-flaky")
	os.WriteFile(flag, []byte("1"), 0o644)
	log := filepath.Join(dir, "cells.log")
	prep := stage("prep", 0.1)
	flaky := jobs.BatchNodeRequest{ID: "flaky", Path: "resume.ipynb", DependsOn: []string{"prep"}, Options: resumeOptions(log, map[string]any{"fail_if": flag})}
	after := jobs.BatchNodeRequest{ID: "after", Path: "resume.ipynb", DependsOn: []string{"flaky"}, Options: resumeOptions(filepath.Join(dir, "after.log"), nil)}
	started, err := svc.StartBatch(ctx, jobs.BatchRequest{Name: "resume", Nodes: []jobs.BatchNodeRequest{prep, flaky, after}})
	if err != nil {
		t.Fatal(err)
	}
	st := waitBatch(t, svc, started.BatchID)
	if got := nodeStatuses(st); got["prep"] != workflows.StatusSucceeded || got["flaky"] != workflows.StatusFailed || got["after"] != workflows.NodeSkipped {
		t.Fatalf("round 1: %v", got)
	}
	failedJob := started.Nodes[1].JobID

	os.Remove(flag)
	again, err := svc.RerunBatchWith(ctx, started.BatchID, jobs.RerunOptions{FromCell: 1000})
	if err != nil {
		t.Fatal(err)
	}
	nodes := map[string]jobs.StartedBatchNode{}
	for _, n := range again.Nodes {
		nodes[n.ID] = n
	}
	if r := nodes["flaky"].Resume; r == nil || r.Job != failedJob || r.Checkpoint.Cell != 1 || r.FromCell != 2 {
		t.Fatalf("flaky's resume %+v, want %s's checkpoint after cell 1", r, failedJob)
	}
	if a := nodes["after"]; a.Resume != nil || len(a.Warnings) != 1 || !strings.Contains(a.Warnings[0], "runs from its first cell") {
		t.Fatalf("after: resume %+v warnings %q, want a warning and no resume", a.Resume, a.Warnings)
	}
	if !nodes["prep"].Reused {
		t.Fatal("prep is not reused")
	}
	st = waitBatch(t, svc, started.BatchID)
	if st.Status != workflows.StatusSucceeded {
		t.Fatalf("round 2: %s %v", st.Status, nodeStatuses(st))
	}
	if got := readLog(t, log); got != "cell 1\ncell 3\ncell 3\ncell 4\n" {
		t.Fatalf("flaky's cells across both rounds: %q, want cell 1 once", got)
	}
	server.ReplayHistory(t, started.BatchID, "batch_rerun_resumed")
}

// TestBatchRerunRefusalNamesTheNode: a node whose checkpoint changed on
// disk refuses the whole rerun, naming the node.
func TestBatchRerunRefusalNamesTheNode(t *testing.T) {
	ctx := context.Background()
	svc, dir := resumeSetup(t, true)
	log := filepath.Join(dir, "cells.log")
	flaky := jobs.BatchNodeRequest{ID: "flaky", Path: "resume.ipynb", Options: resumeOptions(log, nil)}
	started, err := svc.StartBatch(ctx, jobs.BatchRequest{Nodes: []jobs.BatchNodeRequest{flaky}})
	if err != nil {
		t.Fatal(err)
	}
	if st := waitBatch(t, svc, started.BatchID); st.Status != workflows.StatusFailed {
		t.Fatalf("round 1: %s", st.Status)
	}
	cp := checkpointAfter(t, svc, started.Nodes[0].JobID, 1)
	os.WriteFile(cp.Path, []byte("not a checkpoint"), 0o600)
	_, err = svc.RerunBatchWith(ctx, started.BatchID, jobs.RerunOptions{FromCell: 3})
	if !jobs.IsUserError(err) || !strings.Contains(err.Error(), "node flaky: ") || !strings.Contains(err.Error(), "changed on disk") {
		t.Fatalf("rerun with a changed checkpoint: %v", err)
	}
	if st, _ := svc.BatchStatus(ctx, started.BatchID); st.Round != 1 {
		t.Fatalf("the refused rerun started round %d", st.Round)
	}
}
