package testenv

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"

	"millrace/internal/history"
)

// RecordHistoryEnv turns the recorder on: with MILLRACE_RECORD_HISTORY=1,
// ReplayHistory also adds each history it replays to HistoryDir.
const RecordHistoryEnv = "MILLRACE_RECORD_HISTORY"

// HistoryDir holds the histories recorded from real runs, which the
// workflows package's replay test replays.
func HistoryDir() string {
	return filepath.Join(RepoRoot(), "workflows", "testdata", "histories")
}

// ReplayHistory reads the closed workflow id's history (its latest run)
// from the server and replays it against today's workflow code, failing
// the test on a nondeterministic change. With MILLRACE_RECORD_HISTORY=1 it
// also records it as scenario name in HistoryDir, under a new file name
// when the name is taken (history.Add never overwrites).
func (s *Server) ReplayHistory(t testing.TB, id, name string) {
	t.Helper()
	// A job can report its final status a moment before its workflow
	// closes (a batch answers its query with its final state while it
	// starts its webhook): wait for the close. Its outcome is the test's
	// to check, not this one's.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = s.Client.GetWorkflow(ctx, id, "").Get(ctx, nil)
	e := history.Execution{WorkflowID: id, History: &historypb.History{}}
	it := s.Client.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatalf("history of %s: %v", id, err)
		}
		e.History.Events = append(e.History.Events, ev)
	}
	if !e.Closed() {
		t.Fatalf("history of %s is not closed: replay a workflow once it has ended", id)
	}
	e.RunID = e.History.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes().GetOriginalExecutionRunId()
	if err := e.Replay(); err != nil {
		t.Fatalf("replay of %s (%s): %v", id, e.Type(), err)
	}
	if os.Getenv(RecordHistoryEnv) != "1" {
		return
	}
	file, err := history.Add(HistoryDir(), name, e)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded the history of %s as %s", id, file)
}
