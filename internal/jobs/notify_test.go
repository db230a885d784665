package jobs_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"millrace/internal/jobs"
	"millrace/internal/notify"
	"millrace/internal/runopts"
	"millrace/internal/testenv"
	"millrace/workflows"
)

const hookSecret = "s3cret-for-tests"

// receiver is a webhook endpoint on loopback that answers each request
// with the next code of its script (the last one repeats), and keeps what
// it received.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	script   []int
	requests []received
}

type received struct {
	code     int
	body     []byte
	header   http.Header
	verified bool
}

func newReceiver(t *testing.T, script ...int) *receiver {
	r := &receiver{script: script}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		code := r.script[min(len(r.requests), len(r.script)-1)]
		r.requests = append(r.requests, received{code: code, body: body, header: req.Header.Clone(),
			verified: notify.Verify([]byte(hookSecret), req.Header.Get(notify.TimestampHeader), body, req.Header.Get(notify.SignatureHeader))})
		r.mu.Unlock()
		w.WriteHeader(code)
		_, _ = io.WriteString(w, http.StatusText(code))
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) got() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.requests...)
}

// notifySetup is a worker and service that allow the receivers' host and
// sign with hookSecret.
func notifySetup(t *testing.T) (*jobs.Service, string) {
	t.Helper()
	dir := t.TempDir()
	testenv.CopyFile(t, "testdata/stage.ipynb", dir)
	cfg := server.Config(t)
	cfg.NotifyAllow = []string{"127.0.0.1"}
	// The receivers are on loopback, which webhooks may reach only when
	// the operator allows it.
	cfg.NotifyAllowPrivate = []string{"127.0.0.1"}
	cfg.NotifySecret = hookSecret
	server.StartWorker(t, cfg)
	return server.Service(t, cfg, dir), dir
}

func waitNotification(t *testing.T, svc *jobs.Service, jobID, want string) jobs.Status {
	t.Helper()
	var st jobs.Status
	testenv.Eventually(t, 3*time.Minute, "the webhook of "+jobID+" to be "+want, func() bool {
		var err error
		if st, err = svc.Status(context.Background(), jobID); err != nil {
			t.Fatal(err)
		}
		return st.Notification != nil && st.Notification.Status == want
	})
	return st
}

