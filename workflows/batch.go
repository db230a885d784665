package workflows

import (
	"errors"
	"fmt"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"millrace/internal/failure"
)

// Batch runs a DAG of notebooks: each node is a child NotebookRun (so it is
// an ordinary job too), started as soon as its dependencies have succeeded,
// at most MaxParallel at once. A failed node's dependents are SKIPPED while
// independent branches go on; with FailFast everything running is
// canceled. Canceling the batch cancels every running child and waits for
// it: the children own processes, and the batch must not end before they
// are gone.
func Batch(ctx workflow.Context, in BatchInput) (BatchState, error) {
	b := newBatchRun(ctx, in)
	if err := workflow.SetQueryHandler(ctx, QueryBatchState, func() (BatchState, error) { return b.state, nil }); err != nil {
		return b.state, err
	}
	b.run()
	b.finish()

	uctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	if err := workflow.UpsertTypedSearchAttributes(uctx, KeyStatus.ValueSet(b.state.Status)); err != nil {
		workflow.GetLogger(ctx).Warn("record status", "error", err)
	}
	if in.NotifyURL != "" {
		startNotify(uctx, NotifyID(workflow.GetInfo(ctx).WorkflowExecution.ID, b.state.Round), NotifyInput{URL: in.NotifyURL, Payload: batchPayload(ctx, b.state)})
	}
	switch b.state.Status {
	case StatusSucceeded:
		return b.state, nil
	case StatusCanceled:
		return b.state, temporal.NewCanceledError(b.state)
	}
	return b.state, temporal.NewNonRetryableApplicationError(b.summary(), string(failure.TypeBatchFailed), nil, b.state)
}

type batchRun struct {
	ctx       workflow.Context
	in        BatchInput
	state     BatchState
	index     map[string]int
	running   int
	sel       workflow.Selector
	children  workflow.Context
	cancelAll workflow.CancelFunc
	stopping  bool // fail_fast tripped or the batch was canceled
	canceled  bool
	pending   []pendingChild // running children, in start order
}

func newBatchRun(ctx workflow.Context, in BatchInput) *batchRun {
	b := &batchRun{ctx: ctx, in: in, index: map[string]int{}, sel: workflow.NewSelector(ctx)}
	b.children, b.cancelAll = workflow.WithCancel(ctx)
	b.state = BatchState{Name: in.Name, Status: StatusRunning, Round: max(in.Round, 1)}
	for i, n := range in.Nodes {
		b.index[n.ID] = i
		ns := NodeState{ID: n.ID, JobID: n.JobID, Status: NodeWaiting, DependsOn: n.DependsOn, Notebook: n.Run.Notebook, Output: n.Run.Output, Reused: n.Reused}
		if n.Reused {
			ns.Status = StatusSucceeded
		}
		b.state.Nodes = append(b.state.Nodes, ns)
	}
	return b
}

func (b *batchRun) maxParallel() int {
	if b.in.MaxParallel > 0 {
		return b.in.MaxParallel
	}
	return DefaultMaxParallel
}

// run schedules nodes until none is running and none can start.
func (b *batchRun) run() {
	b.sel.AddReceive(b.ctx.Done(), func(workflow.ReceiveChannel, bool) {
		b.stop(true)
	})
	for {
		b.skipBlocked()
		if !b.stopping {
			b.startReady()
		}
		if b.running == 0 {
			return
		}
		b.sel.Select(b.ctx)
	}
}

// stop cancels every running child; canceled says the batch itself was
// canceled (rather than fail_fast).
func (b *batchRun) stop(canceled bool) {
	if b.stopping && (!canceled || b.canceled) {
		return
	}
	b.stopping = true
	b.canceled = b.canceled || canceled
	b.cancelAll()
	if canceled {
		// ctx.Done stays ready once closed: a selector holding it would
		// pick it forever. Wait for the children on a fresh one.
		b.sel = b.drainSelector()
	}
}

// drainSelector moves the pending child futures to a selector without the
// cancellation branch.
func (b *batchRun) drainSelector() workflow.Selector {
	sel := workflow.NewSelector(b.ctx)
	for _, p := range b.pending {
		sel.AddFuture(p.f, p.done)
	}
	return sel
}

func (b *batchRun) startReady() {
	for i := range b.state.Nodes {
		if b.running >= b.maxParallel() {
			return
		}
		ns := &b.state.Nodes[i]
		if ns.Status != NodeWaiting || !b.depsSucceeded(ns) {
			continue
		}
		b.start(i)
	}
}

