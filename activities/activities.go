// Package activities holds the activity that runs a notebook: it starts the
// executor as a child process, turns its output into the run's log, reports
// progress in heartbeats, and stops the whole process tree when Temporal
// cancels or times the attempt out.
package activities

import (
	"log/slog"
	"millrace/internal/notify"
	"time"

	"millrace/internal/executor"
	"millrace/internal/limits"
	"millrace/internal/paths"
	"millrace/internal/runenv"
)

// DefaultHeartbeatEvery is how often a running attempt heartbeats. The
// worker's MaxHeartbeatThrottleInterval must not be larger, or cancellation
// (which only reaches an activity through a heartbeat) lands late.
const DefaultHeartbeatEvery = time.Second

// Activities runs notebooks for one worker. Its fields are the worker's
// configuration; it holds no per-run state.
type Activities struct {
	DataDir        string            // root of runs/<job id>/...
	Executor       executor.Executor // resolved executor
	Grace          time.Duration     // SIGTERM to SIGKILL; 0 = executor.DefaultGrace
	HeartbeatEvery time.Duration     // 0 = DefaultHeartbeatEvery
	Logger         *slog.Logger
	// NotifyAllow and NotifySecret are this worker's webhook allow-list
	// and signing secret (config.Config's).
	NotifyAllow  []string
	NotifySecret string
	// NotifyNetworks are the non-public addresses webhooks may reach
	// (config.Config's NotifyAllowPrivate).
	NotifyNetworks notify.Networks
	// Limits is how this worker enforces memory_limit and cpu_limit; nil
	// means what limits.Detected finds for this process.
	Limits *limits.Support
	// Roots are the folders this worker runs notebooks from and writes
	// outputs to (config.Config.WorkerRoots); nil means
	// config.DefaultWorkerRoots.
	Roots *paths.Roots
	// AllowEnv and PassEnv are the operator's env allow-list for runs and
	// the worker variables kernels also get (config.Config's).
	AllowEnv runenv.Patterns
	PassEnv  runenv.Patterns
	// Heartbeats is when the server last accepted each attempt's
	// heartbeats, read by the attempt's fence (FenceAfter); nil runs
	// attempts unfenced.
	Heartbeats HeartbeatLog
}
