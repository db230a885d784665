package workflows

import (
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// TestReplayRecordedHistories replays histories recorded from real runs on
// the embedded server (regenerate them with MILLRACE_UPDATE_HISTORY=1 go
// test ./activities/). A change to NotebookRun that would break running
// workflows fails here.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob("testdata/notebook_run_*.json")
	if err != nil || len(files) < 4 {
		t.Fatalf("want the 4 recorded histories in testdata, found %v (%v)", files, err)
	}
	for _, f := range files {
		r := worker.NewWorkflowReplayer()
		r.RegisterWorkflowWithOptions(NotebookRun, workflow.RegisterOptions{Name: NotebookRunWorkflow})
		if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
			t.Errorf("replay %s: %v", f, err)
		}
	}
}
