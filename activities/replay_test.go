package activities_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/encoding/protojson"

	"millrace/workflows"
)

// replayHistory fetches a finished run's real history and replays it
// against today's workflow code: a nondeterministic change fails here. With
// MILLRACE_UPDATE_HISTORY=1 it also stores the history under
// workflows/testdata/ for the workflows package's offline replay test.
func replayHistory(t *testing.T, jobID, name string) {
	t.Helper()
	ctx := context.Background()
	it := server.Client.GetWorkflowHistory(ctx, jobID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var h historypb.History
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		h.Events = append(h.Events, ev)
	}
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(workflows.NotebookRun, workflow.RegisterOptions{Name: workflows.NotebookRunWorkflow})
	if err := r.ReplayWorkflowHistory(nil, &h); err != nil {
		t.Fatalf("replay of %s: %v", jobID, err)
	}
	if os.Getenv("MILLRACE_UPDATE_HISTORY") == "1" {
		b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(&h)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("..", "workflows", "testdata", name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
