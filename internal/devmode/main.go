package devmode

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"go.temporal.io/sdk/client"

	"millrace/internal/config"
	"millrace/internal/connect"
)

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
// cfg.Address to the service's address.
func Connect(ctx context.Context, cfg *config.Config, logger *slog.Logger) (client.Client, error) {
	if cfg.DevMode() {
		st, err := Ensure(ctx, cfg)
		if err != nil {
			return nil, err
		}
		cfg.Address, cfg.Namespace = st.Address, st.Namespace
	}
	return connect.Dial(ctx, cfg, logger)
}
