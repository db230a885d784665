package devmode

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"go.temporal.io/sdk/client"

	"millrace/internal/config"
	"millrace/internal/connect"
)

// ServeIfAsked runs the dev service and exits the process when it was
// started as one (ServiceArg first); otherwise it returns at once. Every
// millrace binary calls it first thing in main, so any of them can start the
// service by re-executing itself.
func ServeIfAsked() {
	if len(os.Args) < 2 || os.Args[1] != ServiceArg {
		return
	}
	if err := RunService(os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "millrace dev service:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// RunService runs the dev service as a binary invoked with ServiceArg does,
// until SIGTERM or SIGINT.
func RunService(args []string) error {
	fs := flag.NewFlagSet(ServiceArg, flag.ContinueOnError)
	var cfg config.Config
	cfg.Register(fs)
	cfg.RegisterWorker(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.Address = ""
	if err := cfg.Validate(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return Serve(ctx, &cfg, logger, nil)
}

// Connect opens a Temporal client: to the configured cluster, or in dev mode
// to the local dev service, which it starts if needed. In dev mode it sets
// cfg.Address to the service's address, and presents the service's token
// instead of a cluster's TLS or API key settings: those are for a cluster,
// and the dev service speaks plain gRPC on loopback.
func Connect(ctx context.Context, cfg *config.Config, logger *slog.Logger, opts ...connect.Option) (client.Client, error) {
	if !cfg.DevMode() {
		return connect.Dial(ctx, cfg, logger, opts...)
	}
	st, err := Ensure(ctx, cfg)
	if err != nil {
		return nil, err
	}
	cfg.Address, cfg.Namespace = st.Address, st.Namespace
	useKey(cfg)
	local := config.Config{Address: st.Address, Namespace: st.Namespace, CodecKeyFile: cfg.CodecKeyFile}
	return connect.Dial(ctx, &local, logger, append(opts, ClientOption(cfg.DataDir))...)
}
