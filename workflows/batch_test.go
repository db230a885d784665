package workflows

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"millrace/internal/failure"
)

// timeline records when mocked node activities start and end.
type timeline struct {
	mu      sync.Mutex
	events  []string
	running int
	peak    int
}

func (tl *timeline) run(ctx context.Context, in RunInput, d time.Duration, fail bool) (AttemptResult, error) {
	tl.mu.Lock()
	tl.events = append(tl.events, "start "+in.NodeID)
	tl.running++
	tl.peak = max(tl.peak, tl.running)
	tl.mu.Unlock()
	var err error
	select {
	case <-time.After(d):
	case <-ctx.Done():
		err = ctx.Err()
	}
	tl.mu.Lock()
	tl.events = append(tl.events, "end "+in.NodeID)
	tl.running--
	tl.mu.Unlock()
	if err != nil {
		return AttemptResult{}, err
	}
	if fail {
		return AttemptResult{}, attemptErr(failure.TypeCellError, "boom", 1, false)
	}
	return AttemptResult{Attempt: 1, CellsExecuted: 1, CellsTotal: 1}, nil
}

func (tl *timeline) pos(event string) int {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for i, e := range tl.events {
		if e == event {
			return i
		}
	}
	return -1
}

func node(id string, deps ...string) BatchNode {
	return BatchNode{ID: id, JobID: "nb-test." + id, DependsOn: deps, Run: RunInput{Notebook: "/nb/" + id + ".ipynb", Output: "/out/" + id + ".ipynb", Cwd: "/nb", NodeID: id, MaxAttempts: 1}}
}

// batchEnv mocks the node activity: each node runs for d, and the nodes
// named in fail fail with a cell error; "slow" nodes run until canceled.
func batchEnv(t *testing.T, tl *timeline, d time.Duration, fail ...string) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	env := newEnv(t)
	env.RegisterWorkflowWithOptions(NotebookRun, workflow.RegisterOptions{Name: NotebookRunWorkflow})
	failing := map[string]bool{}
	for _, f := range fail {
		failing[f] = true
	}
	env.OnActivity(RunNotebookActivity, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in RunInput) (AttemptResult, error) {
			dd := d
			if in.NodeID == "slow" {
				dd = time.Hour
			}
			return tl.run(ctx, in, dd, failing[in.NodeID])
		})
	return env
}

func batchResult(t *testing.T, env *testsuite.TestWorkflowEnvironment) (map[string]string, string) {
	t.Helper()
	if !env.IsWorkflowCompleted() {
		t.Fatal("batch did not complete")
	}
	var st BatchState
	err := env.GetWorkflowError()
	var appErr *temporal.ApplicationError
	var canceled *temporal.CanceledError
	switch {
	case err == nil:
		env.GetWorkflowResult(&st)
	case errors.As(err, &appErr):
		appErr.Details(&st)
	case errors.As(err, &canceled):
		canceled.Details(&st)
	}
	out := map[string]string{}
	for _, n := range st.Nodes {
		out[n.ID] = n.Status
	}
	return out, st.Status
}

func TestBatchDiamondOrderAndOverlap(t *testing.T) {
	tl := &timeline{}
	env := batchEnv(t, tl, 300*time.Millisecond)
	env.ExecuteWorkflow(Batch, BatchInput{Name: "diamond", MaxParallel: 4, Nodes: []BatchNode{node("a"), node("b", "a"), node("c", "a"), node("d", "b", "c")}})
	nodes, status := batchResult(t, env)
	if status != StatusSucceeded || len(nodes) != 4 {
		t.Fatalf("got %s %v", status, nodes)
	}
	if !(tl.pos("end a") < tl.pos("start b") && tl.pos("end a") < tl.pos("start c")) {
		t.Fatalf("b or c started before a ended: %v", tl.events)
	}
	if !(tl.pos("end b") < tl.pos("start d") && tl.pos("end c") < tl.pos("start d")) {
		t.Fatalf("d started before b and c ended: %v", tl.events)
	}
	if !(tl.pos("start b") < tl.pos("end c") && tl.pos("start c") < tl.pos("end b")) {
		t.Fatalf("b and c did not overlap: %v", tl.events)
	}
}

func TestBatchMaxParallel(t *testing.T) {
	tl := &timeline{}
	env := batchEnv(t, tl, 200*time.Millisecond)
	env.ExecuteWorkflow(Batch, BatchInput{MaxParallel: 2, Nodes: []BatchNode{node("a"), node("b"), node("c"), node("d"), node("e")}})
	if _, status := batchResult(t, env); status != StatusSucceeded {
		t.Fatalf("status %s", status)
	}
	if tl.peak != 2 {
		t.Fatalf("peak concurrency %d, want 2", tl.peak)
	}
}

func TestBatchSkipsDependentsOfFailure(t *testing.T) {
	tl := &timeline{}
	env := batchEnv(t, tl, 100*time.Millisecond, "b")
	env.ExecuteWorkflow(Batch, BatchInput{Nodes: []BatchNode{node("a"), node("b", "a"), node("c", "b"), node("d", "c"), node("x")}})
	nodes, status := batchResult(t, env)
	want := map[string]string{"a": StatusSucceeded, "b": StatusFailed, "c": NodeSkipped, "d": NodeSkipped, "x": StatusSucceeded}
	for id, s := range want {
		if nodes[id] != s {
			t.Errorf("node %s: %s, want %s", id, nodes[id], s)
		}
	}
	if status != StatusFailed {
		t.Fatalf("batch %s, want FAILED", status)
	}
}

func TestBatchFailFastCancelsRunning(t *testing.T) {
	tl := &timeline{}
	env := batchEnv(t, tl, 100*time.Millisecond, "a")
	env.ExecuteWorkflow(Batch, BatchInput{FailFast: true, Nodes: []BatchNode{node("a"), node("slow"), node("after", "slow")}})
	nodes, status := batchResult(t, env)
	if status != StatusFailed || nodes["a"] != StatusFailed || nodes["slow"] != StatusCanceled || nodes["after"] != NodeSkipped {
		t.Fatalf("got %s %v, want FAILED with slow CANCELED and after SKIPPED", status, nodes)
	}
}

func TestBatchCancelWaitsForChildren(t *testing.T) {
	tl := &timeline{}
	env := batchEnv(t, tl, 100*time.Millisecond)
	env.RegisterDelayedCallback(env.CancelWorkflow, time.Second)
	env.ExecuteWorkflow(Batch, BatchInput{Nodes: []BatchNode{node("a"), node("slow", "a"), node("after", "slow")}})
	nodes, status := batchResult(t, env)
	if status != StatusCanceled || nodes["a"] != StatusSucceeded || nodes["slow"] != StatusCanceled || nodes["after"] != NodeSkipped {
		t.Fatalf("got %s %v, want CANCELED with slow CANCELED", status, nodes)
	}
}

func TestBatchRerunRunsOnlyWhatDidNotSucceed(t *testing.T) {
	tl := &timeline{}
	env := batchEnv(t, tl, 100*time.Millisecond)
	a := node("a")
	a.Reused = true
	env.ExecuteWorkflow(Batch, BatchInput{Round: 2, Nodes: []BatchNode{a, node("b", "a"), node("c", "b")}})
	nodes, status := batchResult(t, env)
	if status != StatusSucceeded || nodes["a"] != StatusSucceeded {
		t.Fatalf("got %s %v", status, nodes)
	}
	if tl.pos("start a") >= 0 || tl.pos("start b") < 0 || tl.pos("start c") < 0 {
		t.Fatalf("events %v: the reused node must not run again", tl.events)
	}
}
