package mcpserver_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"millrace/internal/mcpserver"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// TestRerunJobFromCell is the fix-and-continue loop through the tools: a
// run fails at cell 3, the notebook is fixed, and rerun_job with from_cell
// 3 says which checkpoint it resumes from and runs only cells 3 and 4.
func TestRerunJobFromCell(t *testing.T) {
	e := newEnv(t)
	log := filepath.Join(e.root, "cells.log")
	cells := func(bug string) []string {
		return []string{
			testenv.ParametersPrefix + "log = 'cells.log'",
			"x = 10\nopen(log, 'a').write('cell 1\\n')",
			"y = x + 1\nopen(log, 'a').write('cell 2\\n')",
			"open(log, 'a').write('cell 3\\n')\n" + bug,
			"open(log, 'a').write('cell 4\\n')\nprint('RESULT', x, y)",
		}
	}
	testenv.WriteNotebook(t, e.root, "loop.ipynb", cells("raise ValueError('a bug in cell 3')")...)
	started, _ := call[mcpserver.StartNotebookResult](t, e.client, "start_notebook", map[string]any{
		"path": "loop.ipynb", "checkpoint": workflows.CheckpointEveryCell, "max_attempts": 1, "parameters": map[string]any{"log": log},
	})
	st, err := e.svc.WaitEnded(context.Background(), started.JobID, 2*time.Minute, nil)
	if err != nil || st.Status != workflows.StatusFailed || st.Error == nil || st.Error.CellIndex == nil || *st.Error.CellIndex != 3 {
		t.Fatalf("first run: %+v %v, want FAILED at cell 3", st, err)
	}
	testenv.WriteNotebook(t, e.root, "loop.ipynb", cells("")...)

	rerun, text := call[mcpserver.RerunResult](t, e.client, "rerun_job", map[string]any{"job_id": started.JobID, "from_cell": 3})
	if r := rerun.Resume; r == nil || r.Job != started.JobID || r.Checkpoint.Cell != 2 || r.FromCell != 3 {
		t.Fatalf("rerun_job resume %+v", rerun.Resume)
	}
	if !strings.Contains(text, "resuming from the checkpoint "+started.JobID+" took after cell 2") || !strings.Contains(text, "goes on from cell 3") {
		t.Errorf("rerun_job text %q does not say which checkpoint", text)
	}
	st, err = e.svc.WaitEnded(context.Background(), rerun.JobID, 2*time.Minute, nil)
	if err != nil || st.Status != workflows.StatusSucceeded {
		t.Fatalf("resumed run: %+v %v", st, err)
	}
	b, _ := os.ReadFile(log)
	if string(b) != "cell 1\ncell 2\ncell 3\ncell 3\ncell 4\n" {
		t.Fatalf("cells run: %q", b)
	}
	msg := callError(t, e.client, "rerun_job", map[string]any{"job_id": started.JobID, "from_cell": 9})
	if !strings.Contains(msg, "has 5 cells now") || !strings.Contains(msg, "from_cell must be 1 to 4") {
		t.Errorf("rerun_job from_cell 9: %q", msg)
	}
}
