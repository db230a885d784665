//lint:file-ignore SA1019 this file drives the legacy MCP protocol (initialize, subscribe, the GET stream) on purpose: clients that still speak it must keep working.

package mcpserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	mcpgo "github.com/mark3labs/mcp-go/server"

	"millrace/internal/jobs"
	"millrace/internal/mcpserver"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// The URIs of a job's three resources.
func statusURI(jobID string) string { return "millrace://jobs/" + jobID }
func logsURI(jobID string) string   { return "millrace://jobs/" + jobID + "/logs" }
func outputURI(jobID string) string { return "millrace://jobs/" + jobID + "/output.ipynb" }

// newServer is a server of its own for e's job service, for tests that
// connect several clients to one server.
func (e *env) newServer() *mcpgo.MCPServer {
	return mcpserver.New(e.svc, mcpserver.Options{Logger: testenv.Logger(), ValidateOutput: true})
}

// startJob starts a notebook of e's root and returns its job id.
func startJob(t *testing.T, e *env, path string, params map[string]any) string {
	t.Helper()
	res, _ := call[mcpserver.StartNotebookResult](t, e.client, "start_notebook", map[string]any{"path": path, "parameters": params})
	return res.JobID
}

// startLongJob starts slow.ipynb for about a minute and waits until it
// runs its loop, the last but one of its code cells: from then on, its
// status and progress change only when the test cancels it.
func startLongJob(t *testing.T, e *env) string {
	t.Helper()
	id := startJob(t, e, "slow.ipynb", map[string]any{"steps": 600, "delay": 0.1})
	waitStatus(t, e.client, id, 2*time.Minute, id+" to run its loop cell", func(st jobs.Status) bool {
		if st.Ended() {
			t.Fatalf("job ended %s before it was seen running: %+v", st.Status, st.Error)
		}
		return st.Status == workflows.StatusRunning && st.Progress.CellsTotal > 1 && st.Progress.CurrentCell == st.Progress.CellsTotal-1
	})
	return id
}

func cancelJob(t *testing.T, e *env, jobID string) {
	t.Helper()
	call[jobs.Status](t, e.client, "cancel_job", map[string]any{"job_id": jobID})
}

// start initializes c and closes it when the test ends.
func start(t *testing.T, c *client.Client) *client.Client {
	t.Helper()
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ClientInfo = mcp.Implementation{Name: "millrace-resources-test", Version: "0"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// inProcess connects an in-process client to srv: by default on protocol
// 2026-07-28 (subscriptions/listen), as mcp-go's client does; legacy on
// 2025-11-25 (resources/subscribe).
func inProcess(t *testing.T, srv *mcpgo.MCPServer, legacy bool) *client.Client {
	t.Helper()
	var opts []client.ClientOption
	if legacy {
		opts = append(opts, client.WithLegacyProtocolOnly())
	}
	c, err := client.NewInProcessClientWithOptions(srv, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return start(t, c)
}

// overHTTP connects a streamable HTTP client to the server at url. A
// legacy client listens on the session's GET stream, where a stateful
// server sends notifications between requests.
func overHTTP(t *testing.T, url string, legacy bool) *client.Client {
	t.Helper()
	if legacy {
		return httpClient(t, url+mcpserver.EndpointPath, transport.WithContinuousListening())
	}
	return httpClient(t, url+mcpserver.EndpointPath)
}

// httpClient connects to endpoint with connections not kept alive, so a
// closed client leaves no connection goroutines behind. It takes
// transport and client options.
func httpClient(t *testing.T, endpoint string, opts ...any) *client.Client {
	t.Helper()
	topts := []transport.StreamableHTTPCOption{
		transport.WithHTTPBasicClient(&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}),
	}
	var copts []client.ClientOption
	for _, o := range opts {
		switch o := o.(type) {
		case transport.StreamableHTTPCOption:
			topts = append(topts, o)
		case client.ClientOption:
			copts = append(copts, o)
		default:
			t.Fatalf("httpClient: option %T", o)
		}
	}
	tr, err := transport.NewStreamableHTTP(endpoint, topts...)
	if err != nil {
		t.Fatal(err)
	}
	return start(t, client.NewClient(tr, copts...))
}

// overStdio connects a client to srv served over stdio (pipes). mcp-go's
// stdio session is one per process, so only one test may use it.
func overStdio(t *testing.T, srv *mcpgo.MCPServer, legacy bool) *client.Client {
	t.Helper()
	toServer, fromClient := io.Pipe()
	toClient, fromServer := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = mcpgo.NewStdioServer(srv).Listen(ctx, toServer, fromServer)
	}()
	t.Cleanup(func() {
		cancel()
		fromClient.Close()
		fromServer.Close()
		<-done
	})
	var opts []client.ClientOption
	if legacy {
		opts = append(opts, client.WithLegacyProtocolOnly())
	}
	return start(t, client.NewClient(transport.NewIO(toClient, fromClient, nil), opts...))
}

// updates records the notifications/resources/updated a client receives,
// and the acknowledgements of its subscriptions/listen requests.
type updates struct {
	mu   sync.Mutex
	uris []string
	acks int
}

func record(c *client.Client) *updates {
	u := &updates{}
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		u.mu.Lock()
		defer u.mu.Unlock()
		switch n.Method {
		case mcp.MethodNotificationResourceUpdated:
			uri, _ := n.Params.AdditionalFields["uri"].(string)
			u.uris = append(u.uris, uri)
		case mcp.MethodNotificationSubscriptionsAcknowledged:
			u.acks++
		}
	})
	return u
}

