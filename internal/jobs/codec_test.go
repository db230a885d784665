package jobs_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"millrace/internal/codec"
	"millrace/internal/config"
	"millrace/internal/connect"
	"millrace/internal/jobs"
	"millrace/internal/nbworker"
	"millrace/internal/notify"
	"millrace/internal/paths"
	"millrace/internal/runopts"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// codecService is a worker and a job service whose client encrypts every
// payload with a new key, as every millrace binary does when given a key
// file, on the shared server.
func codecService(t *testing.T, cfg *config.Config, root string) *jobs.Service {
	t.Helper()
	cfg.CodecKeyFile = filepath.Join(t.TempDir(), "codec.key")
	if _, err := codec.Create(cfg.CodecKeyFile); err != nil {
		t.Fatal(err)
	}
	return dialService(t, cfg, root, true)
}

// dialService connects as a millrace binary configured by cfg does, with
// a worker on cfg's task queue when worker is set.
func dialService(t *testing.T, cfg *config.Config, root string, worker bool) *jobs.Service {
	t.Helper()
	c, err := connect.Dial(context.Background(), cfg, testenv.Logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	dc, err := connect.DataConverter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if worker {
		w, err := nbworker.Start(c, cfg, testenv.Logger())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Stop)
	}
	roots, err := paths.NewRoots([]string{root})
	if err != nil {
		t.Fatal(err)
	}
	return &jobs.Service{Client: c, DataConverter: dc, Namespace: cfg.Namespace, TaskQueue: cfg.TaskQueue, DataDir: cfg.DataDir, Roots: roots}
}

