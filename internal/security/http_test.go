//lint:file-ignore SA1019 this file drives the legacy MCP protocol (initialize, subscribe, the GET stream) on purpose: clients that still speak it must keep working.

package security_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"go.temporal.io/api/workflowservice/v1"

	"millrace/internal/config"
	"millrace/internal/listen"
	"millrace/internal/mcpserver"
	"millrace/internal/testenv"
)

// mcpProcess is the real millrace-mcp binary serving streamable HTTP on
// loopback without a token, pointed at the shared server.
type mcpProcess struct {
	cmd    *exec.Cmd
	url    string // http://127.0.0.1:<port>/mcp
	origin string // http://127.0.0.1:<port>
	stderr *testenv.SyncBuffer
}

var servingMCP = regexp.MustCompile(`serving MCP over streamable HTTP at (http://(127\.0\.0\.1:\d+)/mcp)`)

// startMCP starts millrace-mcp for cfg's task queue and data dir, with
// root as its only root. It stops with the test.
func startMCP(t *testing.T, cfg *config.Config, root string, extra ...string) *mcpProcess {
	t.Helper()
	args := append([]string{"--http", "127.0.0.1:0", "--task-queue", cfg.TaskQueue, "--data-dir", cfg.DataDir,
		"--roots", root, "--log-level", "error"}, extra...)
	p := &mcpProcess{cmd: exec.Command(bin["millrace-mcp"], args...), stderr: &testenv.SyncBuffer{}}
	p.cmd.Env = append(environWithout("MILLRACE_MCP_TOKEN", "TEMPORAL_ADDRESS"), "TEMPORAL_ADDRESS="+server.Address)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-exited
		}
	})
	testenv.Eventually(t, time.Minute, "millrace-mcp to serve HTTP", func() bool {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("millrace-mcp exited: %v\n%s", err, p.stderr)
		default:
		}
		if m := servingMCP.FindStringSubmatch(p.stderr.String()); m != nil {
			p.url, p.origin = m[1], "http://"+m[2]
			return true
		}
		return false
	})
	return p
}

// memory is the process's resident set now and its peak so far, in bytes
// (/proc/<pid>/status VmRSS and VmHWM).
func (p *mcpProcess) memory(t *testing.T) (rss, peak int64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			peak = kb << 10
		}
	}
	return rss, peak
}

func environWithout(names ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		keep := true
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				keep = false
			}
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}

// mcpClient is an initialized MCP client of url, sending headers: on the
// newest protocol, or with legacy on 2025-11-25, whose session has the
// long-lived GET event stream.
func mcpClient(t *testing.T, url string, headers map[string]string, legacy bool, opts ...transport.StreamableHTTPCOption) *client.Client {
	t.Helper()
	opts = append(opts, transport.WithHTTPHeaders(headers))
	tr, err := transport.NewStreamableHTTP(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	var copts []client.ClientOption
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	if legacy {
		copts = append(copts, client.WithLegacyProtocolOnly())
		init.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
	}
	c := client.NewClient(tr, copts...)
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	init.Params.ClientInfo = mcp.Implementation{Name: "attack", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatalf("initialize %s: %v", url, err)
	}
	return c
}

// callTool calls tool and returns its structured result, or its error
// text when it is a tool error.
func callTool(t *testing.T, c *client.Client, tool string, args map[string]any) (map[string]any, string) {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = tool, args
	res, err := c.CallTool(context.Background(), req)
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	if res.IsError {
		var msg []string
		for _, ct := range res.Content {
			if tc, ok := ct.(mcp.TextContent); ok {
				msg = append(msg, tc.Text)
			}
		}
		return nil, strings.Join(msg, " ")
	}
	b, _ := json.Marshal(res.StructuredContent)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out, ""
}

// workflowsOn counts the workflows ever started on a task queue.
func workflowsOn(t *testing.T, queue string) int {
	t.Helper()
	resp, err := server.Client.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
		Namespace: "default", Query: fmt.Sprintf("TaskQueue = '%s'", queue),
	})
	if err != nil {
		t.Fatal(err)
	}
	return len(resp.GetExecutions())
}

const mib = 1 << 20