func (u *updates) count(uri string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, x := range u.uris {
		if x == uri {
			n++
		}
	}
	return n
}

func (u *updates) acked() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.acks
}

// waitCount waits until uri has been notified more than after times.
func (u *updates) waitCount(t *testing.T, uri string, after int) {
	t.Helper()
	testenv.Eventually(t, 2*time.Minute, "a notification for "+uri, func() bool { return u.count(uri) > after })
}

// subscribe subscribes c (on protocol 2025-11-25) to uris.
func subscribe(t *testing.T, c *client.Client, uris ...string) {
	t.Helper()
	for _, uri := range uris {
		req := mcp.SubscribeRequest{}
		req.Params.URI = uri
		if err := c.Subscribe(context.Background(), req); err != nil {
			t.Fatalf("subscribe %s: %v", uri, err)
		}
	}
}

// listen opens a subscriptions/listen stream (protocol 2026-07-28) for
// uris, waits for the server to acknowledge it, and returns what closes it.
func listen(t *testing.T, c *client.Client, u *updates, uris ...string) (stop func()) {
	t.Helper()
	acks := u.acked()
	errc := make(chan error, 1)
	stop, err := c.ListenAsync(context.Background(), mcp.SubscriptionFilter{ResourceSubscriptions: uris}, func(err error) { errc <- err })
	if err != nil {
		t.Fatalf("listen %v: %v", uris, err)
	}
	t.Cleanup(stop)
	testenv.Eventually(t, time.Minute, "the listen stream to be acknowledged", func() bool {
		select {
		case err := <-errc:
			t.Fatalf("listen %v: %v", uris, err)
		default:
		}
		return u.acked() > acks
	})
	return stop
}

// read reads a resource, which must have one text content.
func read(t *testing.T, c *client.Client, uri string) mcp.TextResourceContents {
	t.Helper()
	req := mcp.ReadResourceRequest{}
	req.Params.URI = uri
	res, err := c.ReadResource(context.Background(), req)
	if err != nil {
		t.Fatalf("read %s: %v", uri, err)
	}
	if len(res.Contents) != 1 {
		t.Fatalf("read %s: %d contents, want 1", uri, len(res.Contents))
	}
	tc, ok := res.Contents[0].(mcp.TextResourceContents)
	if !ok || tc.URI != uri {
		t.Fatalf("read %s: %+v", uri, res.Contents[0])
	}
	return tc
}

func readStatus(t *testing.T, c *client.Client, jobID string) jobs.Status {
	t.Helper()
	tc := read(t, c, statusURI(jobID))
	var st jobs.Status
	if err := json.Unmarshal([]byte(tc.Text), &st); err != nil || tc.MIMEType != "application/json" || st.JobID != jobID {
		t.Fatalf("status resource %s (%s): %v", tc.Text, tc.MIMEType, err)
	}
	return st
}

// readError reads uri, which must fail, and returns the error.
func readError(t *testing.T, c *client.Client, uri string) string {
	t.Helper()
	req := mcp.ReadResourceRequest{}
	req.Params.URI = uri
	res, err := c.ReadResource(context.Background(), req)
	if err == nil {
		t.Fatalf("read %s: got %+v, want an error", uri, res.Contents)
	}
	return err.Error()
}

