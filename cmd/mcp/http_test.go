//lint:file-ignore SA1019 this file drives the legacy MCP protocol (initialize, subscribe, the GET stream) on purpose: clients that still speak it must keep working.

package main

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"millrace/internal/mcpserver"
	"millrace/internal/testenv"
	"millrace/workflows"
)

var servingURL = regexp.MustCompile(`serving MCP over streamable HTTP at (http://\S+)`)

// startHTTP runs the binary with --http and extra flags and returns its
// endpoint URL. env is added to an environment without MILLRACE_MCP_TOKEN.
func startHTTP(t *testing.T, w *world, env []string, extra ...string) string {
	t.Helper()
	_, m := testenv.StartBinary(t, binary, w.args(extra...), append(environWithout("MILLRACE_MCP_TOKEN"), env...), servingURL)
	return m[1]
}

func environWithout(name string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// TestHTTP drives real runs over streamable HTTP with a bearer token, with
// the newest protocol and with a session-based one (where notifications
// travel on a session and the event store keeps them).
func TestHTTP(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	const token = "s3cret-token"
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	url := startHTTP(t, w, nil, "--http", "127.0.0.1:0", "--token-file", tokenFile)
	auth := transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token})

	tr, err := transport.NewStreamableHTTP(url, auth)
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr)
	var progress progressLog
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	progress.attach(t, c)
	initialize(t, c)
	exercise(t, c, &progress)

	legacyTr, err := transport.NewStreamableHTTP(url, auth)
	if err != nil {
		t.Fatal(err)
	}
	legacy := client.NewClient(legacyTr, client.WithLegacyProtocolOnly())
	var legacyProgress progressLog
	if err := legacy.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer legacy.Close()
	legacyProgress.attach(t, legacy)
	initialize(t, legacy)
	if legacy.GetSessionId() == "" {
		t.Fatal("the legacy client has no session")
	}
	started := call[mcpserver.StartNotebookResult](t, legacy, "start_notebook",
		map[string]any{"path": "progress.ipynb", "parameters": map[string]any{"delay": 1.2}, "wait_seconds": 50},
		&mcp.Meta{ProgressToken: 42})
	if started.Status != workflows.StatusSucceeded {
		t.Fatalf("legacy start: %+v", started)
	}
	waitProgress(t, &legacyProgress, "42")
}

const initializeBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}`

// post sends an initialize request with the given headers and returns the
// status code.
func post(t *testing.T, url string, headers map[string]string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(initializeBody))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestHTTPTokenAndOrigin(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	// The token from the environment, checked although the bind is loopback.
	url := startHTTP(t, w, []string{"MILLRACE_MCP_TOKEN=tok"}, "--http", "127.0.0.1:0")
	own := "http://" + strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/mcp")
	cases := []struct {
		headers map[string]string
		want    int
	}{
		{nil, http.StatusUnauthorized},
		{map[string]string{"Authorization": "Bearer wrong"}, http.StatusUnauthorized},
		{map[string]string{"Authorization": "Basic dG9rOg=="}, http.StatusUnauthorized},
		{map[string]string{"Authorization": "Bearer tok"}, http.StatusOK},
		{map[string]string{"Authorization": "Bearer tok", "Origin": "http://evil.example"}, http.StatusForbidden},
		{map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden},
		// A page of this server's own origin, not one of another local port.
		{map[string]string{"Authorization": "Bearer tok", "Origin": own}, http.StatusOK},
		{map[string]string{"Authorization": "Bearer tok", "Origin": "http://localhost:5173"}, http.StatusForbidden},
		{map[string]string{"Authorization": "Bearer tok", "Origin": "http://127.0.0.1:6274"}, http.StatusForbidden},
	}
	for _, c := range cases {
		if got := post(t, url, c.headers); got != c.want {
			t.Errorf("headers %v: status %d, want %d", c.headers, got, c.want)
		}
	}

	// --allow-origin admits a listed origin; no token is needed on loopback.
	open := startHTTP(t, w, nil, "--http", "localhost:0", "--allow-origin", "https://app.example, https://other.example")
	for origin, want := range map[string]int{
		"":                     http.StatusOK,
		"https://app.example":  http.StatusOK,
		"https://evil.example": http.StatusForbidden,
	} {
		h := map[string]string{}
		if origin != "" {
			h["Origin"] = origin
		}
		if got := post(t, open, h); got != want {
			t.Errorf("--allow-origin server, origin %q: status %d, want %d", origin, got, want)
		}
	}
}

// TestHTTPNonLoopbackNeedsToken: binding beyond loopback without a token
// is refused before anything starts; with one it serves and checks it.
func TestHTTPNonLoopbackNeedsToken(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	cmd := exec.Command(binary, w.args("--http", "0.0.0.0:0")...)
	cmd.Env = environWithout("MILLRACE_MCP_TOKEN")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "refusing to serve HTTP on 0.0.0.0:0") || !strings.Contains(string(out), "--token-file") {
		t.Fatalf("non-loopback bind without a token: %v\n%s", err, out)
	}
	url := startHTTP(t, w, []string{"MILLRACE_MCP_TOKEN=tok"}, "--http", "0.0.0.0:0")
	// It listens on every address (printed as [::] or 0.0.0.0); ask
	// through loopback.
	url = regexp.MustCompile(`//(\[::\]|0\.0\.0\.0):`).ReplaceAllString(url, "//127.0.0.1:")
	if got := post(t, url, nil); got != http.StatusUnauthorized {
		t.Errorf("without the token: %d, want 401", got)
	}
	if got := post(t, url, map[string]string{"Authorization": "Bearer tok"}); got != http.StatusOK {
		t.Errorf("with the token: %d, want 200", got)
	}
}
