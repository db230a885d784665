//go:build linux

package testcluster

import (
	"context"
	"os"
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

	"millrace/internal/testenv"
)

// MCPPort is the MCP server's HTTP port, on its own host.
const MCPPort = 8080

// MCP is millrace-mcp serving streamable HTTP on a host, beyond loopback,
// so with a bearer token.
type MCP struct {
	Host  *Host
	URL   string // the endpoint, as the server printed it
	Token string
}

var servingURL = regexp.MustCompile(`serving MCP over streamable HTTP at (http://\S+)`)

// StartMCP starts millrace-mcp (bin) on host for the workers' task queue
// and data dir, with roots as its roots, and waits until it serves; it is
// stopped with SIGTERM when t ends, and the test fails unless it exits
// cleanly.
func StartMCP(t testing.TB, host *Host, bin string, cfg WorkerConfig, roots ...string) *MCP {
	t.Helper()
	m := &MCP{Host: host, Token: "cluster-token-" + strconv.Itoa(os.Getpid())}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(m.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--http", host.Addr + ":" + strconv.Itoa(MCPPort), "--token-file", tokenFile,
		"--temporal-address", cfg.Address, "--task-queue", cfg.TaskQueue, "--data-dir", cfg.DataDir,
		"--roots", strings.Join(roots, ":"), "--log-level", "warn"}
	cmd := host.Command(bin, args...)
	var stderr testenv.SyncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("millrace-mcp on %s did not exit cleanly on SIGTERM: %v\n%s", host.Name, err, stderr.String())
			}
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("millrace-mcp on %s did not exit within 20s of SIGTERM\n%s", host.Name, stderr.String())
		}
	})
	testenv.Eventually(t, time.Minute, "millrace-mcp on "+host.Name+" to serve", func() bool {
		select {
		case err := <-exited:
			t.Fatalf("millrace-mcp on %s exited: %v\n%s", host.Name, err, stderr.String())
		default:
		}
		return servingURL.MatchString(stderr.String())
	})
	m.URL = servingURL.FindStringSubmatch(stderr.String())[1]
	return m
}

// Client connects an initialized MCP client to the server from host
// from, with the token; it closes when t ends.
func (m *MCP) Client(t testing.TB, from *Host) *client.Client {
	t.Helper()
	tr, err := transport.NewStreamableHTTP(m.URL,
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + m.Token}),
		transport.WithHTTPBasicClient(from.HTTPClient()))
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr)
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	init := mcp.InitializeRequest{}
	init.Params.ClientInfo = mcp.Implementation{Name: "millrace-cluster-test", Version: "0"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatalf("initialize the MCP server at %s from %s: %v", m.URL, from.Name, err)
	}
	return c
}
