package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"millrace/workflows"
)

// BatchNodeStatus is one node of a batch status.
type BatchNodeStatus struct {
	workflows.NodeState
	Progress *Progress `json:"progress,omitempty"` // for running nodes
}

// BatchStatus is a batch's state, as get_batch_status shows it.
type BatchStatus struct {
	BatchID   string            `json:"batch_id"`
	Name      string            `json:"name,omitempty"`
	Status    string            `json:"status"`
	Round     int               `json:"round"`
	Counts    map[string]int    `json:"counts"`
	Nodes     []BatchNodeStatus `json:"nodes"`
	Mermaid   string            `json:"mermaid"`
	CreatedAt time.Time         `json:"created_at"`
	EndedAt   *time.Time        `json:"ended_at,omitempty"`
	Priority  string            `json:"priority,omitempty"`
	// Notification says how the completion webhook (notify_url) went.
	Notification *workflows.Notification `json:"notification,omitempty"`
}

// Ended reports whether the batch has finished.
func (b BatchStatus) Ended() bool { return b.Status != workflows.StatusRunning }

// BatchStatus describes a batch: per-node states from the workflow's query
// while it runs, from its result once it has ended.
func (s *Service) BatchStatus(ctx context.Context, batchID string) (BatchStatus, error) {
	if !strings.HasPrefix(batchID, workflows.BatchIDPrefix) {
		return BatchStatus{}, userErrorf("%q is not a batch id: batch ids look like %s<uuid>, as start_batch returns them", batchID, workflows.BatchIDPrefix)
	}
	desc, err := s.describe(ctx, batchID)
	if err != nil {
		return BatchStatus{}, s.notFound(batchID, err)
	}
	info := desc.GetWorkflowExecutionInfo()
	if !s.visible(info.GetSearchAttributes()) || info.GetType().GetName() != workflows.BatchWorkflow {
		return BatchStatus{}, s.unknownJob(batchID)
	}
	out := BatchStatus{BatchID: batchID, CreatedAt: info.GetStartTime().AsTime()}
	state, err := s.batchState(ctx, batchID, info.GetStatus())
	if err != nil {
		return BatchStatus{}, err
	}
	out.Name, out.Status, out.Round = state.Name, state.Status, state.Round
	if info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED {
		out.Status = workflows.StatusCanceled
	}
	if t := info.GetCloseTime(); t != nil {
		end := t.AsTime()
		out.EndedAt = &end
	}
	out.Counts = map[string]int{}
	for _, n := range state.Nodes {
		ns := BatchNodeStatus{NodeState: n}
		if n.JobID != "" && n.Status != workflows.StatusRunning && n.Status != workflows.StatusPending {
			s.statuses.closed(n.JobID)
		}
		if n.Status == workflows.StatusRunning {
			if st, err := s.Status(ctx, n.JobID); err == nil {
				p := st.Progress
				ns.Progress = &p
				if st.Status == workflows.StatusPending {
					ns.Status = workflows.StatusPending
				}
			}
		}
		out.Counts[ns.Status]++
		out.Nodes = append(out.Nodes, ns)
	}
	out.Mermaid = mermaid(out.Nodes)
	out.Priority = workflows.PriorityName(int(info.GetPriority().GetPriorityKey()))
	out.Notification = s.notification(ctx, workflows.NotifyID(batchID, out.Round), memoNotifyURL(info.GetMemo(), s.dc()), out.Ended())
	return out, nil
}

// batchState reads a batch's node states: by query while it runs, from the
// result (or the failure's details) once closed.
func (s *Service) batchState(ctx context.Context, batchID string, exec enumspb.WorkflowExecutionStatus) (workflows.BatchState, error) {
	var state workflows.BatchState
	if exec == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		v, err := s.Client.QueryWorkflow(ctx, batchID, "", workflows.QueryBatchState)
		if err != nil {
			return state, fmt.Errorf("query batch %s: %w", batchID, err)
		}
		return state, v.Get(&state)
	}
	err := s.Client.GetWorkflow(ctx, batchID, "").Get(ctx, &state)
	var appErr *temporal.ApplicationError
	var canceled *temporal.CanceledError
	switch {
	case err == nil:
	case errors.As(err, &appErr) && appErr.HasDetails():
		err = appErr.Details(&state)
	case errors.As(err, &canceled) && canceled.HasDetails():
		err = canceled.Details(&state)
	}
	if err != nil {
		// Terminated: no result. The input still says what the nodes were.
		in, ierr := s.batchInput(ctx, batchID)
		if ierr != nil {
			return state, fmt.Errorf("read batch %s: %v", batchID, err)
		}
		state = workflows.BatchState{Name: in.Name, Status: statusOfExecution(exec), Round: max(in.Round, 1)}
		for _, n := range in.Nodes {
			state.Nodes = append(state.Nodes, workflows.NodeState{ID: n.ID, JobID: n.JobID, Status: workflows.StatusCanceled, DependsOn: n.DependsOn, Notebook: n.Run.Notebook, Output: n.Run.Output})
		}
	}
	return state, nil
}

// batchInput reads the input a batch (its latest run) was started with.
func (s *Service) batchInput(ctx context.Context, batchID string) (workflows.BatchInput, error) {
	var in workflows.BatchInput
	ev, err := s.firstEvent(ctx, batchID)
	if err != nil {
		return in, err
	}
	payloads := ev.GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()
	if len(payloads) == 0 {
		return in, fmt.Errorf("batch %s has no input", batchID)
	}
	if err := s.dc().FromPayload(payloads[0], &in); err != nil {
		return in, fmt.Errorf("read input of batch %s: %w", batchID, err)
	}
	return in, nil
}

// mermaid draws the DAG as a Mermaid flowchart, nodes coloured by state.
func mermaid(nodes []BatchNodeStatus) string {
	var b strings.Builder
	b.WriteString("flowchart LR\n")
	for _, n := range nodes {
		label := n.ID + "<br/>" + n.Status
		if n.Progress != nil && n.Progress.CellsTotal > 0 {
			label += " " + n.Progress.String()
		}
		fmt.Fprintf(&b, "  %s[\"%s\"]:::%s\n", mermaidID(n.ID), label, strings.ToLower(n.Status))
	}
	for _, n := range nodes {
		for _, d := range n.DependsOn {
			fmt.Fprintf(&b, "  %s --> %s\n", mermaidID(d), mermaidID(n.ID))
		}
	}
	for _, c := range [][2]string{
		{"succeeded", "fill:#c8e6c9,stroke:#2e7d32"}, {"running", "fill:#bbdefb,stroke:#1565c0"},
		{"pending", "fill:#eeeeee,stroke:#757575"}, {"waiting", "fill:#ffffff,stroke:#9e9e9e"},
		{"failed", "fill:#ffcdd2,stroke:#c62828"}, {"timed_out", "fill:#ffe0b2,stroke:#ef6c00"},
		{"canceled", "fill:#e0e0e0,stroke:#424242"}, {"skipped", "fill:#fff9c4,stroke:#9e9d24"},
	} {
		fmt.Fprintf(&b, "  classDef %s %s\n", c[0], c[1])
	}
	return b.String()
}

// mermaidID keeps node ids valid in Mermaid (a bare "end" breaks a chart).
func mermaidID(id string) string { return "n_" + strings.ReplaceAll(id, "-", "_") }
