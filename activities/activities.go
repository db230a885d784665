// Package activities holds the activity that runs a notebook: it starts the
// executor as a child process, turns its output into the run's log, reports
// progress in heartbeats, and stops the whole process tree when Temporal
// cancels or times the attempt out.
package activities

import (
	"log/slog"
	"time"

	"millrace/internal/executor"
	"millrace/internal/heartbeat"
	"millrace/internal/limits"
	"millrace/internal/notify"
	"millrace/internal/paths"
	"millrace/internal/runenv"
)

// Activities runs notebooks for one worker. Its fields are the worker's
// configuration; it holds no per-run state.
type Activities struct {
	DataDir  string            // root of runs/<job id>/...
	Executor executor.Executor // resolved executor
	Grace    time.Duration     // SIGTERM to SIGKILL; 0 = executor.DefaultGrace
	// HeartbeatEvery is how often a running attempt looks at its run
	// and heartbeats what changed (config.Config's; heartbeat.ScheduleFor
	// fits it to each attempt's heartbeat timeout); 0 means
	// heartbeat.DefaultDev. The worker's MaxHeartbeatThrottleInterval must
	// not be larger, or the SDK holds changes and cancels back.
	HeartbeatEvery time.Duration
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

// HeartbeatInterval is HeartbeatEvery, or its default.
func (a *Activities) HeartbeatInterval() time.Duration {
	if a.HeartbeatEvery > 0 {
		return a.HeartbeatEvery
	}
	return heartbeat.DefaultDev
}