// waitNotifiedStatus waits for a notification for jobID's status after
// which the status resource reads want, reading only after notifications.
func waitNotifiedStatus(t *testing.T, c *client.Client, u *updates, jobID string, seen int, want string) jobs.Status {
	t.Helper()
	var st jobs.Status
	testenv.Eventually(t, 2*time.Minute, "a notification after which "+jobID+" reads "+want, func() bool {
		n := u.count(statusURI(jobID))
		if n == seen {
			return false
		}
		seen = n
		st = readStatus(t, c, jobID)
		return st.Status == want
	})
	return st
}

// watching counts the goroutines watching jobID for subscribers: with
// goroutines, those of the watcher's polls too.
func watching(jobID string, withPolls bool) int {
	var b bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
	label := `"` + mcpserver.WatchLabel + `":"` + jobID + `"`
	n := 0
	for _, block := range strings.Split(b.String(), "\n\n") {
		m := regexp.MustCompile(`^(\d+) @`).FindStringSubmatch(block)
		if m == nil || !strings.Contains(block, label) {
			continue
		}
		if withPolls || strings.Contains(block, "mcpserver.(*watcher).run") {
			k, _ := strconv.Atoi(m[1])
			n += k
		}
	}
	return n
}

func waitNotWatched(t *testing.T, jobID string) {
	t.Helper()
	testenv.Eventually(t, time.Minute, "no goroutine left watching "+jobID, func() bool { return watching(jobID, true) == 0 })
}

// TestJobResourcesSubscribeReadAndEnd follows a job the way mcp-go's own
// client does (protocol 2026-07-28): subscribe to its three resources, read
// them, see the status change when the job is canceled, and the watcher
// gone once the job has ended.
func TestJobResourcesSubscribeReadAndEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t, slowNB)
	ctx := context.Background()

	templates, err := e.client.ListResourceTemplates(ctx, mcp.ListResourceTemplatesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	mimes := map[string]string{}
	for _, tpl := range templates.ResourceTemplates {
		mimes[tpl.URITemplate.Raw()] = tpl.MIMEType
	}
	if mimes["millrace://jobs/{job_id}"] != "application/json" || mimes["millrace://jobs/{job_id}/logs"] != "text/plain" || mimes["millrace://jobs/{job_id}/output.ipynb"] != "application/x-ipynb+json" || mimes["millrace://jobs/{job_id}/output.html"] != "text/html" {
		t.Fatalf("resource templates %v", mimes)
	}
	list, err := e.client.ListResources(ctx, mcp.ListResourcesRequest{})
	if err != nil || len(list.Resources) != 0 {
		t.Fatalf("resources/list: %+v, %v; want none (the templates say where jobs are)", list, err)
	}

	id := startLongJob(t, e)
	u := record(e.client)
	listen(t, e.client, u, statusURI(id), logsURI(id), outputURI(id))
	if n := watching(id, false); n != 1 {
		t.Fatalf("%d watchers of %s, want 1", n, id)
	}

	if st := readStatus(t, e.client, id); st.Status != workflows.StatusRunning || st.Progress.CellsTotal == 0 {
		t.Fatalf("status resource %+v", st)
	}
	testenv.Eventually(t, time.Minute, "the logs resource to show the loop's output", func() bool {
		tc := read(t, e.client, logsURI(id))
		if tc.MIMEType != "text/plain" || !strings.HasPrefix(tc.Text, id+" RUNNING: ") {
			t.Fatalf("logs resource (%s) %q", tc.MIMEType, tc.Text)
		}
		return strings.Contains(tc.Text, "\nstep 1\n")
	})
	nb := read(t, e.client, outputURI(id))
	var doc struct {
		NBFormat int `json:"nbformat"`
		Metadata struct {
			Papermill map[string]any `json:"papermill"`
		} `json:"metadata"`
		Cells []struct {
			CellType string `json:"cell_type"`
		} `json:"cells"`
	}
	if err := json.Unmarshal([]byte(nb.Text), &doc); err != nil || nb.MIMEType != "application/x-ipynb+json" || doc.NBFormat != 4 || doc.Metadata.Papermill == nil || len(doc.Cells) != 4 {
		t.Fatalf("output notebook resource (%s, %v): %.300s", nb.MIMEType, err, nb.Text)
	}

	seen, seenLogs, seenOutput := u.count(statusURI(id)), u.count(logsURI(id)), u.count(outputURI(id))
	cancelJob(t, e, id)
	st := waitNotifiedStatus(t, e.client, u, id, seen, workflows.StatusCanceled)
	if st.EndedAt == nil {
		t.Errorf("canceled status without an end time: %+v", st)
	}
	u.waitCount(t, logsURI(id), seenLogs)
	u.waitCount(t, outputURI(id), seenOutput)
	if tc := read(t, e.client, logsURI(id)); !strings.HasPrefix(tc.Text, id+" CANCELED: ") {
		t.Errorf("logs resource after the end: %.200q", tc.Text)
	}
	// The job ended: its watcher sent the last notification and stopped,
	// though the client is still subscribed.
	waitNotWatched(t, id)
}

