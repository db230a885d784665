package history_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	historypb "go.temporal.io/api/history/v1"
	"google.golang.org/protobuf/proto"

	"millrace/internal/history"
	"millrace/internal/testenv"
)

// recorded loads one of the histories recorded from real runs.
func recorded(t *testing.T, file string) history.Execution {
	t.Helper()
	e, err := history.Load(filepath.Join(testenv.RepoRoot(), "workflows", "testdata", "histories", file))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want an error containing %q", err, want)
	}
}

// TestAddNeverOverwrites: a taken name gets the next free one, the first
// file stays as it was, and both are listed and check.
func TestAddNeverOverwrites(t *testing.T) {
	dir := t.TempDir()
	e := recorded(t, "notify_delivered.json")
	var files []string
	for range 3 {
		f, err := history.Add(dir, "delivered", e)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	if strings.Join(files, " ") != "delivered.json delivered.2.json delivered.3.json" {
		t.Fatalf("files %v, want delivered.json delivered.2.json delivered.3.json", files)
	}
	listed, err := history.Check(dir)
	if err != nil || len(listed) != 3 {
		t.Fatalf("check: %v %v", listed, err)
	}
	for _, f := range files {
		if s := history.Scenario(f); s != "delivered" {
			t.Errorf("scenario of %s = %q, want delivered", f, s)
		}
		got, err := history.Load(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if got.WorkflowID != e.WorkflowID || got.RunID != e.RunID || !proto.Equal(got.History, e.History) {
			t.Fatalf("%s does not read back as the history it was recorded from", f)
		}
	}
}

// TestCheckFindsChangedRemovedAndUnlisted: each way a recorded history can
// stop being what was recorded fails the check, with what to do.
func TestCheckFindsChangedRemovedAndUnlisted(t *testing.T) {
	e := recorded(t, "notify_delivered.json")
	setup := func() (string, string) {
		dir := t.TempDir()
		f, err := history.Add(dir, "h", e)
		if err != nil {
			t.Fatal(err)
		}
		return dir, filepath.Join(dir, f)
	}

	dir, f := setup()
	b, _ := os.ReadFile(f)
	os.WriteFile(f, []byte(strings.Replace(string(b), "DeliverNotification", "DeliverNotificatioN", 1)), 0o644)
	_, err := history.Check(dir)
	wantErr(t, err, "h.json changed since it was recorded")

	dir, f = setup()
	os.Remove(f)
	_, err = history.Check(dir)
	wantErr(t, err, "h.json was recorded and is gone")

	dir, f = setup()
	b, _ = os.ReadFile(f)
	os.WriteFile(filepath.Join(dir, "stray.json"), b, 0o644)
	_, err = history.Check(dir)
	wantErr(t, err, "stray.json is not in SHA256SUMS")

	_, err = history.Check(t.TempDir())
	wantErr(t, err, "read the manifest")
}

// TestAddRefusesWhatCannotReplay: an open history, one without its
// workflow id, and a name that is not a plain word are refused, and
// nothing is written.
func TestAddRefusesWhatCannotReplay(t *testing.T) {
	dir := t.TempDir()
	e := recorded(t, "notify_delivered.json")
	open := e
	open.History = proto.Clone(e.History).(*historypb.History)
	open.History.Events = open.History.Events[:5]
	_, err := history.Add(dir, "open", open)
	wantErr(t, err, "not closed")
	noID := e
	noID.WorkflowID = ""
	_, err = history.Add(dir, "noid", noID)
	wantErr(t, err, "no workflow id")
	_, err = history.Add(dir, "../escape", e)
	wantErr(t, err, "use letters, digits")
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("refused histories left %d files", len(left))
	}
}

// TestReplayFindsADifferentDecision: the replay of a recorded batch
// passes, and fails once the history records a decision today's code does
// not make (its webhook child under another id), as it would after a
// change to the code. Without the workflow id the same history fails too:
// the batch names its webhook after itself.
func TestReplayFindsADifferentDecision(t *testing.T) {
	e := recorded(t, "batch_notified.json")
	if err := e.Replay(); err != nil {
		t.Fatalf("recorded batch: %v", err)
	}
	changed := e
	changed.History = proto.Clone(e.History).(*historypb.History)
	found := false
	for _, ev := range changed.History.Events {
		if a := ev.GetStartChildWorkflowExecutionInitiatedEventAttributes(); a != nil && strings.HasPrefix(a.GetWorkflowId(), "notify-") {
			a.WorkflowId += "-other"
			found = true
		}
	}
	if !found {
		t.Fatal("batch_notified.json starts no webhook child")
	}
	wantErr(t, changed.Replay(), "nondeterministic")
	anonymous := e
	anonymous.WorkflowID = ""
	wantErr(t, anonymous.Replay(), "nondeterministic")
}
