package workflows_test

import (
	"path/filepath"
	"testing"

	"millrace/internal/history"
	"millrace/workflows"
)

// historyDir holds the histories recorded from real runs on the embedded
// server, with real kernels (MILLRACE_RECORD_HISTORY=1 on the tests that
// call testenv's ReplayHistory records new ones).
const historyDir = "testdata/histories"

// recordedScenarios must each have a recorded history: the paths through
// every workflow that a change is most likely to break. A scenario missing
// here means its history was removed with its manifest line.
var recordedScenarios = map[string]string{
	"notebook_run_succeeded":  workflows.NotebookRunWorkflow,
	"notebook_run_cell_error": workflows.NotebookRunWorkflow,
	"notebook_run_canceled":   workflows.NotebookRunWorkflow,
	"notebook_run_retried":    workflows.NotebookRunWorkflow,
	"notebook_run_notified":   workflows.NotebookRunWorkflow,
	"batch_node_failed":       workflows.BatchWorkflow,
	"batch_rerun":             workflows.BatchWorkflow,
	"batch_canceled":          workflows.BatchWorkflow,
	"batch_notified":          workflows.BatchWorkflow,
	"notify_delivered":        workflows.NotifyWorkflow,
	"notify_rejected":         workflows.NotifyWorkflow,
}

// TestRecordedHistoriesUnchanged: every recorded history is still there,
// byte for byte as recorded, and listed in the manifest; every scenario
// has one, of the workflow it names.
func TestRecordedHistoriesUnchanged(t *testing.T) {
	files, err := history.Check(historyDir)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range files {
		s := history.Scenario(f)
		want, ok := recordedScenarios[s]
		if !ok {
			continue
		}
		e, err := history.Load(filepath.Join(historyDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if got := e.Type(); got != want {
			t.Errorf("%s is a history of %s, want %s", f, got, want)
		}
		seen[s] = true
	}
	for s := range recordedScenarios {
		if !seen[s] {
			t.Errorf("no recorded history of scenario %s in %s", s, historyDir)
		}
	}
}

// TestReplayRecordedHistories replays every recorded history against
// today's workflow code: a change that would break a workflow running
// while its worker is upgraded fails here (see doc.go for the rule).
func TestReplayRecordedHistories(t *testing.T) {
	files, err := history.Check(historyDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		e, err := history.Load(filepath.Join(historyDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Replay(); err != nil {
			t.Errorf("replay %s (%s): %v", f, e.Type(), err)
		}
	}
}