// TestResourceProgressIsRateBounded follows a run of short cells over
// resources/subscribe (protocol 2025-11-25): the subscriber sees it move
// cell by cell, but no more often than one progress notification per
// mcpserver.ResourceProgressEvery.
func TestResourceProgressIsRateBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, progressNB)
	c := inProcess(t, e.newServer(), true)
	u := record(c)
	begin := time.Now()
	// Six code cells; the four step cells sleep 3 s each.
	id := startJob(t, e, "progress.ipynb", map[string]any{"delay": 3})
	subscribe(t, c, statusURI(id))
	var reads []jobs.Status
	seen := 0
	testenv.Eventually(t, 3*time.Minute, "a notification after which the run reads ended", func() bool {
		n := u.count(statusURI(id))
		if n == seen {
			return false
		}
		seen = n
		reads = append(reads, readStatus(t, c, id))
		return reads[len(reads)-1].Ended()
	})
	elapsed := time.Since(begin)
	waitNotWatched(t, id)
	n := u.count(statusURI(id))

	if last := reads[len(reads)-1]; last.Status != workflows.StatusSucceeded {
		t.Fatalf("last read %+v", last)
	}
	cells := map[string]bool{}
	for _, st := range reads {
		if st.Status == workflows.StatusRunning {
			cells[st.Progress.String()] = true
		}
	}
	if len(cells) < 2 {
		t.Errorf("reads after notifications saw the running job at %v; want it seen moving (at least two different cells)", cells)
	}
	// Status changes (PENDING to RUNNING, the end) are sent at once; at
	// most one progress notification per window of ResourceProgressEvery,
	// the windows running from the subscription to the end.
	windows := int(elapsed/mcpserver.ResourceProgressEvery) + 1
	if max := 2 + windows; n > max {
		t.Errorf("%d notifications in %s; want at most %d (2 status changes, one per %s window)", n, elapsed.Round(time.Second), max, mcpserver.ResourceProgressEvery)
	}
	t.Logf("%d notifications in %s, reads saw %d distinct progress states while running", n, elapsed.Round(time.Second), len(cells))
}