// checkGrowth fails t when a process's peak resident set grew more than
// bound over what it was before the attack.
func checkGrowth(t *testing.T, before, peak, bound int64) {
	t.Helper()
	if peak-before > bound {
		t.Fatalf("peak resident set %d MiB, %d MiB over %d MiB before: want under %d MiB growth", peak/mib, (peak-before)/mib, before/mib, bound/mib)
	}
}

// TestHugeRequestBody streams a 200 MB body (no Content-Length, so the
// server must count as it reads) to millrace-mcp's HTTP port.
func TestHugeRequestBody(t *testing.T) {
	o := attack(t, "POST a 200 MB body to the MCP HTTP server to exhaust its memory")
	t.Parallel()
	cfg := server.Config(t)
	p := startMCP(t, cfg, t.TempDir())
	before, _ := p.memory(t)

	conn, err := net.Dial("tcp", strings.TrimPrefix(p.origin, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /mcp HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n", strings.TrimPrefix(p.origin, "http://"))
	sent := make(chan int64, 1)
	go func() {
		chunk := []byte(strings.Repeat("x", 1<<16))
		var n int64
		for n < 200*mib {
			if _, err := fmt.Fprintf(conn, "%x\r\n%s\r\n", len(chunk), chunk); err != nil {
				break
			}
			n += int64(len(chunk))
		}
		sent <- n
	}()
	_ = conn.SetReadDeadline(time.Now().Add(time.Minute))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to the oversized body: %v", err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	conn.Close()
	n := <-sent
	_, peak := p.memory(t)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), fmt.Sprintf("at most %d bytes", mcpserver.MaxRequestBytes)) {
		t.Fatalf("answer %d %q, want 413 naming the limit", resp.StatusCode, body)
	}
	// The bound: the body is held up to MaxRequestBytes (4 MiB), plus
	// buffers; 64 MiB over the resident set before is far below the
	// 420 MB the same POST cost without a limit.
	const bound = 64 * mib
	checkGrowth(t, before, peak, bound)
	// And a declared Content-Length over the limit is refused before
	// anything is read.
	req, _ := http.NewRequest(http.MethodPost, p.url, io.LimitReader(zeros{}, 200*mib))
	req.ContentLength = 200 * mib
	req.Header.Set("Content-Type", "application/json")
	resp2, err := http.DefaultClient.Do(req)
	if err == nil {
		resp2.Body.Close()
		if resp2.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("Content-Length 200 MiB: %d, want 413", resp2.StatusCode)
		}
	}
	o.saw("HTTP 413 %q after %d MiB sent; peak RSS %d MiB (%d MiB before; bound: +%d MiB)", strings.TrimSpace(string(body)), n/mib, peak/mib, before/mib, bound/mib)
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestCrossOriginPost: a web page (on another site, or on another port of
// this machine) posts a tools/call to the MCP HTTP server, which has no
// token. Browsers send text/plain without a preflight; application/json
// is tried too.
func TestCrossOriginPost(t *testing.T) {
	o := attack(t, "a web page (https://attacker.example, or http://localhost:9999) POSTs start_notebook to the token-less MCP HTTP server")
	t.Parallel()
	root := t.TempDir()
	nb := testenv.WriteNotebook(t, root, "hello.ipynb", "print('hello')")
	cfg := server.Config(t)
	p := startMCP(t, cfg, root)
	call := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"start_notebook","arguments":{"path":%q}}}`, nb)
	var seen []string
	for _, origin := range []string{"https://attacker.example", "http://localhost:9999", "http://127.0.0.1:9999", "null"} {
		for _, ctype := range []string{"text/plain", "application/json"} {
			req, _ := http.NewRequest(http.MethodPost, p.url, strings.NewReader(call))
			req.Header.Set("Origin", origin)
			req.Header.Set("Content-Type", ctype)
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("MCP-Protocol-Version", mcp.LATEST_PROTOCOL_VERSION)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("Origin %s, %s: %d, want 403", origin, ctype, resp.StatusCode)
			}
		}
		seen = append(seen, origin)
	}
	// The control: the server's own origin may call, and its run is the
	// only workflow on the queue.
	c := mcpClient(t, p.url, map[string]string{"Origin": p.origin}, false)
	if _, msg := callTool(t, c, "start_notebook", map[string]any{"path": nb}); msg != "" {
		t.Fatalf("start_notebook from the server's own origin: %s", msg)
	}
	testenv.Eventually(t, 30*time.Second, "the control run to be listed", func() bool { return workflowsOn(t, cfg.TaskQueue) >= 1 })
	if n := workflowsOn(t, cfg.TaskQueue); n != 1 {
		t.Fatalf("%d workflows on the queue, want only the control's", n)
	}
	o.saw("HTTP 403 for %s, as text/plain and as application/json; no workflow started; the same call from the server's own origin (%s) did start one", strings.Join(seen, ", "), p.origin)
}

// TestIdleAndSlowConnections: an idle keep-alive connection is closed
// after listen.IdleTimeout, and a client that never finishes its headers
// (slowloris) after listen.ReadHeaderTimeout.
func TestIdleAndSlowConnections(t *testing.T) {
	o := attack(t, "hold HTTP connections open: idle keep-alive, and headers never finished (slowloris)")
	t.Parallel()
	cfg := server.Config(t)
	p := startMCP(t, cfg, t.TempDir())
	host := strings.TrimPrefix(p.origin, "http://")

	// closedAfter waits for the server to close conn (EOF, or a reset
	// when the client was still writing); err is set only when the
	// connection outlived limit.
	closedAfter := func(conn net.Conn, limit time.Duration) (time.Duration, error) {
		start := time.Now()
		_ = conn.SetReadDeadline(start.Add(limit))
		_, err := io.Copy(io.Discard, conn)
		if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			err = nil
		}
		return time.Since(start), err
	}
	type result struct {
		took time.Duration
		err  error
	}
	idle, slow := make(chan result, 1), make(chan result, 1)
	go func() {
		conn, err := net.Dial("tcp", host)
		if err != nil {
			idle <- result{err: err}
			return
		}
		defer conn.Close()
		// One complete request, then silence.
		fmt.Fprintf(conn, "GET /nothing-here HTTP/1.1\r\nHost: %s\r\n\r\n", host)
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			idle <- result{err: err}
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		took, err := closedAfter(conn, listen.IdleTimeout+20*time.Second)
		idle <- result{took, err}
	}()
	go func() {
		conn, err := net.Dial("tcp", host)
		if err != nil {
			slow <- result{err: err}
			return
		}
		defer conn.Close()
		start := time.Now()
		fmt.Fprintf(conn, "POST /mcp HTTP/1.1\r\nHost: %s\r\n", host)
		go func() {
			// A header line every second, never the blank line.
			for i := 0; ; i++ {
				time.Sleep(time.Second)
				if _, err := fmt.Fprintf(conn, "X-Slow-%d: y\r\n", i); err != nil {
					return
				}
			}
		}()
		_, err = closedAfter(conn, listen.ReadHeaderTimeout+20*time.Second)
		slow <- result{time.Since(start), err}
	}()
	i, s := <-idle, <-slow
	if i.err != nil || i.took > listen.IdleTimeout+10*time.Second || i.took < listen.IdleTimeout-time.Second {
		t.Errorf("idle connection: closed after %s (%v), want about %s", i.took, i.err, listen.IdleTimeout)
	}
	if s.err != nil || s.took > listen.ReadHeaderTimeout+10*time.Second {
		t.Errorf("slowloris connection: closed after %s (%v), want about %s", s.took, s.err, listen.ReadHeaderTimeout)
	}
	o.saw("idle connection closed after %s (IdleTimeout %s); unfinished headers cut after %s (ReadHeaderTimeout %s)",
		i.took.Round(time.Second), listen.IdleTimeout, s.took.Round(time.Second), listen.ReadHeaderTimeout)
}

// TestEventStreamOutlivesIdleTimeout: the idle and read timeouts must not
// cut the MCP event stream (a GET that stays open): a notification sent
// after more than IdleTimeout of silence still arrives on it.
func TestEventStreamOutlivesIdleTimeout(t *testing.T) {
	o := attack(t, "the connection limits themselves as a denial of service: an MCP event stream silent for longer than the idle timeout")
	t.Parallel()
	root := t.TempDir()
	quiet := listen.IdleTimeout + 10*time.Second
	nb := testenv.WriteNotebook(t, root, "quiet.ipynb", fmt.Sprintf("import time\ntime.sleep(%d)", int(quiet.Seconds())))
	cfg := server.Config(t)
	server.StartWorker(t, cfg)
	p := startMCP(t, cfg, root)

	c := mcpClient(t, p.url, nil, true, transport.WithContinuousListening())
	type note struct {
		at  time.Time
		uri string
	}
	notes := make(chan note, 100)
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == mcp.MethodNotificationResourceUpdated {
			uri, _ := n.Params.AdditionalFields["uri"].(string)
			notes <- note{time.Now(), uri}
		}
	})
	res, msg := callTool(t, c, "start_notebook", map[string]any{"path": nb})
	if msg != "" {
		t.Fatal(msg)
	}
	jobID, _ := res["job_id"].(string)
	sub := mcp.SubscribeRequest{}
	sub.Params.URI = "millrace://jobs/" + jobID
	if err := c.Subscribe(context.Background(), sub); err != nil {
		t.Fatal(err)
	}
	last := time.Now()
	deadline := time.After(quiet + 3*time.Minute)
	for {
		select {
		case n := <-notes:
			gap := n.at.Sub(last)
			last = n.at
			if gap > listen.IdleTimeout {
				o.saw("the stream stayed open: a resource notification arrived on it after %s of silence (IdleTimeout %s)", gap.Round(time.Second), listen.IdleTimeout)
				return
			}
		case <-deadline:
			t.Fatalf("no notification after a silence longer than %s reached the event stream", listen.IdleTimeout)
		}
	}
}

// TestSecretInArgv: every flag that once took a secret refuses it, and
// says where the secret goes instead.
func TestSecretInArgv(t *testing.T) {
	o := attack(t, "pass a token or secret on the command line, where ps shows it to every user")
	t.Parallel()
	cases := []struct {
		bin  string
		args []string
		use  string
	}{
		{"millrace-mcp", []string{"--http", "127.0.0.1:0", "--token", "s3cret"}, "--token-file"},
		{"millrace-mcp", []string{"--token=s3cret"}, "MILLRACE_MCP_TOKEN"},
		{"millrace-mcp", []string{"--metrics-token", "s3cret"}, "--metrics-token-file"},
		{"millrace-mcp", []string{"--api-key", "s3cret"}, "--api-key-file"},
		{"millrace-worker", []string{"--notify-secret", "s3cret"}, "--notify-secret-file"},
		{"millrace", []string{"dev", "--mcp-token", "s3cret"}, "--mcp-token-file"},
		{"millrace", []string{"jobs", "--api-key", "s3cret"}, "TEMPORAL_API_KEY"},
	}
	for _, c := range cases {
		cmd := exec.Command(bin[c.bin], c.args...)
		cmd.Env = append(environWithout("TEMPORAL_ADDRESS"), "TEMPORAL_ADDRESS="+server.Address)
		out, err := cmd.CombinedOutput()
		code := -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if code != 2 || !strings.Contains(string(out), c.use) || strings.Contains(string(out), "s3cret") {
			t.Errorf("%s %v: exit %d\n%s\nwant exit 2 naming %s, without the secret", c.bin, c.args, code, out, c.use)
		}
	}
	// The file form works: the server starts and demands the token.
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("file-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := server.Config(t)
	p := startMCP(t, cfg, t.TempDir(), "--token-file", tokenFile)
	for token, want := range map[string]int{"": http.StatusUnauthorized, "file-token": http.StatusOK} {
		req, _ := http.NewRequest(http.MethodPost, p.url, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized != (want == http.StatusUnauthorized) {
			t.Errorf("token %q: %d, want %d", token, resp.StatusCode, want)
		}
	}
	o.saw("exit 2 for --token, --metrics-token, --api-key, --notify-secret, --mcp-token, naming the -file flag and the variable, without echoing the value; --token-file works")
}
