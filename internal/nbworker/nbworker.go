// Package nbworker runs the Temporal worker that executes notebook runs. The
// worker binary, the dev service and tests all start workers through it, so
// they register the same workflows and activities with the same options.
package nbworker

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"millrace/activities"
	"millrace/internal/config"
	"millrace/internal/executor"
	"millrace/internal/limits"
	"millrace/internal/notify"
	"millrace/internal/paths"
	"millrace/internal/python"
	"millrace/internal/runenv"
	"millrace/internal/warmpool"
	"millrace/workflows"
)

// HeartbeatThrottle caps how long the SDK may hold back a heartbeat. Its
// default (0.8 x HeartbeatTimeout) would make progress stale and delay
// cancellation, which reaches an activity only through a heartbeat. The
// activity decides which heartbeats to send (heartbeat.Gate): the SDK only
// merges those sent closer together than this (the first of a run right
// after its start-up one), and never holds one back longer than the
// worker's heartbeat interval.
const HeartbeatThrottle = time.Second

// Option adjusts a worker Start builds.
type Option func(*activities.Activities)

// WithHeartbeats fences every attempt on h, the heartbeat record of the
// worker's client (a connect.Heartbeats the client was dialled with,
// connect.WithHeartbeats): an attempt whose heartbeats the server has not
// accepted for half its heartbeat timeout is stopped before the server
// hands the run to another worker (activities.FenceAfter).
func WithHeartbeats(h activities.HeartbeatLog) Option {
	return func(a *activities.Activities) { a.Heartbeats = h }
}

// Worker is a started notebook worker.
type Worker struct {
	w        worker.Worker
	Executor executor.Executor
	// Warm is the executor's warm pool, nil when runs start cold.
	Warm *warmpool.Pool
}

// Start resolves the executor, registers everything on the task queue and
// starts polling.
func Start(c client.Client, cfg *config.Config, logger *slog.Logger, opts ...Option) (*Worker, error) {
	exe, err := resolveExecutor(cfg)
	if err != nil {
		return nil, err
	}
	begin := make(chan struct{})
	pool := StartWarmPool(cfg, &exe, begin, logger)
	maxRuns := cfg.MaxRuns
	if maxRuns <= 0 {
		maxRuns = config.DefaultMaxRuns
	}
	grace := cfg.Grace
	if grace <= 0 {
		grace = executor.DefaultGrace
	}
	nets, err := notify.ParseNetworks(cfg.NotifyAllowPrivate)
	if err != nil {
		return nil, err
	}
	roots, err := paths.NewRoots(cfg.WorkerRoots())
	if err != nil {
		return nil, fmt.Errorf("worker roots: %w", err)
	}
	lim := limits.Detected()
	logger.Info("resource limits", "enforced_by", lim.String(), "stale_cgroups_removed", lim.Sweep(time.Minute))
	acts := &activities.Activities{
		DataDir: cfg.DataDir, Executor: exe, Grace: grace, HeartbeatEvery: cfg.HeartbeatEvery, Logger: logger,
		NotifyAllow: cfg.NotifyAllow, NotifySecret: cfg.NotifySecret, NotifyNetworks: nets, Limits: &lim,
		Roots: roots, AllowEnv: cfg.AllowEnv, PassEnv: cfg.PassEnv,
	}
	for _, o := range opts {
		o(acts)
	}
	throttle := min(HeartbeatThrottle, acts.HeartbeatInterval())
	w := worker.New(c, cfg.TaskQueue, worker.Options{
		// Extra runs wait in the task queue; they are never refused.
		MaxConcurrentActivityExecutionSize: maxRuns,
		MaxHeartbeatThrottleInterval:       throttle,
		DefaultHeartbeatThrottleInterval:   throttle,
		// On stop, a running attempt gets the grace to end, is stopped
		// (the grace again) and handed back to the server, which retries
		// it on another worker at once; this leaves it the time for all
		// of that before the SDK cancels it.
		WorkerStopTimeout: activities.HandBackWithin(grace),
	})
	Register(w, acts)
	if err := w.Start(); err != nil {
		if pool != nil {
			pool.Close()
		}
		return nil, fmt.Errorf("start worker on task queue %s: %w", cfg.TaskQueue, err)
	}
	close(begin) // the warm pool's zygote starts now, after the worker
	logger.Info("worker started", "task_queue", cfg.TaskQueue, "roots", roots.Dirs(), "max_runs", maxRuns, "heartbeat_every", acts.HeartbeatInterval(), "executor", exe.Name, "executor_path", exe.Path, "data_dir", cfg.DataDir)
	return &Worker{w: w, Executor: exe, Warm: pool}, nil
}