// TestResourceSubscriptionTransports subscribes to one job from sessions
// on every transport and both protocol versions: all share one watcher,
// all are notified when the job is canceled and read the new status
// through their own transport. Stateless HTTP has no stream to notify
// on, and says so.
func TestResourceSubscriptionTransports(t *testing.T) {
	t.Parallel()
	e := newEnv(t, slowNB)
	srv := e.newServer()
	web := httptest.NewServer(mcpserver.HTTPHandler(srv, mcpserver.HTTPOptions{Logger: testenv.Logger()}))
	t.Cleanup(web.Close)
	id := startLongJob(t, e)

	type session struct {
		name string
		c    *client.Client
		u    *updates
	}
	sessions := []*session{
		{name: "stdio, resources/subscribe", c: overStdio(t, srv, true)},
		{name: "streamable HTTP, resources/subscribe", c: overHTTP(t, web.URL, true)},
		{name: "streamable HTTP, subscriptions/listen", c: overHTTP(t, web.URL, false)},
		{name: "in-process, resources/subscribe", c: inProcess(t, srv, true)},
		{name: "in-process, subscriptions/listen", c: inProcess(t, srv, false)},
	}
	for _, s := range sessions {
		s.u = record(s.c)
		if strings.HasSuffix(s.name, "listen") {
			listen(t, s.c, s.u, statusURI(id))
		} else {
			subscribe(t, s.c, statusURI(id))
		}
	}
	if n := watching(id, false); n != 1 {
		t.Fatalf("%d watchers of %s for %d sessions, want 1", n, id, len(sessions))
	}
	cancelJob(t, e, id)
	for _, s := range sessions {
		t.Run(s.name, func(t *testing.T) {
			st := waitNotifiedStatus(t, s.c, s.u, id, 0, workflows.StatusCanceled)
			if st.EndedAt == nil {
				t.Errorf("status %+v", st)
			}
		})
	}
	waitNotWatched(t, id)

	// A stateless server has no stream to send a 2025-11-25 session
	// anything between requests.
	stateless := httptest.NewServer(mcpgo.NewStreamableHTTPServer(srv, mcpgo.WithStateLess(true)))
	t.Cleanup(stateless.Close)
	c := httpClient(t, stateless.URL, client.WithLegacyProtocolOnly())
	req := mcp.SubscribeRequest{}
	req.Params.URI = statusURI(id)
	if err := c.Subscribe(context.Background(), req); err == nil || !strings.Contains(err.Error(), "stateless") {
		t.Errorf("subscribe over stateless HTTP: %v, want an error that says it is stateless", err)
	}
}

// TestResourceUnsubscribe checks that a session that unsubscribed, or
// closed its listen stream, is sent nothing more about the job, while
// others still are. Notifications to one session arrive in order, so a
// later job's notification is the barrier after which an earlier one
// would have arrived.
func TestResourceUnsubscribe(t *testing.T) {
	t.Parallel()
	e := newEnv(t, slowNB)
	srv := e.newServer()
	x, y := startLongJob(t, e), startLongJob(t, e)

	control := inProcess(t, srv, false)
	cu := record(control)
	listen(t, control, cu, statusURI(x))

	legacy := inProcess(t, srv, true)
	lu := record(legacy)
	subscribe(t, legacy, statusURI(x), statusURI(y))
	unsub := mcp.UnsubscribeRequest{}
	unsub.Params.URI = statusURI(x)
	if err := legacy.Unsubscribe(context.Background(), unsub); err != nil {
		t.Fatal(err)
	}

	modern := inProcess(t, srv, false)
	mu := record(modern)
	stop := listen(t, modern, mu, statusURI(x), statusURI(y))
	stop()
	listen(t, modern, mu, statusURI(y))

	cancelJob(t, e, x)
	waitNotifiedStatus(t, control, cu, x, 0, workflows.StatusCanceled)
	waitNotWatched(t, x)
	cancelJob(t, e, y)
	waitNotifiedStatus(t, legacy, lu, y, 0, workflows.StatusCanceled)
	waitNotifiedStatus(t, modern, mu, y, 0, workflows.StatusCanceled)
	if n := lu.count(statusURI(x)); n != 0 {
		t.Errorf("the session that unsubscribed from %s was sent %d notifications", x, n)
	}
	if n := mu.count(statusURI(x)); n != 0 {
		t.Errorf("the listen stream closed on %s was sent %d notifications", x, n)
	}
}

// TestResourceErrors: an unknown job, a malformed URI or a resource that
// cannot be followed is an MCP error that says what is wrong, for a read
// and for a subscription alike.
func TestResourceErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := inProcess(t, e.newServer(), true)
	const unknown = "nb-00000000-0000-0000-0000-000000000000"
	for uri, want := range map[string]string{
		statusURI(unknown):                  `no job "` + unknown + `"`,
		logsURI(unknown):                    `no job "` + unknown + `"`,
		outputURI(unknown):                  `no job "` + unknown + `"`,
		"millrace://jobs/not-a-job":         `"not-a-job" is not a job id`,
		"millrace://jobs/" + unknown + "/x": "resource not found",
	} {
		if msg := readError(t, c, uri); !strings.Contains(msg, want) {
			t.Errorf("read %s: %q, want it to say %q", uri, msg, want)
		}
	}
	for uri, want := range map[string]string{
		statusURI(unknown):                             `no job "` + unknown + `"`,
		"millrace://jobs/not-a-job/logs":               `"not-a-job" is not a job id`,
		"millrace://jobs/" + unknown + "/cells/1/text": "is not a job resource: use millrace://jobs/{job_id}",
		"file:///etc/passwd":                           "is not a job resource",
	} {
		req := mcp.SubscribeRequest{}
		req.Params.URI = uri
		if err := c.Subscribe(context.Background(), req); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("subscribe %s: %v, want it to say %q", uri, err, want)
		}
	}
	// On protocol 2026-07-28 the listen request is refused as a whole.
	modern := inProcess(t, e.newServer(), false)
	err := modern.Listen(context.Background(), mcp.SubscriptionFilter{ResourceSubscriptions: []string{statusURI(unknown)}})
	if err == nil || !strings.Contains(err.Error(), `no job "`+unknown+`"`) {
		t.Errorf("listen to an unknown job: %v", err)
	}
}

