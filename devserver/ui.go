package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uioptions "github.com/temporalio/ui-server/v2/server/server_options"
)

// The Temporal Web UI, as `temporal server start-dev` embeds it.
//
// It serves only with --ui-port (and without --headless). It holds no
// credential of its own: its API calls reach the frontend with the
// Authorization header of the HTTP request that caused them (grpc-gateway
// forwards it as gRPC metadata), so with --auth-token-file a request that
// does not carry "Bearer <token>" gets nothing but the UI's static files,
// whoever can connect to the port. The millrace dev service runs it on an
// ephemeral loopback port behind its own listener, which turns the user's
// token-in-URL into a cookie, refuses cross-origin writes, serves the
// payload codec endpoint and adds the header (internal/devmode/ui.go).

// uiOptions are the UI's settings from the command line.
type uiOptions struct {
	ip   string
	port int // 0: no UI
	// codecEndpoint is where the browser posts payloads to decode; empty:
	// the UI shows payloads as the server holds them.
	codecEndpoint string
}

// checkUIOptions validates the UI flags.
func checkUIOptions(u uiOptions) error {
	if u.port == 0 {
		return nil
	}
	if u.port < 0 || u.port > 65535 {
		return fmt.Errorf("--ui-port %d is out of range", u.port)
	}
	if net.ParseIP(u.ip) == nil {
		return fmt.Errorf("--ui-ip %q is not an IP address", u.ip)
	}
	if u.codecEndpoint != "" {
		p, err := url.Parse(u.codecEndpoint)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("--ui-codec-endpoint %q: want an http(s) URL", u.codecEndpoint)
		}
	}
	return nil
}

// startUI serves the Web UI for the frontend at frontend until ctx ends. It
// returns once the UI accepts connections, or with the reason it cannot.
func startUI(ctx context.Context, o *options, frontend string) (stop func(), err error) {
	if err := checkPortFree(o.ui.ip, o.ui.port, "UI"); err != nil {
		return nil, err
	}
	cfg := &uiconfig.Config{
		Host:                o.ui.ip,
		Port:                o.ui.port,
		TemporalGRPCAddress: frontend,
		EnableUI:            true,
		DefaultNamespace:    o.namespaces[0],
		Codec:               uiconfig.Codec{Endpoint: o.ui.codecEndpoint},
		// Plain HTTP on loopback: a Secure cookie would never come back.
		CORS: uiconfig.CORS{CookieInsecure: true},
		// A run starts through millrace, which checks and names it (its
		// notebook inside the roots, its parameters against the notebook);
		// the UI's generic start form would do neither.
		StartWorkflowDisabled: true,
		// No call home from the user's browser, and no log line per request.
		DisableNewsFetch:    true,
		HideLogs:            true,
		Distribution:        "millrace",
		DistributionVersion: serverVersion,
	}
	s := uiserver.NewServer(uioptions.WithConfigProvider(cfg))
	failed := make(chan error, 1)
	go func() {
		// Start exits the process (log.Fatal) when it cannot listen: the
		// port was checked just above, and a race for it is as fatal as one
		// for the frontend's port, which the dev service retries.
		failed <- s.Start()
	}()
	addr := net.JoinHostPort(dialHost(o.ui.ip), strconv.Itoa(o.ui.port))
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return s.Stop, nil
		}
		select {
		case err := <-failed:
			return nil, fmt.Errorf("the UI stopped at start: %v", err)
		case <-ctx.Done():
			s.Stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, errors.New("the UI did not listen within 30 s")
		}
	}
}

// backgroundUI is the UI starting beside the server.
type backgroundUI struct {
	cancel context.CancelFunc
	done   chan struct{}
	stop   func()
	err    error
}

// startUIBackground starts the UI (startUI) in a goroutine, as soon as the
// frontend accepts connections.
func startUIBackground(ctx context.Context, o *options, frontend string) *backgroundUI {
	ctx, cancel := context.WithCancel(ctx)
	b := &backgroundUI{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(b.done)
		if b.err = waitDial(ctx, frontend, time.Minute); b.err == nil {
			b.stop, b.err = startUI(ctx, o, frontend)
		}
	}()
	return b
}

// waitDial waits until addr accepts a connection, for at most bound.
func waitDial(ctx context.Context, addr string, bound time.Duration) error {
	deadline := time.Now().Add(bound)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the frontend at %s did not listen within %s: %w", addr, bound, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// wait returns once the UI accepts connections, or with why it cannot.
func (b *backgroundUI) wait() error {
	<-b.done
	return b.err
}

// close stops the UI, or its start.
func (b *backgroundUI) close() {
	b.cancel()
	<-b.done
	if b.stop != nil {
		b.stop()
	}
}
