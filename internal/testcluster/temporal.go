//go:build linux

package testcluster

import (
	"context"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"millrace/internal/config"
	"millrace/internal/connect"
	"millrace/internal/testenv"
)

// TemporalPort is the frontend's port, on the server's own host.
const TemporalPort = 7233

// ServerKeepAlive is the Temporal server's keepalive time and timeout: it
// finds a client gone within twice this, which must be well within a
// run's heartbeat timeout, or the retry of a cut-off worker's attempt
// goes to a poll that worker left waiting on the server. With Temporal's
// defaults (1 min, 10 s) the server handed a retry to such a poll, where
// it was lost and cost a heartbeat timeout and an attempt: a run with 3
// attempts failed.
const ServerKeepAlive = time.Second

// Store is where the Temporal server keeps its state.
type Store interface {
	flags() []string
}

// SQLite is a store in one SQLite file, the embedded server's default.
type SQLite string

func (s SQLite) flags() []string { return []string{"--db-filename", string(s)} }

// Database is a store in a PostgreSQL database, persistence in db and
// visibility in db_visibility; the server makes both, with their schemas,
// as it starts.
type Database struct {
	Server *PostgreSQL
	Name   string
}

func (d Database) flags() []string { return []string{"--postgres", d.Server.URL(d.Name)} }

// Temporal is the embedded Temporal server (millrace-temporal) running on
// a host.
type Temporal struct {
	Host *Host
	// Address is the frontend's host:port on the network.
	Address string
	cmd     *exec.Cmd
	exited  chan error
	stderr  testenv.SyncBuffer
}

// StartTemporal starts the server on host with store, the default
// namespace, millrace's search attributes and ServerKeepAlive, and waits
// until a client on host answers; it stops when t ends.
func StartTemporal(t testing.TB, host *Host, store Store) *Temporal {
	t.Helper()
	bin, err := testenv.ServerBin()
	if err != nil {
		t.Fatal(err)
	}
	s := &Temporal{Host: host, Address: host.Addr + ":" + strconv.Itoa(TemporalPort), exited: make(chan error, 1)}
	args := append([]string{"start-dev", "--ip", host.Addr, "--port", strconv.Itoa(TemporalPort),
		"--namespace", config.DefaultNamespace, "--headless", "--log-level", "error",
		"--dynamic-config-value", "frontend.enableServerVersionCheck=false",
		// The server pings a client idle for keepAlive and drops it when
		// no answer comes keepAlive later, and with it the polls the
		// client left waiting (see ServerKeepAlive).
		"--dynamic-config-value", "frontend.keepAliveTime=" + strconv.Quote(ServerKeepAlive.String()),
		"--dynamic-config-value", "frontend.keepAliveTimeout=" + strconv.Quote(ServerKeepAlive.String())},
		store.flags()...)
	// Registered as it starts: the workers register them too, but a run
	// started before the namespace's cache has them is refused.
	args = append(args, testenv.SearchAttributeFlags()...)
	s.cmd = host.Command(bin, args...)
	s.cmd.Stderr = &s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.exited <- s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the Temporal server's log (errors only):\n%s", tail(s.stderr.String(), 20000))
		}
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	})
	c := s.Dial(t, host)
	c.Close()
	return s
}

// Dial opens a client of the server from host, retrying for up to two
// minutes while the server starts (its first start on PostgreSQL makes
// the schemas); it closes when t ends.
func (s *Temporal) Dial(t testing.TB, from *Host) client.Client {
	t.Helper()
	cfg := &config.Config{Address: s.Address, Namespace: config.DefaultNamespace}
	var c client.Client
	var last error
	deadline := time.Now().Add(2 * time.Minute)
	for c == nil {
		select {
		case err := <-s.exited:
			t.Fatalf("the Temporal server on %s exited: %v\n%s", s.Host.Name, err, s.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Temporal server on %s did not answer within 2 minutes: %v\n%s", s.Host.Name, last, s.stderr.String())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, last = connect.Dial(ctx, cfg, testenv.Logger(), from.DialOption())
		cancel()
		if c == nil {
			time.Sleep(200 * time.Millisecond)
		}
	}
	t.Cleanup(c.Close)
	return c
}

// Stderr is what the server wrote to stderr so far.
func (s *Temporal) Stderr() string { return s.stderr.String() }

// tail is the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "...\n" + s[len(s)-n:]
}
