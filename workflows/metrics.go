package workflows

import "go.temporal.io/sdk/workflow"

// Run metrics. NotebookRun records them through workflow.GetMetricsHandler,
// which drops what is recorded while a history is replayed, so a run moved
// to another worker is not counted twice. Recording adds no command to the
// history: old histories replay unchanged.
const (
	// RunsStartedMetric counts runs whose workflow began.
	RunsStartedMetric = "millrace_runs_started_total"
	// RunsEndedMetric counts ended runs by status (SUCCEEDED, FAILED,
	// CANCELED, TIMED_OUT).
	RunsEndedMetric = "millrace_runs_ended_total"
	// RunDurationMetric is a histogram of run durations by status, from
	// the workflow's start (queue wait included) to its end.
	RunDurationMetric = "millrace_run_duration_seconds"
)

// StatusTag labels the end metrics with the run's status.
const StatusTag = "status"

func recordRunStarted(ctx workflow.Context) {
	workflow.GetMetricsHandler(ctx).Counter(RunsStartedMetric).Inc(1)
}

func recordRunEnded(ctx workflow.Context, r RunResult) {
	h := workflow.GetMetricsHandler(ctx).WithTags(map[string]string{StatusTag: r.Status})
	h.Counter(RunsEndedMetric).Inc(1)
	h.Timer(RunDurationMetric).Record(r.EndedAt.Sub(r.StartedAt))
}
