package security_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"millrace/internal/codec"
	"millrace/internal/config"
	"millrace/internal/jobs"
	"millrace/internal/runopts"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// codecBatch runs a batch whose first node gets greeting=secret and whose
// second fails, on a job service configured by cfg, and waits until its
// workflow has closed.
func codecBatch(t *testing.T, cfg *config.Config, dir, secret string) (*jobs.Service, jobs.BatchStatus) {
	t.Helper()
	ctx := context.Background()
	svc := codecJobs(t, cfg, dir)
	req := jobs.BatchRequest{Nodes: []jobs.BatchNodeRequest{
		{ID: "greet", Path: testenv.CopyFile(t, testenv.Testdata("greeting.ipynb"), dir), Options: runopts.Options{Parameters: map[string]any{"greeting": secret}, MaxAttempts: 1}},
		{ID: "fail", Path: testenv.CopyFile(t, testenv.Testdata("fails_later.ipynb"), dir), DependsOn: []string{"greet"}, Options: runopts.Options{MaxAttempts: 1}},
	}}
	started, err := svc.StartBatch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return svc, closedBatch(t, svc, started.BatchID)
}

// closedBatch waits for a batch's workflow to close and returns its
// status.
func closedBatch(t *testing.T, svc *jobs.Service, id string) jobs.BatchStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_ = svc.Client.GetWorkflow(ctx, id, "").Get(ctx, nil)
	st, err := svc.BatchStatus(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestCodecBatchParameterNotInHistoryAtRest(t *testing.T) {
	o := attack(t, "read a batch node's parameter value (a token) from the Temporal server's database and WAL at rest, where the batch's input, its request kept for reruns, and every node's input and result lie")
	dir := t.TempDir()
	on := server.Config(t)
	on.CodecKeyFile = filepath.Join(t.TempDir(), "codec.key")
	if _, err := codec.Create(on.CodecKeyFile); err != nil {
		t.Fatal(err)
	}
	secret := randomSecret(t)
	svc, st := codecBatch(t, on, dir, secret)
	nodes := map[string]string{}
	for _, n := range st.Nodes {
		nodes[n.ID] = n.Status
	}
	if st.Status != workflows.StatusFailed || nodes["greet"] != workflows.StatusSucceeded || nodes["fail"] != workflows.StatusFailed {
		t.Fatalf("sealed batch: %s %v", st.Status, nodes)
	}
	// The rerun reads the sealed input and request back.
	if _, err := svc.RerunBatch(context.Background(), st.BatchID); err != nil {
		t.Fatalf("rerun of a sealed batch: %v", err)
	}
	if again := closedBatch(t, svc, st.BatchID); again.Round != 2 || !again.Nodes[0].Reused {
		t.Fatalf("rerun: round %d, nodes %+v; want round 2 reusing greet", again.Round, again.Nodes)
	}

	// The control: the same batch without a key file, on its own task
	// queue.
	off := server.Config(t)
	off.TaskQueue += "-plain"
	plain := randomSecret(t)
	codecBatch(t, off, t.TempDir(), plain)

	db := serverFiles(t)
	if !bytes.Contains(db, []byte(plain)) {
		t.Fatalf("control: the parameter of a batch without the codec is not in the server's files (%d bytes): this test cannot see history at rest", len(db))
	}
	if bytes.Contains(db, []byte(secret)) {
		t.Fatal("the parameter of a batch with the codec is in the server's files")
	}
	o.saw("with a codec key the value is absent from temporal.db and its WAL (%d bytes read) after a batch, its failed node and its rerun, which read the sealed input back; the control batch without a key has it in the clear there", len(db))
}
