package jobs

import (
	"context"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"

	"millrace/workflows"
)

// ListRequest filters and pages jobs.
type ListRequest struct {
	Status    string `json:"status,omitempty"`
	Notebook  string `json:"notebook,omitempty"`
	Label     string `json:"label,omitempty"`
	BatchID   string `json:"batch_id,omitempty"`
	Limit     int    `json:"limit,omitempty"`
	PageToken string `json:"page_token,omitempty"`
}

// JobSummary is one row of a listing.
type JobSummary struct {
	JobID      string     `json:"job_id"`
	Kind       string     `json:"kind"` // run or batch
	Status     string     `json:"status"`
	Notebook   string     `json:"notebook,omitempty"`
	OutputPath string     `json:"output_path,omitempty"`
	Labels     []string   `json:"labels,omitempty"`
	BatchID    string     `json:"batch_id,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	EndedAt    *time.Time `json:"ended_at,omitempty"`
}

// List is a page of jobs, newest first within open and closed ones.
type List struct {
	Jobs          []JobSummary   `json:"jobs"`
	Counts        map[string]int `json:"counts"`
	NextPageToken string         `json:"next_page_token,omitempty"`
}

// Limits of a listing.
const (
	DefaultListLimit = 50
	MaxListLimit     = 500
)

// statuses a filter may name.
var statuses = []string{workflows.StatusPending, workflows.StatusRunning, workflows.StatusSucceeded,
	workflows.StatusFailed, workflows.StatusCanceled, workflows.StatusTimedOut}

// List returns jobs matching the filter, and how many jobs of each status
// match the other filters.
func (s *Service) List(ctx context.Context, req ListRequest) (List, error) {
	limit := req.Limit
	if limit <= 0 {
		limit = DefaultListLimit
	}
	if limit > MaxListLimit {
		limit = MaxListLimit
	}
	base, err := s.baseQuery(req)
	if err != nil {
		return List{}, err
	}
	query := base
	status := strings.ToUpper(req.Status)
	if status != "" {
		q, ok := statusQuery(status)
		if !ok {
			return List{}, userErrorf("status %q: use one of %s", req.Status, strings.Join(statuses, ", "))
		}
		query += " AND " + q
	}
	token := []byte(nil)
	if req.PageToken != "" {
		if token, err = decodeToken(req.PageToken); err != nil {
			return List{}, userErrorf("page_token is not one list_jobs returned: omit it to start from the first page")
		}
	}
	resp, err := s.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Namespace: s.Namespace, PageSize: int32(limit), NextPageToken: token, Query: query,
	})
	if err != nil {
		return List{}, fmt.Errorf("list jobs: %w", err)
	}
	out := List{Jobs: []JobSummary{}, NextPageToken: encodeToken(resp.GetNextPageToken())}
	for _, e := range resp.GetExecutions() {
		if !s.visible(e.GetSearchAttributes()) {
			continue
		}
		st := Status{JobID: e.GetExecution().GetWorkflowId()}
		readAttributes(&st, e.GetSearchAttributes(), e.GetMemo(), s.dc())
		row := JobSummary{
			JobID: st.JobID, Kind: "run", Notebook: st.Notebook, OutputPath: st.OutputPath,
			Labels: st.Labels, BatchID: st.BatchID, CreatedAt: e.GetStartTime().AsTime(),
		}
		if e.GetType().GetName() == workflows.BatchWorkflow {
			row.Kind = "batch"
		}
		row.Status = st.Status
		if e.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			row.Status = s.openStatus(ctx, st.JobID)
		} else {
			if row.Status == "" || e.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED {
				row.Status = statusOfExecution(e.GetStatus())
			}
			t := e.GetCloseTime().AsTime()
			row.EndedAt = &t
			s.statuses.closed(st.JobID)
		}
		if (status == workflows.StatusPending || status == workflows.StatusRunning) && row.Status != status {
			continue
		}
		out.Jobs = append(out.Jobs, row)
	}
	if out.Counts, err = s.counts(ctx, base); err != nil {
		return List{}, err
	}
	return out, nil
}

// openStatus tells PENDING from RUNNING for an open job: only its pending
// activity knows.
func (s *Service) openStatus(ctx context.Context, jobID string) string {
	desc, err := s.describe(ctx, jobID)
	if err != nil {
		return workflows.StatusRunning
	}
	for _, pa := range desc.GetPendingActivities() {
		if pa.GetState() != enumspb.PENDING_ACTIVITY_STATE_SCHEDULED {
			return workflows.StatusRunning
		}
	}
	if desc.GetWorkflowExecutionInfo().GetType().GetName() == workflows.BatchWorkflow {
		return workflows.StatusRunning
	}
	return workflows.StatusPending
}

// counts counts matching jobs by status. Open jobs are counted together as
// RUNNING: telling PENDING apart would take a describe per job.
func (s *Service) counts(ctx context.Context, base string) (map[string]int, error) {
	out := map[string]int{}
	for _, st := range []string{workflows.StatusRunning, workflows.StatusSucceeded, workflows.StatusFailed, workflows.StatusCanceled, workflows.StatusTimedOut} {
		q, _ := statusQuery(st)
		resp, err := s.Client.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: s.Namespace, Query: base + " AND " + q})
		if err != nil {
			return nil, fmt.Errorf("count jobs: %w", err)
		}
		out[st] = int(resp.GetCount())
	}
	return out, nil
}

func (s *Service) baseQuery(req ListRequest) (string, error) {
	// Jobs of this deployment only: several may share a namespace, each on
	// its own task queue.
	q := fmt.Sprintf("(WorkflowType = '%s' OR WorkflowType = '%s') AND TaskQueue = %s", workflows.NotebookRunWorkflow, workflows.BatchWorkflow, quote(s.TaskQueue))
	// Only the jobs whose files lie inside this server's roots.
	q += " AND " + s.scopeQuery()
	if req.Notebook != "" {
		nb, err := s.Roots.Existing(req.Notebook)
		if err != nil {
			// A notebook since deleted still has jobs: match the path as given.
			nb = req.Notebook
		}
		q += fmt.Sprintf(" AND %s = %s", workflows.AttrNotebook, quote(nb))
	}
	if req.Label != "" {
		q += fmt.Sprintf(" AND %s = %s", workflows.AttrLabels, quote(req.Label))
	}
	if req.BatchID != "" {
		q += fmt.Sprintf(" AND %s = %s", workflows.AttrBatchID, quote(req.BatchID))
	}
	return q, nil
}

// statusQuery is the visibility query for a status. Closed runs carry their
// final status as an attribute, except terminated ones, which ran no code.
func statusQuery(status string) (string, bool) {
	switch status {
	case workflows.StatusPending, workflows.StatusRunning:
		return "ExecutionStatus = 'Running'", true
	case workflows.StatusCanceled:
		return fmt.Sprintf("(%s = 'CANCELED' OR ExecutionStatus = 'Terminated' OR ExecutionStatus = 'Canceled')", workflows.AttrStatus), true
	case workflows.StatusSucceeded, workflows.StatusFailed, workflows.StatusTimedOut:
		return fmt.Sprintf("(%s = '%s' AND ExecutionStatus != 'Terminated')", workflows.AttrStatus, status), true
	}
	return "", false
}

// quote makes a visibility query string literal.
func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