func (b *batchRun) depsSucceeded(ns *NodeState) bool {
	for _, d := range ns.DependsOn {
		if b.state.Nodes[b.index[d]].Status != StatusSucceeded {
			return false
		}
	}
	return true
}

// skipBlocked marks SKIPPED every waiting node with a dependency that can no
// longer succeed (and, when stopping, every waiting node), transitively.
func (b *batchRun) skipBlocked() {
	for changed := true; changed; {
		changed = false
		for i := range b.state.Nodes {
			ns := &b.state.Nodes[i]
			if ns.Status != NodeWaiting {
				continue
			}
			blocked := b.stopping
			for _, d := range ns.DependsOn {
				switch b.state.Nodes[b.index[d]].Status {
				case NodeWaiting, StatusRunning, StatusSucceeded:
				default:
					blocked = true
				}
			}
			if blocked {
				ns.Status = NodeSkipped
				changed = true
			}
		}
	}
}

type pendingChild struct {
	f    workflow.Future
	done func(workflow.Future)
}

func (b *batchRun) start(i int) {
	node := b.in.Nodes[i]
	ns := &b.state.Nodes[i]
	now := workflow.Now(b.ctx)
	ns.Status, ns.StartedAt = StatusRunning, &now
	cctx := workflow.WithChildOptions(b.children, workflow.ChildWorkflowOptions{
		WorkflowID:          node.JobID,
		ParentClosePolicy:   enumspb.PARENT_CLOSE_POLICY_REQUEST_CANCEL,
		WaitForCancellation: true,
		TypedSearchAttributes: temporal.NewSearchAttributes(append([]temporal.SearchAttributeUpdate{
			KeyNotebook.ValueSet(node.Run.Notebook), KeyKind.ValueSet("run"),
			KeyBatchID.ValueSet(workflow.GetInfo(b.ctx).WorkflowExecution.ID), KeyLabels.ValueSet(node.Run.Labels),
		}, RunScope(node.Run).Attributes()...)...),
		// A memo key changes no command the replay compares.
		Memo: RunMemo(node.Run),
	})
	f := workflow.ExecuteChildWorkflow(cctx, NotebookRunWorkflow, node.Run)
	b.running++
	p := pendingChild{f: f}
	p.done = func(f workflow.Future) {
		b.running--
		b.removePending(f)
		var res RunResult
		err := f.Get(b.ctx, &res)
		end := workflow.Now(b.ctx)
		ns.EndedAt = &end
		ns.Status, ns.Error = childOutcome(err, &res)
		if ns.Status != StatusSucceeded && b.in.FailFast {
			b.stop(false)
		}
	}
	b.pending = append(b.pending, p)
	b.sel.AddFuture(f, p.done)
}

func (b *batchRun) removePending(f workflow.Future) {
	for i, p := range b.pending {
		if p.f == f {
			b.pending = append(b.pending[:i], b.pending[i+1:]...)
			return
		}
	}
}

// childOutcome reads a child run's status from its result or failure.
func childOutcome(err error, res *RunResult) (string, *RunError) {
	if err == nil {
		return StatusSucceeded, nil
	}
	var appErr *temporal.ApplicationError
	var canceled *temporal.CanceledError
	switch {
	case errors.As(err, &appErr) && appErr.HasDetails() && appErr.Details(res) == nil && res.Status != "":
		return res.Status, res.Error
	case errors.As(err, &canceled):
		return StatusCanceled, &RunError{Type: failure.TypeCanceled, Message: "the run was canceled"}
	case temporal.IsTerminatedError(err):
		return StatusCanceled, &RunError{Type: failure.TypeTerminated, Message: "the run was terminated"}
	}
	return StatusFailed, &RunError{Type: failure.TypeUnknown, Message: err.Error()}
}

// finish sets the batch's own status.
func (b *batchRun) finish() {
	b.state.Status = StatusSucceeded
	for _, ns := range b.state.Nodes {
		if ns.Status != StatusSucceeded {
			b.state.Status = StatusFailed
		}
	}
	if b.canceled {
		b.state.Status = StatusCanceled
	}
}

func (b *batchRun) summary() string {
	var bad []string
	for _, ns := range b.state.Nodes {
		if ns.Status != StatusSucceeded {
			bad = append(bad, ns.ID+" "+ns.Status)
		}
	}
	return fmt.Sprintf("batch %s: %s", b.in.Name, strings.Join(bad, ", "))
}
