// Command millrace-mcp is the MCP server through which AI assistants run
// notebooks: stdio by default (an MCP client starts it as a subprocess),
// streamable HTTP with --http. It only talks to Temporal and reads the data
// dir; the runs themselves execute on workers (in dev mode, the local
// background service), so closing the client never stops a run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/mark3labs/mcp-go/server"

	"millrace/internal/config"
	"millrace/internal/connect"
	"millrace/internal/devmode"
	"millrace/internal/filemode"
	"millrace/internal/jobs"
	"millrace/internal/mcpserver"
	"millrace/internal/metrics"
	"millrace/internal/paths"
)

func main() {
	filemode.ApplyOrExit()
	devmode.ServeIfAsked()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "millrace-mcp:", err)
		}
		os.Exit(2)
	}
}

// stdioWorkers is how many tool calls the stdio transport serves at once;
// start_notebook with wait_seconds holds one for up to 50 s.
const stdioWorkers = 32

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("millrace-mcp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config.Config
	cfg.Register(fs)
	httpAddr := fs.String("http", "", "serve streamable HTTP on `ADDR` (host:port; :port or a bare port binds 127.0.0.1) at "+mcpserver.EndpointPath+" instead of stdio")
	var token string
	config.SecretFlag(fs, &token, "token", "MILLRACE_MCP_TOKEN", "bearer token HTTP clients must send (required when --http binds anything but loopback)")
	var origins []string
	fs.Func("allow-origin", "a browser `ORIGIN` (scheme://host[:port]) allowed besides the server's own (http://127.0.0.1:PORT, http://localhost:PORT); repeat or comma-separate for several", func(s string) error {
		for _, o := range strings.Split(s, ",") {
			if o = strings.TrimSpace(o); o != "" {
				origins = append(origins, o)
			}
		}
		return nil
	})
	logLevel := fs.String("log-level", "info", "debug, info, warn or error (logs go to stderr)")
	if err := cfg.Parse(fs, args); err != nil {
		return err
	}
	logger, err := config.NewLogger(stderr, *logLevel)
	if err != nil {
		return err
	}

	// Refuse an unsafe HTTP setup before connecting to anything.
	var addr string
	if *httpAddr != "" {
		var loopback bool
		var err error
		if addr, loopback, err = mcpserver.ListenAddr(*httpAddr); err != nil {
			return err
		}
		if !loopback && token == "" {
			return fmt.Errorf("refusing to serve HTTP on %s, which is not a loopback address, without a token: set MILLRACE_MCP_TOKEN or --token-file, or bind 127.0.0.1", addr)
		}
	}
	roots, err := paths.NewRoots(cfg.Roots)
	if err != nil {
		return fmt.Errorf("--roots: %w", err)
	}
	ms, err := metrics.Start(cfg.MetricsAddr, cfg.MetricsToken, logger)
	if err != nil {
		return err
	}
	defer ms.Close()

	c, err := devmode.Connect(ctx, &cfg, logger, connect.WithMetrics(ms.Handler()))
	if err != nil {
		return err
	}
	defer c.Close()
	dc, err := connect.DataConverter(&cfg)
	if err != nil {
		return err
	}
	svc := &jobs.Service{Client: c, DataConverter: dc, Namespace: cfg.Namespace, TaskQueue: cfg.TaskQueue, DataDir: cfg.DataDir, Roots: roots, NotifyAllow: cfg.NotifyAllow, AllowEnv: cfg.AllowEnv, Python: cfg.Python}
	srv := mcpserver.New(svc, mcpserver.Options{Logger: logger, Metrics: ms.Handler()})

	if *httpAddr == "" {
		return serveStdio(ctx, srv, stdin, stdout, stderr)
	}
	return mcpserver.ServeHTTP(ctx, srv, addr, mcpserver.HTTPOptions{Token: token, AllowOrigins: origins, Logger: logger}, stderr)
}

func serveStdio(ctx context.Context, srv *server.MCPServer, stdin io.Reader, stdout, stderr io.Writer) error {
	err := mcpserver.ServeStdio(ctx, srv, stdin, stdout, func(stdio *server.StdioServer) {
		stdio.SetErrorLogger(log.New(stderr, "millrace-mcp: ", log.LstdFlags))
		server.WithWorkerPoolSize(stdioWorkers)(stdio)
	})
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
