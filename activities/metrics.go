package activities

import (
	"context"

	"go.temporal.io/sdk/activity"

	"millrace/internal/logstore"
	"millrace/workflows"
)

// Attempt metrics, recorded through activity.GetMetricsHandler (tagged by
// the SDK with namespace, task queue and types) for every attempt that got
// as far as opening its log, whatever its outcome.
const (
	// CellsExecutedMetric counts code cells that ran to their end or
	// failed.
	CellsExecutedMetric = "millrace_cells_executed_total"
	// LogBytesMetric counts bytes of stdout and stderr written to run logs.
	LogBytesMetric = "millrace_log_bytes_total"
)

// countAttempt notes where the attempt's log starts and returns the func
// that, deferred, counts the attempt's executed cells and log bytes. An
// attempt stopped before its executor reported (cancel, timeout, a log
// that cannot be written) is counted from its output notebook, as its
// heartbeats are.
func countAttempt(ctx context.Context, logw *logstore.Writer, res *workflows.AttemptResult) func() {
	_, start := logw.Stats()
	return func() {
		cells := res.CellsExecuted
		if res.CellsTotal == 0 {
			cells = newProgressReader(res.OutputPath, res.Attempt, res.Executor, res.StartedAt, "", nil).read().CellsDone
		}
		_, end := logw.Stats()
		h := activity.GetMetricsHandler(ctx)
		h.Counter(CellsExecutedMetric).Inc(int64(cells))
		h.Counter(LogBytesMetric).Inc(end - start)
	}
}
