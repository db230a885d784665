package workflows

import "go.temporal.io/sdk/workflow"

// Registry is what workflows are registered with: a worker, or a replayer.
type Registry interface {
	RegisterWorkflowWithOptions(w any, options workflow.RegisterOptions)
}

// Register registers every workflow under its recorded name. The worker
// and the replay of recorded histories both use it, so a history replays
// against the same functions under the same names that a worker runs: a
// workflow left out here would fail the replay test, not production.
func Register(r Registry) {
	r.RegisterWorkflowWithOptions(NotebookRun, workflow.RegisterOptions{Name: NotebookRunWorkflow})
	r.RegisterWorkflowWithOptions(Batch, workflow.RegisterOptions{Name: BatchWorkflow})
	r.RegisterWorkflowWithOptions(Notify, workflow.RegisterOptions{Name: NotifyWorkflow})
}
