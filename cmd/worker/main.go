// Command millrace-worker is a Temporal worker that runs notebooks. Point it
// at a cluster with TEMPORAL_ADDRESS and run as many as you need; without an
// address it joins the local dev service (starting it if needed).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"millrace/internal/config"
	"millrace/internal/connect"
	"millrace/internal/devmode"
	"millrace/internal/filemode"
	"millrace/internal/metrics"
	"millrace/internal/nbworker"
)

func main() {
	filemode.ApplyOrExit()
	devmode.ServeIfAsked()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "millrace-worker:", err)
		}
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("millrace-worker", flag.ContinueOnError)
	var cfg config.Config
	cfg.Register(fs)
	cfg.RegisterWorker(fs)
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := cfg.Parse(fs, args); err != nil {
		return err
	}
	logger, err := config.NewLogger(os.Stderr, *logLevel)
	if err != nil {
		return err
	}

	// Checked and bound before anything connects, so a refused address
	// fails fast.
	ms, err := metrics.Start(cfg.MetricsAddr, cfg.MetricsToken, logger)
	if err != nil {
		return err
	}
	defer ms.Close()

	devMode := cfg.DevMode()
	// The worker fences its attempts on what the server answers its
	// heartbeats, so a worker cut off from the server stops its kernels
	// before the retries start elsewhere.
	heartbeats := connect.NewHeartbeats()
	c, err := devmode.Connect(ctx, &cfg, logger, connect.WithMetrics(ms.Handler()), connect.WithHeartbeats(heartbeats))
	if err != nil {
		return err
	}
	defer c.Close()
	if !devMode {
		// The dev server registers the search attributes itself; a real
		// cluster may need them added once.
		if err := connect.EnsureSearchAttributes(ctx, c, cfg.Namespace); err != nil {
			logger.Warn("search attributes", "error", err)
		}
	}
	return nbworker.Run(ctx, c, &cfg, logger, nbworker.WithHeartbeats(heartbeats))
}