// TestCodecJobServiceWorks drives every job service call that reads
// history (status, list, rerun of a run and of a batch, batch status,
// logs, output, cancel) with every payload encrypted: each must decode
// through the client's converter, and none may show an env value.
func TestCodecJobServiceWorks(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	testenv.CopyFile(t, "testdata/stage.ipynb", dir)
	cfg := server.Config(t)
	svc := codecService(t, cfg, dir)
	const secret = "codec-test-secret-5e1f"

	started, err := svc.Start(ctx, jobs.StartRequest{Path: "stage.ipynb", Options: runopts.Options{Parameters: map[string]any{"name": "enc"}}, Job: runopts.Job{Labels: []string{"codec"}}, Direct: runopts.Direct{Env: map[string]string{"SECRET": secret}}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := svc.WaitEnded(ctx, started.JobID, 2*time.Minute, nil)
	if err != nil || st.Status != workflows.StatusSucceeded {
		t.Fatalf("run: %s %s %v", st.Status, st.Message, err)
	}
	if st.OutputPath != started.OutputPath {
		t.Errorf("status output path %q, want %q (read from the encrypted memo)", st.OutputPath, started.OutputPath)
	}
	logs, err := svc.Logs(ctx, jobs.LogsRequest{JobID: started.JobID})
	if err != nil || !strings.Contains(codecLogText(logs), "STAGE enc DONE") {
		t.Fatalf("logs: %q %v", codecLogText(logs), err)
	}
	out, err := svc.Output(ctx, jobs.OutputRequest{JobID: started.JobID})
	if err != nil || len(out.Cells) == 0 {
		t.Fatalf("output: %+v %v", out, err)
	}
	list, err := svc.List(ctx, jobs.ListRequest{Label: "codec"})
	if err != nil || len(list.Jobs) != 1 || list.Jobs[0].OutputPath != started.OutputPath {
		t.Fatalf("list: %+v %v", list, err)
	}
	noSecret(t, secret, st, list, out, logs)

	again, err := svc.RerunRun(ctx, started.JobID)
	if err != nil {
		t.Fatalf("rerun of an encrypted run: %v", err)
	}
	if st, err := svc.WaitEnded(ctx, again.JobID, 2*time.Minute, nil); err != nil || st.Status != workflows.StatusSucceeded {
		t.Fatalf("rerun: %s %s %v", st.Status, st.Message, err)
	}

	// Cancel a running run: its status while running comes from the
	// encrypted heartbeat details.
	long, err := svc.Start(ctx, jobs.StartRequest{Path: "stage.ipynb", Options: runopts.Options{Parameters: map[string]any{"name": "long", "sleep": 120}}, Direct: runopts.Direct{Env: map[string]string{"SECRET": secret}}})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, time.Minute, "the long run to report its progress", func() bool {
		st, err := svc.Status(ctx, long.JobID)
		if err != nil {
			t.Fatal(err)
		}
		return st.Status == workflows.StatusRunning && st.Progress.CellsTotal > 0 && st.Executor != ""
	})
	if st, err := svc.Cancel(ctx, long.JobID, "codec test"); err != nil || st.Status != workflows.StatusCanceled {
		t.Fatalf("cancel: %s %v", st.Status, err)
	}

	// A batch whose second node fails, rerun: the rerun reads the batch's
	// encrypted input.
	a := stage("a", 0)
	b := stage("b", 0, "a")
	b.Parameters["fail"] = true
	bs, err := svc.StartBatch(ctx, jobs.BatchRequest{Nodes: []jobs.BatchNodeRequest{a, b}})
	if err != nil {
		t.Fatal(err)
	}
	first := waitBatch(t, svc, bs.BatchID)
	if got := nodeStatuses(first); got["a"] != workflows.StatusSucceeded || got["b"] != workflows.StatusFailed {
		t.Fatalf("batch nodes %v", got)
	}
	var failedJob string
	for _, n := range first.Nodes {
		if n.ID == "b" {
			failedJob = n.JobID
		}
	}
	if bst, err := svc.Status(ctx, failedJob); err != nil || bst.Error == nil || !strings.Contains(bst.Error.Message, "stage b failed on purpose") {
		t.Fatalf("failed node's status: %+v %v; want its cell error read back through the codec", bst.Error, err)
	}
	rb, err := svc.RerunBatch(ctx, bs.BatchID)
	if err != nil {
		t.Fatalf("rerun of an encrypted batch: %v", err)
	}
	bst := waitBatch(t, svc, rb.BatchID)
	if bst.Round != 2 || nodeStatuses(bst)["b"] != workflows.StatusFailed {
		t.Fatalf("batch rerun: round %d, nodes %v", bst.Round, nodeStatuses(bst))
	}
}

// TestCodecBatchStatusEveryWay reads a batch's status every way the job
// service does, with every payload sealed: a running batch by query (its
// node's progress from heartbeat details), a canceled one from its
// failure's details, its webhook from its sealed memo, and a terminated
// one, which has no result, from its input. The batch's input in history
// is ciphertext, so a raw read of a payload's bytes cannot pass.
func TestCodecBatchStatusEveryWay(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	testenv.CopyFile(t, "testdata/stage.ipynb", dir)
	cfg := server.Config(t)
	cfg.NotifyAllow, cfg.NotifyAllowPrivate, cfg.NotifySecret = []string{"127.0.0.1"}, []string{"127.0.0.1"}, hookSecret
	svc := codecService(t, cfg, dir)
	svc.NotifyAllow = cfg.NotifyAllow
	recv := newReceiver(t, 204)

	long := stage("long", 120)
	bs, err := svc.StartBatch(ctx, jobs.BatchRequest{Nodes: []jobs.BatchNodeRequest{long, stage("after", 0, "long")}, NotifyURL: recv.URL + "/hook?token=secret"})
	if err != nil {
		t.Fatal(err)
	}
	ev := server.Client.GetWorkflowHistory(ctx, bs.BatchID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	first, err := ev.Next()
	if err != nil {
		t.Fatal(err)
	}
	raw := first.GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()[0]
	var in workflows.BatchInput
	if enc := string(raw.GetMetadata()["encoding"]); enc != codec.Encoding || json.Unmarshal(raw.GetData(), &in) == nil {
		t.Fatalf("the batch's input in history is %q and reads as JSON: want it sealed (%s)", enc, codec.Encoding)
	}
	testenv.Eventually(t, time.Minute, "the running batch's node to report its progress", func() bool {
		st, err := svc.BatchStatus(ctx, bs.BatchID)
		if err != nil {
			t.Fatal(err)
		}
		n := st.Nodes[0]
		return st.Status == workflows.StatusRunning && n.Status == workflows.StatusRunning && n.Progress != nil && n.Progress.CellsTotal > 0
	})
	st, err := svc.CancelBatch(ctx, bs.BatchID, "codec test")
	if got := nodeStatuses(st); err != nil || st.Status != workflows.StatusCanceled || got["long"] != workflows.StatusCanceled || got["after"] != workflows.NodeSkipped {
		t.Fatalf("cancel: %s %v %v", st.Status, got, err)
	}
	testenv.Eventually(t, time.Minute, "the canceled batch's webhook", func() bool {
		st, err = svc.BatchStatus(ctx, bs.BatchID)
		return err == nil && st.Notification != nil && st.Notification.Status == workflows.NotifyDelivered
	})
	if want := notify.Redact(recv.URL + "/hook"); st.Notification.URL != want {
		t.Errorf("webhook URL %q, want %q (the sealed memo's, redacted)", st.Notification.URL, want)
	}

	gone, err := svc.StartBatch(ctx, jobs.BatchRequest{Name: "terminated", Nodes: []jobs.BatchNodeRequest{stage("long", 120)}})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, time.Minute, "the second batch to run its node", func() bool {
		st, err := svc.BatchStatus(ctx, gone.BatchID)
		return err == nil && nodeStatuses(st)["long"] == workflows.StatusRunning
	})
	if err := server.Client.TerminateWorkflow(ctx, gone.BatchID, "", "codec test"); err != nil {
		t.Fatal(err)
	}
	st, err = svc.BatchStatus(ctx, gone.BatchID)
	if err != nil || st.Status != workflows.StatusCanceled || st.Name != "terminated" || nodeStatuses(st)["long"] != workflows.StatusCanceled {
		t.Fatalf("terminated batch: %s %q %v %v; want CANCELED, its name and node read from its sealed input", st.Status, st.Name, nodeStatuses(st), err)
	}
}

// TestCodecWithoutKeyIsAClearError: a process without the key file reads
// an encrypted run's input as an error naming what to configure, never
// as garbage.
func TestCodecWithoutKeyIsAClearError(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	testenv.CopyFile(t, "testdata/stage.ipynb", dir)
	cfg := server.Config(t)
	svc := codecService(t, cfg, dir)
	started, err := svc.Start(ctx, jobs.StartRequest{Path: "stage.ipynb", Options: runopts.Options{Parameters: map[string]any{"name": "x"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.WaitEnded(ctx, started.JobID, 2*time.Minute, nil); err != nil {
		t.Fatal(err)
	}
	plain := *cfg
	plain.CodecKeyFile = ""
	keyless := dialService(t, &plain, dir, false)
	_, err = keyless.RerunRun(ctx, started.JobID)
	if err == nil || !strings.Contains(err.Error(), "no codec key") || !strings.Contains(err.Error(), "MILLRACE_CODEC_KEY_FILE") {
		t.Fatalf("rerun without the key: %v; want an error naming the missing key file", err)
	}
}

func codecLogText(l jobs.Logs) string {
	var b strings.Builder
	for _, line := range l.Lines {
		b.WriteString(line.Text + "\n")
	}
	return b.String()
}

// noSecret fails when any answer, as the MCP tools and CLI print it
// (JSON), holds the secret.
func noSecret(t *testing.T, secret string, answers ...any) {
	t.Helper()
	for _, a := range answers {
		b, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), secret) {
			t.Errorf("an answer shows the env value: %s", b)
		}
	}
}