// TestWebhookRetriedUntilDelivered: the receiver is down (503) for the
// first two attempts; the third gets exactly one signed delivery, and
// the job's status records it.
func TestWebhookRetriedUntilDelivered(t *testing.T) {
	svc, _ := notifySetup(t)
	recv := newReceiver(t, 503, 503, 200)
	ctx := context.Background()
	started, err := svc.Start(ctx, jobs.StartRequest{Path: "stage.ipynb", Options: runopts.Options{Parameters: map[string]any{"sleep": 0}}, Job: runopts.Job{NotifyURL: recv.URL + "/hooks/millrace?team=ml"}})
	if err != nil {
		t.Fatal(err)
	}
	st := waitNotification(t, svc, started.JobID, workflows.NotifyDelivered)
	if st.Status != workflows.StatusSucceeded {
		t.Fatalf("run status %s, want SUCCEEDED", st.Status)
	}
	if st.Notification.Attempts != 3 {
		t.Errorf("notification attempts = %d, want 3", st.Notification.Attempts)
	}
	reqs := recv.got()
	if len(reqs) != 3 {
		t.Fatalf("receiver got %d requests, want 3 (two refused, one delivered)", len(reqs))
	}
	var delivered []received
	for _, r := range reqs {
		if !r.verified {
			t.Errorf("request with a bad signature %q", r.header.Get(notify.SignatureHeader))
		}
		if r.header.Get(notify.DeliveryHeader) != reqs[0].header.Get(notify.DeliveryHeader) || r.header.Get(notify.DeliveryHeader) == "" {
			t.Errorf("delivery id changed between attempts: %q vs %q", r.header.Get(notify.DeliveryHeader), reqs[0].header.Get(notify.DeliveryHeader))
		}
		if r.code == 200 {
			delivered = append(delivered, r)
		}
	}
	if len(delivered) != 1 {
		t.Fatalf("%d deliveries accepted, want exactly 1", len(delivered))
	}
	var p workflows.NotifyPayload
	if err := json.Unmarshal(delivered[0].body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Event != "run.ended" || p.JobID != started.JobID || p.Status != workflows.StatusSucceeded || p.OutputPath != started.OutputPath || p.Duration <= 0 || p.Error != nil {
		t.Errorf("payload = %+v", p)
	}
	if delivered[0].header.Get(notify.EventHeader) != "run.ended" || delivered[0].header.Get("Content-Type") != "application/json" {
		t.Errorf("headers = %v", delivered[0].header)
	}
	server.ReplayHistory(t, started.JobID, "notebook_run_notified")
	server.ReplayHistory(t, workflows.NotifyID(started.JobID, 0), "notify_delivered")
}

// TestWebhookRejectedIsRecorded: a receiver that answers 404 is not
// retried; the job stays FAILED for its own reason, and its status says
// the webhook failed and why.
func TestWebhookRejectedIsRecorded(t *testing.T) {
	svc, _ := notifySetup(t)
	recv := newReceiver(t, 404)
	started, err := svc.Start(context.Background(), jobs.StartRequest{
		Path:    "stage.ipynb",
		Options: runopts.Options{Parameters: map[string]any{"sleep": 0, "fail": true}},
		Job:     runopts.Job{NotifyURL: recv.URL},
	})
	if err != nil {
		t.Fatal(err)
	}
	st := waitNotification(t, svc, started.JobID, workflows.NotifyFailed)
	if st.Status != workflows.StatusFailed {
		t.Errorf("run status %s, want FAILED (the notebook raises)", st.Status)
	}
	if !strings.Contains(st.Notification.Error, "404") || st.Notification.Attempts != 1 {
		t.Errorf("notification = %+v, want one attempt failing with 404", st.Notification)
	}
	reqs := recv.got()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want 1: a 404 is not retried", len(reqs))
	}
	var p workflows.NotifyPayload
	if err := json.Unmarshal(reqs[0].body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Status != workflows.StatusFailed || p.Error == nil || p.Error.EName != "RuntimeError" {
		t.Errorf("payload = %+v, want FAILED with the cell's RuntimeError", p)
	}
	server.ReplayHistory(t, workflows.NotifyID(started.JobID, 0), "notify_rejected")
}

// TestWebhookPendingShowsLastError: while the receiver is down, the job's
// status says the delivery is pending, with the last attempt's error.
func TestWebhookPendingShowsLastError(t *testing.T) {
	svc, _ := notifySetup(t)
	recv := newReceiver(t, 503)
	started, err := svc.Start(context.Background(), jobs.StartRequest{Path: "stage.ipynb", Options: runopts.Options{Parameters: map[string]any{"sleep": 0}}, Job: runopts.Job{NotifyURL: recv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	var st jobs.Status
	testenv.Eventually(t, 3*time.Minute, "a pending webhook with its error", func() bool {
		if st, err = svc.Status(context.Background(), started.JobID); err != nil {
			t.Fatal(err)
		}
		return st.Notification != nil && st.Notification.Status == workflows.NotifyPending && strings.Contains(st.Notification.Error, "503")
	})
	if st.Status != workflows.StatusSucceeded {
		t.Errorf("run status %s while its webhook is retried, want SUCCEEDED", st.Status)
	}
	cancelNotify(t, started.JobID)
}

// cancelNotify ends a delivery a test leaves retrying.
func cancelNotify(t *testing.T, jobID string) {
	_ = server.Client.TerminateWorkflow(context.Background(), workflows.NotifyID(jobID, 0), "", "test over")
}

// TestBatchWebhook: a batch's webhook lists its nodes.
func TestBatchWebhook(t *testing.T) {
	svc, _ := notifySetup(t)
	recv := newReceiver(t, 204)
	started, err := svc.StartBatch(context.Background(), jobs.BatchRequest{
		Name: "hooked", NotifyURL: recv.URL, Priority: "high",
		Nodes: []jobs.BatchNodeRequest{stage("a", 0), stage("b", 0, "a")},
	})
	if err != nil {
		t.Fatal(err)
	}
	st := waitBatch(t, svc, started.BatchID)
	if st.Status != workflows.StatusSucceeded || st.Priority != "high" {
		t.Fatalf("batch %s priority %s", st.Status, st.Priority)
	}
	testenv.Eventually(t, time.Minute, "the batch webhook", func() bool {
		st, err = svc.BatchStatus(context.Background(), started.BatchID)
		return err == nil && st.Notification != nil && st.Notification.Status == workflows.NotifyDelivered
	})
	reqs := recv.got()
	if len(reqs) != 1 || !reqs[0].verified {
		t.Fatalf("receiver got %d requests (verified: %v), want 1 signed", len(reqs), len(reqs) > 0 && reqs[0].verified)
	}
	var p workflows.NotifyPayload
	if err := json.Unmarshal(reqs[0].body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Event != "batch.ended" || p.JobID != started.BatchID || p.Name != "hooked" || len(p.Nodes) != 2 || p.Nodes[1].Status != workflows.StatusSucceeded {
		t.Errorf("payload = %+v", p)
	}
	server.ReplayHistory(t, started.BatchID, "batch_notified")
	node, err := svc.Status(context.Background(), started.Nodes[0].JobID)
	if err != nil || node.Priority != "high" || node.Notification != nil {
		t.Errorf("node: priority %q notification %+v err %v; want high and no webhook of its own", node.Priority, node.Notification, err)
	}
}

// TestWebhookURLChecked: notify_url must be http(s), without credentials,
// to an allowed host; a refused URL starts nothing.
func TestWebhookURLChecked(t *testing.T) {
	svc, _ := notifySetup(t)
	for url, want := range map[string]string{
		"ftp://127.0.0.1/x":             "only http and https",
		"http://user:pw@127.0.0.1/x":    "credentials",
		"http://169.254.169.254/latest": "not in the allow-list",
		"not a url":                     "only http and https",
		"http:///nohost":                "no host",
	} {
		_, err := svc.Start(context.Background(), jobs.StartRequest{Path: "stage.ipynb", Job: runopts.Job{NotifyURL: url}})
		if err == nil || !jobs.IsUserError(err) || !strings.Contains(err.Error(), want) {
			t.Errorf("notify_url %q: error %v, want a user error with %q", url, err, want)
		}
	}
	svc.NotifyAllow = nil
	_, err := svc.Start(context.Background(), jobs.StartRequest{Path: "stage.ipynb", Job: runopts.Job{NotifyURL: "http://127.0.0.1:9/x"}})
	if err == nil || !strings.Contains(err.Error(), "MILLRACE_NOTIFY_ALLOW") {
		t.Errorf("with no allow-list: %v, want the setting named", err)
	}
	list, err := svc.List(context.Background(), jobs.ListRequest{})
	if err != nil || len(list.Jobs) != 0 {
		t.Errorf("refused starts left %d jobs (%v)", len(list.Jobs), err)
	}
}