// StartWarmPool starts the warm pool for exe's Python, when exe is the
// bundled runner and cfg does not turn the pool off, and makes exe fork
// its runs from it. It does not wait for the pool's warm-up: runs start
// cold until the first zygote has passed its self-check, so a worker (and
// the dev service) takes runs at once. A pool that cannot start (another
// platform, a failed self-check) is logged, and runs start cold, as they
// do without it. Its zygote starts once begin is closed (nil: at once).
// The caller closes the pool after its last run.
func StartWarmPool(cfg *config.Config, exe *executor.Executor, begin <-chan struct{}, logger *slog.Logger) *warmpool.Pool {
	if cfg.WarmPoolOff || exe.Name != executor.Bundled {
		return nil
	}
	pool, err := warmpool.StartInBackground(warmpool.Config{
		Python: exe.Path, Runner: exe.Script(), DataDir: cfg.DataDir, WarmImports: cfg.WarmImports,
		Env: runenv.Kernel(os.Environ(), cfg.PassEnv, nil), Logger: logger, Begin: begin,
	})
	if err != nil {
		logger.Warn("warm pool off: runs start cold", "reason", err)
		return nil
	}
	exe.Warm = pool
	return pool
}

// resolveExecutor picks the executor as cfg asks. When that is the bundled
// runner, its Python is found by python.Find (MILLRACE_PYTHON, else the
// first python3 that imports nbclient and ipykernel), not taken as
// whichever python3 comes first: the executor would otherwise start the
// runner with a Python that cannot run it, and every run would fail.
func resolveExecutor(cfg *config.Config) (executor.Executor, error) {
	ec := executor.Config{Kind: cfg.Executor, Python: cfg.Python, Papermill: cfg.Papermill}
	exe, err := ec.Resolve(cfg.DataDir)
	switch {
	case err == nil && exe.Name == executor.Papermill:
		return exe, nil
	case err != nil && cfg.Executor == executor.ChoosePapermill:
		return exe, err
	}
	py, perr := python.Find(cfg.Python)
	if perr != nil {
		return executor.Executor{}, fmt.Errorf("bundled runner: %w", perr)
	}
	ec.Python = py.Path
	return ec.Resolve(cfg.DataDir)
}

// Register registers millrace's workflows and activities under their
// recorded names.
func Register(w worker.Registry, acts *activities.Activities) {
	workflows.Register(w)
	w.RegisterActivityWithOptions(acts.RunNotebook, activity.RegisterOptions{Name: workflows.RunNotebookActivity})
	w.RegisterActivityWithOptions(acts.DeliverNotification, activity.RegisterOptions{Name: workflows.NotifyActivity})
}

// Stop stops polling and waits for running attempts (bounded by the stop
// timeout).
func (w *Worker) Stop() {
	w.w.Stop()
	if w.Warm != nil {
		_ = w.Warm.Close()
	}
}

// Run starts a worker and blocks until ctx ends, then stops it.
func Run(ctx context.Context, c client.Client, cfg *config.Config, logger *slog.Logger, opts ...Option) error {
	w, err := Start(c, cfg, logger, opts...)
	if err != nil {
		return err
	}
	<-ctx.Done()
	w.Stop()
	return nil
}