// TestResourceSubscribersLeaveNoGoroutines checks that a job's watcher
// stops when its last subscriber unsubscribes, then subscribes many
// sessions to the running job, over every transport but stdio, and ends
// the sessions without unsubscribing: the watcher stops (the job still
// runs) and the process is back to the goroutines it had. Not parallel, so
// other tests' goroutines do not blur the count.
func TestResourceSubscribersLeaveNoGoroutines(t *testing.T) {
	e := newEnv(t, slowNB)
	srv := e.newServer()
	web := httptest.NewServer(mcpserver.HTTPHandler(srv, mcpserver.HTTPOptions{Logger: testenv.Logger()}))
	defer web.Close()
	id := startLongJob(t, e)

	// Unsubscribing its only subscriber stops the job's watcher.
	first := inProcess(t, srv, true)
	subscribe(t, first, statusURI(id), outputURI(id))
	// The watcher's goroutine carries its label once it runs, which may be
	// a moment after the subscribe answered (its first status read may come
	// from the job service's cache, without a wait).
	testenv.Eventually(t, 30*time.Second, "one watcher of "+id, func() bool { return watching(id, false) == 1 })
	if n := watching(id, false); n != 1 {
		t.Fatalf("%d watchers of %s, want 1", n, id)
	}
	for _, uri := range []string{statusURI(id), outputURI(id)} {
		req := mcp.UnsubscribeRequest{}
		req.Params.URI = uri
		if err := first.Unsubscribe(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	waitNotWatched(t, id)
	first.Close()

	runtime.GC()
	before := runtime.NumGoroutine()

	const perKind = 8
	var closers []func()
	for i := 0; i < perKind; i++ {
		for _, kind := range []string{"in-process subscribe", "in-process listen", "http subscribe", "http listen"} {
			var c *client.Client
			switch kind {
			case "in-process subscribe":
				c = inProcess(t, srv, true)
			case "in-process listen":
				c = inProcess(t, srv, false)
			case "http subscribe":
				c = overHTTP(t, web.URL, true)
			case "http listen":
				c = overHTTP(t, web.URL, false)
			}
			u := record(c)
			stop := func() {}
			if strings.HasSuffix(kind, "listen") {
				stop = listen(t, c, u, statusURI(id), logsURI(id))
			} else {
				subscribe(t, c, statusURI(id), logsURI(id))
			}
			// A listen stream ends with its request: the client closes
			// it, as it does when it disconnects.
			closers = append(closers, func() { stop(); c.Close() })
		}
	}
	if n := watching(id, false); n != 1 {
		t.Fatalf("%d watchers of %s for %d sessions, want 1", n, id, 4*perKind)
	}
	during := runtime.NumGoroutine()
	for _, close := range closers {
		close()
	}
	waitNotWatched(t, id)
	// Goroutines of the Temporal client and worker come and go a little;
	// a leak per session would be 32 or more.
	const slack = 4
	testenv.Eventually(t, time.Minute, "the goroutines to be back to where they were", func() bool {
		runtime.GC()
		return runtime.NumGoroutine() <= before+slack
	})
	t.Logf("goroutines: %d before, %d with %d subscribed sessions, %d after they ended", before, during, 4*perKind, runtime.NumGoroutine())
	if st, _ := call[jobs.Status](t, e.client, "get_job_status", map[string]any{"job_id": id}); st.Status != workflows.StatusRunning {
		t.Fatalf("the job is %s: the watcher may have stopped because it ended, not because its subscribers left", st.Status)
	}
	cancelJob(t, e, id)
}
