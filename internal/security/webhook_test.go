package security_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"

	"millrace/internal/notify"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// hookReceiver is a webhook endpoint on 127.0.0.1 that answers code with
// body and keeps what it received.
type hookReceiver struct {
	*httptest.Server
	mu   sync.Mutex
	got  []hookRequest
	code int
	body string
}

type hookRequest struct {
	header http.Header
	body   []byte
}

func newHookReceiver(t *testing.T, code int, body string) *hookReceiver {
	r := &hookReceiver{code: code, body: body}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, hookRequest{req.Header.Clone(), b})
		r.mu.Unlock()
		w.WriteHeader(r.code)
		_, _ = io.WriteString(w, r.body)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *hookReceiver) requests() []hookRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hookRequest(nil), r.got...)
}

func (r *hookReceiver) port() string {
	u, _ := url.Parse(r.URL)
	return u.Port()
}

// waitNotification polls get_job_status until the job's webhook record
// satisfies ok, and returns the whole status as JSON text too.
func waitNotification(t *testing.T, c *client.Client, jobID string, ok func(n map[string]any) bool) (map[string]any, string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		st, msg := callTool(t, c, "get_job_status", map[string]any{"job_id": jobID})
		if msg != "" {
			t.Fatal(msg)
		}
		if n, _ := st["notification"].(map[string]any); n != nil && ok(n) {
			b, _ := json.Marshal(st)
			return n, string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the webhook of %s never got there: %v", jobID, st)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestWebhookToLoopbackName: notify_url names "localhost", which the
// allow-list permits by name, but which resolves to 127.0.0.1. The
// secret in its path and query must not reach any client either.
func TestWebhookToLoopbackName(t *testing.T) {
	o := attack(t, "a notify_url whose allowed host name resolves to 127.0.0.1 (SSRF to a local service), carrying a secret in its path and query")
	t.Parallel()
	recv := newHookReceiver(t, http.StatusOK, "")
	root := t.TempDir()
	nb := testenv.WriteNotebook(t, root, "n.ipynb", "print(1)")
	cfg := server.Config(t)
	cfg.NotifyAllow, cfg.NotifySecret = []string{"localhost"}, "hook-secret"
	server.StartWorker(t, cfg)
	p := startMCP(t, cfg, root, "--notify-allow", "localhost")
	c := mcpClient(t, p.url, nil, false)

	hook := "http://localhost:" + recv.port() + "/hooks/PATH-SECRET-1?key=QUERY-SECRET-2"
	res, msg := callTool(t, c, "start_notebook", map[string]any{"path": nb, "notify_url": hook})
	if msg != "" {
		t.Fatal(msg)
	}
	jobID, _ := res["job_id"].(string)
	n, whole := waitNotification(t, c, jobID, func(n map[string]any) bool {
		e, _ := n["error"].(string)
		return strings.Contains(e, "refused")
	})
	errText, _ := n["error"].(string)
	if !strings.Contains(errText, "refused to connect to 127.0.0.1, a loopback address") || !strings.Contains(errText, notify.AllowPrivateEnv) {
		t.Errorf("notification error %q, want the dial refused, naming %s", errText, notify.AllowPrivateEnv)
	}
	if got := len(recv.requests()); got != 0 {
		t.Fatalf("the receiver on 127.0.0.1 got %d requests", got)
	}
	if want := "http://localhost:" + recv.port() + "/…"; n["url"] != want {
		t.Errorf("notification url %q, want %q", n["url"], want)
	}
	list, msg := callTool(t, c, "list_jobs", map[string]any{})
	if msg != "" {
		t.Fatal(msg)
	}
	lb, _ := json.Marshal(list)
	for _, shown := range []string{whole, string(lb)} {
		if strings.Contains(shown, "SECRET") {
			t.Errorf("a client sees the notify_url's secret: %s", shown)
		}
	}
	_, why, _ := strings.Cut(errText, "…: ")
	o.saw("refused at dial time (%q); the receiver got nothing; status and list show only %v", why, n["url"])
}

// TestWebhookReceiverAnswer: the receiver (an internal service, or an
// attacker's) answers with a body meant for the clients; and a delivery's
// signature must bind its timestamp, so a captured delivery cannot be
// replayed later as new.
func TestWebhookReceiverAnswer(t *testing.T) {
	o := attack(t, "a webhook receiver's reply body reaching clients through the job status; a captured delivery replayed later")
	t.Parallel()
	talker := newHookReceiver(t, http.StatusBadRequest, "RECEIVER-INTERNAL-DATA: db password is hunter2")
	good := newHookReceiver(t, http.StatusOK, "")
	root := t.TempDir()
	nb := testenv.WriteNotebook(t, root, "n.ipynb", "print(1)")
	cfg := server.Config(t)
	const secret = "hook-secret"
	// The receivers are on loopback: the operator allows exactly that.
	cfg.NotifyAllow, cfg.NotifySecret, cfg.NotifyAllowPrivate = []string{"127.0.0.1"}, secret, []string{"127.0.0.1/32"}
	server.StartWorker(t, cfg)
	p := startMCP(t, cfg, root, "--notify-allow", "127.0.0.1")
	c := mcpClient(t, p.url, nil, false)

	jobs := map[*hookReceiver]string{}
	for _, r := range []*hookReceiver{talker, good} {
		res, msg := callTool(t, c, "start_notebook", map[string]any{"path": nb, "notify_url": r.URL + "/hook"})
		if msg != "" {
			t.Fatal(msg)
		}
		jobs[r], _ = res["job_id"].(string)
	}
	n, whole := waitNotification(t, c, jobs[talker], func(n map[string]any) bool { return n["status"] == workflows.NotifyFailed })
	if strings.Contains(whole, "RECEIVER-INTERNAL") || strings.Contains(whole, "hunter2") {
		t.Errorf("the receiver's body reached the status: %s", whole)
	}
	if e, _ := n["error"].(string); !strings.Contains(e, "400 Bad Request") {
		t.Errorf("notification error %q, want the status code", e)
	}

	waitNotification(t, c, jobs[good], func(n map[string]any) bool { return n["status"] == workflows.NotifyDelivered })
	reqs := good.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d deliveries, want 1", len(reqs))
	}
	h, body := reqs[0].header, reqs[0].body
	ts := h.Get(notify.TimestampHeader)
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		t.Fatalf("%s %q: want the delivery's time in Unix seconds", notify.TimestampHeader, ts)
	}
	// Checked with the standard library, not millrace's Verify.
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + string(body)))
	if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); h.Get(notify.SignatureHeader) != want {
		t.Fatalf("signature %q, want HMAC-SHA256(timestamp.body) %q", h.Get(notify.SignatureHeader), want)
	}
	bodyOnly := hmac.New(sha256.New, []byte(secret))
	bodyOnly.Write(body)
	if h.Get(notify.SignatureHeader) == "sha256="+hex.EncodeToString(bodyOnly.Sum(nil)) {
		t.Fatal("the signature does not cover the timestamp")
	}
	o.saw("status shows %q, never the body; deliveries carry %s and the signature is HMAC-SHA256 of timestamp.body", n["error"], notify.TimestampHeader)
}
