package devmode_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/converter"

	"millrace/internal/codec"
	"millrace/internal/devmode"
	"millrace/internal/jobs"
	"millrace/internal/runopts"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// TestDevServiceEncryptsHistory: a dev service makes its codec key on its
// first start, readable by its owner only; a dev-mode worker binary finds
// it; a run's env value then reaches the kernel but never the database.
func TestDevServiceEncryptsHistory(t *testing.T) {
	dataDir := t.TempDir()
	stopService(t, dataDir)
	startDevWorker(t, dataDir)
	st := waitService(t, dataDir)
	info, err := os.Stat(devmode.KeyFile(dataDir))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("dev codec key: %v %v, want a 0600 file", info, err)
	}

	dir := t.TempDir()
	nb := testenv.CopyFile(t, filepath.Join(testenv.RepoRoot(), "activities", "testdata", "trivial.ipynb"), dir)
	svc := service(t, st, dir)
	const secret = "dev-mode-secret-3b9a71"
	run, err := svc.Start(context.Background(), jobs.StartRequest{Path: nb, Direct: runopts.Direct{Env: map[string]string{"SECRET": secret}}})
	if err != nil {
		t.Fatal(err)
	}
	end, err := svc.WaitEnded(context.Background(), run.JobID, 2*time.Minute, nil)
	if err != nil || end.Status != workflows.StatusSucceeded {
		t.Fatalf("run: %s %v %+v", end.Status, err, end.Error)
	}
	it := svc.Client.GetWorkflowHistory(context.Background(), run.JobID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	ev, err := it.Next()
	if err != nil {
		t.Fatal(err)
	}
	in := ev.GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()[0]
	if enc := string(in.GetMetadata()[converter.MetadataEncoding]); enc != codec.Encoding {
		t.Fatalf("the run's input is stored as %q, want %q", enc, codec.Encoding)
	}
	for _, f := range []string{st.DB, st.DB + "-wal"} {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte(secret)) {
			t.Fatalf("%s holds the run's env value", f)
		}
	}
}
