package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/temporal"

	"millrace/internal/failure"
	"millrace/internal/logstore"
	"millrace/internal/rundir"
	"millrace/workflows"
)

// Progress is how far a run has come.
type Progress struct {
	CellsDone     int     `json:"cells_done"`
	CellsTotal    int     `json:"cells_total"`
	Percent       float64 `json:"percent"`
	CurrentCell   int     `json:"current_cell,omitempty"` // 1-based among code cells while one runs; 0 when none
	CurrentSource string  `json:"current_source,omitempty"`
	// ResumedAt is the cell (counted as CurrentCell) where the running
	// attempt went on after restoring a checkpoint; 0 when it did not.
	ResumedAt int `json:"resumed_at,omitempty"`
}

// String renders progress as "cell 5/12", or "cell 14/40, resumed at cell
// 12/40" for an attempt that restored a checkpoint.
func (p Progress) String() string {
	if p.CellsTotal == 0 {
		return "starting"
	}
	s := fmt.Sprintf("%d/%d cells", p.CellsDone, p.CellsTotal)
	if p.CurrentCell > 0 {
		s = fmt.Sprintf("cell %d/%d", p.CurrentCell, p.CellsTotal)
	}
	if p.ResumedAt > 0 {
		if p.CurrentCell == p.ResumedAt {
			return fmt.Sprintf("resumed at cell %d/%d", p.ResumedAt, p.CellsTotal)
		}
		s += fmt.Sprintf(", resumed at cell %d/%d", p.ResumedAt, p.CellsTotal)
	}
	return s
}

// CheckpointInfo is a run's last complete checkpoint, as status shows it.
type CheckpointInfo = workflows.CheckpointSummary

// ResumedFrom says which job and checkpoint a rerun with from_cell
// started from.
type ResumedFrom struct {
	JobID    string `json:"job_id"`
	FromCell int    `json:"from_cell"`
	// CheckpointCell is the last cell the restored checkpoint holds: the
	// run went on from the cell after it.
	CheckpointCell int `json:"checkpoint_cell"`
}

// Failure describes why a run failed, with a traceback excerpt.
type Failure struct {
	Type      failure.Type `json:"type"`
	Message   string       `json:"message"`
	CellIndex *int         `json:"cell_index,omitempty"` // in the input notebook
	// OutputCellIndex is the cell's index in the output notebook, which
	// has the injected parameters cell and papermill's error markers.
	OutputCellIndex *int     `json:"output_cell_index,omitempty"`
	ExecutionCount  *int     `json:"execution_count,omitempty"`
	Source          string   `json:"source_excerpt,omitempty"`
	EName           string   `json:"ename,omitempty"`
	EValue          string   `json:"evalue,omitempty"`
	Traceback       []string `json:"traceback,omitempty"`
}

// Attempt says how one attempt ended.
type Attempt struct {
	Attempt int       `json:"attempt"`
	Outcome string    `json:"outcome"`
	Message string    `json:"message"`
	EndedAt time.Time `json:"ended_at"`
	// ResumedFromCell is the input-notebook index of the first cell the
	// attempt ran after restoring a checkpoint; absent when it ran from
	// the start.
	ResumedFromCell int `json:"resumed_from_cell,omitempty"`
}

// Status is a job's state, as get_job_status and `millrace status` show it.
type Status struct {
	JobID       string     `json:"job_id"`
	Status      string     `json:"status"`
	Message     string     `json:"message,omitempty"`
	Notebook    string     `json:"notebook"`
	OutputPath  string     `json:"output_path"`
	Executor    string     `json:"executor,omitempty"`
	Kernel      string     `json:"kernel,omitempty"`
	Progress    Progress   `json:"progress"`
	Attempt     int        `json:"attempt"`
	MaxAttempts int        `json:"max_attempts"`
	CreatedAt   time.Time  `json:"created_at"`
	StartedAt   *time.Time `json:"started_at,omitempty"`
	EndedAt     *time.Time `json:"ended_at,omitempty"`
	Duration    float64    `json:"duration_seconds"`
	Labels      []string   `json:"labels,omitempty"`
	BatchID     string     `json:"batch_id,omitempty"`
	Error       *Failure   `json:"error,omitempty"`
	// Attempts lists how each earlier (and the final) attempt ended.
	Attempts []Attempt `json:"attempts,omitempty"`
	Warnings []string  `json:"warnings,omitempty"`
	Priority string    `json:"priority,omitempty"` // high, normal or low
	// Notification says how the completion webhook (notify_url) went.
	Notification *workflows.Notification `json:"notification,omitempty"`
	// Checkpoint is the run's last complete checkpoint, if it took one.
	Checkpoint *CheckpointInfo `json:"checkpoint,omitempty"`
	// ResumedFrom is set for a rerun with from_cell.
	ResumedFrom *ResumedFrom `json:"resumed_from,omitempty"`
	// AsOf is when the read this answer comes from began: the run was in
	// this state at that moment or later.
	AsOf time.Time `json:"as_of"`
	// MaxStalenessMS is how old, at most, the answer of a run that has not
	// closed may be when it is served; absent once the answer is final.
	MaxStalenessMS int `json:"max_staleness_ms,omitempty"`
}

// Ended reports whether the job has reached a final status.
func (s Status) Ended() bool {
	return s.Status != workflows.StatusPending && s.Status != workflows.StatusRunning
}

// maxTraceback bounds the traceback lines a status carries.
const maxTraceback = 30

// Status describes a job, from a read of the server that began at most
// MaxStatusStaleness ago (statuscache.go).
func (s *Service) Status(ctx context.Context, jobID string) (Status, error) {
	return s.status(ctx, jobID, MaxStatusStaleness)
}

// FreshStatus describes a job from a read that begins now: for a caller
// about to act on the answer (cancel, a rerun from a checkpoint) or
// waiting for it to change.
func (s *Service) FreshStatus(ctx context.Context, jobID string) (Status, error) {
	return s.status(ctx, jobID, 0)
}

func (s *Service) status(ctx context.Context, jobID string, maxAge time.Duration) (Status, error) {
	if err := checkJobID(jobID); err != nil {
		return Status{}, err
	}
	return s.statuses.get(ctx, jobID, maxAge, func(ctx context.Context) (Status, error) {
		return s.readStatus(ctx, jobID)
	})
}

// readStatus reads a job's status from the server.
func (s *Service) readStatus(ctx context.Context, jobID string) (Status, error) {
	desc, err := s.describe(ctx, jobID)
	if err != nil {
		return Status{}, s.notFound(jobID, err)
	}
	info := desc.GetWorkflowExecutionInfo()
	if !s.visible(info.GetSearchAttributes()) {
		return Status{}, s.unknownJob(jobID)
	}
	if info.GetType().GetName() != workflows.NotebookRunWorkflow {
		return Status{}, userErrorf("%s is a %s, not a notebook run", jobID, info.GetType().GetName())
	}
	st := Status{JobID: jobID, CreatedAt: info.GetStartTime().AsTime(), MaxAttempts: workflows.DefaultMaxAttempts}
	readAttributes(&st, info.GetSearchAttributes(), info.GetMemo(), s.dc())

	if info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		st.Status, st.Message = workflows.StatusPending, "waiting for a worker slot"
		if len(desc.GetPendingActivities()) > 0 {
			pa := desc.GetPendingActivities()[0]
			st.Attempt = int(pa.GetAttempt())
			if m := int(pa.GetMaximumAttempts()); m > 0 {
				st.MaxAttempts = m
			}
			var p workflows.Progress
			hb := pa.GetHeartbeatDetails()
			if hb != nil && s.dc().FromPayloads(hb, &p) == nil {
				// A retry waiting to start still has its lost attempt's
				// checkpoint: the one it will resume from.
				st.Checkpoint = p.Checkpoint.Summary()
			}
			if hb != nil && p.Attempt == st.Attempt {
				st.Progress = progressOf(p.CellsDone, p.CellsTotal, p.CurrentCell, p.CurrentSource)
				st.Progress.ResumedAt = p.ResumedAt
				st.Executor = p.Executor
				if p.OutputPath != "" {
					st.OutputPath = p.OutputPath
				}
			}
			switch pa.GetState() {
			case enumspb.PENDING_ACTIVITY_STATE_STARTED, enumspb.PENDING_ACTIVITY_STATE_CANCEL_REQUESTED:
				st.Status, st.Message = workflows.StatusRunning, ""
				t := pa.GetLastStartedTime().AsTime()
				st.StartedAt = &t
				if pa.GetState() == enumspb.PENDING_ACTIVITY_STATE_CANCEL_REQUESTED {
					st.Message = "cancel requested; stopping the run"
				}
			case enumspb.PENDING_ACTIVITY_STATE_SCHEDULED:
				if st.Attempt > 1 {
					st.Message = fmt.Sprintf("waiting to start attempt %d of %d", st.Attempt, st.MaxAttempts)
					if lf := pa.GetLastFailure(); lf != nil {
						st.Message += ": attempt " + fmt.Sprint(st.Attempt-1) + " " + strings.TrimSpace(s.failureMessage(lf))
					}
				}
			}
		}
		st.Duration = time.Since(st.CreatedAt).Seconds()
	} else {
		if err := s.closedStatus(ctx, &st, info.GetStatus()); err != nil {
			return Status{}, err
		}
		if t := info.GetCloseTime(); t != nil {
			end := t.AsTime()
			st.EndedAt = &end
			st.Duration = end.Sub(st.CreatedAt).Seconds()
		}
	}
	st.Attempts = s.attempts(jobID)
	st.Priority = workflows.PriorityName(int(info.GetPriority().GetPriorityKey()))
	st.Notification = s.notification(ctx, workflows.NotifyID(jobID, 0), memoNotifyURL(info.GetMemo(), s.dc()), st.Ended())
	return st, nil
}

// runResult reads a closed run's RunResult: its result on success, its
// failure's details otherwise. terminated reports a run ended by Terminate,
// which runs no workflow code and so leaves no result.
func (s *Service) runResult(ctx context.Context, jobID string) (res workflows.RunResult, terminated bool, err error) {
	err = s.Client.GetWorkflow(ctx, jobID, "").Get(ctx, &res)
	var appErr *temporal.ApplicationError
	var canceled *temporal.CanceledError
	var term *temporal.TerminatedError
	var timeout *temporal.TimeoutError
	switch {
	case err == nil:
	case errors.As(err, &appErr):
		if appErr.HasDetails() {
			_ = appErr.Details(&res)
		}
	case errors.As(err, &canceled):
		if canceled.HasDetails() {
			_ = canceled.Details(&res)
		}
	case errors.As(err, &term):
		return res, true, nil
	case errors.As(err, &timeout):
	default:
		return res, false, fmt.Errorf("read result of %s: %w", jobID, err)
	}
	return res, false, nil
}

// closedStatus fills a closed run's status from its result: the result on
// success, the failure's details otherwise.
func (s *Service) closedStatus(ctx context.Context, st *Status, exec enumspb.WorkflowExecutionStatus) error {
	res, terminated, err := s.runResult(ctx, st.JobID)
	switch {
	case err != nil && exec != enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:
		return err
	case terminated:
		res.Status = workflows.StatusCanceled
		res.Error = &workflows.RunError{Type: failure.TypeTerminated, Message: "the run was terminated (by an operator, outside millrace); its processes were stopped when its worker noticed"}
	case res.Status == "" && exec == enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:
		res.Status = workflows.StatusTimedOut
		res.Error = &workflows.RunError{Type: failure.TypeTimeout, Message: "the workflow execution timed out"}
	}
	if res.Status == "" {
		res.Status = statusOfExecution(exec)
	}
	st.Status = res.Status
	st.Executor, st.Kernel, st.Warnings = res.Executor, res.Kernel, res.Warnings
	if res.OutputPath != "" {
		st.OutputPath = res.OutputPath
	}
	if res.Attempts > 0 {
		st.Attempt = res.Attempts
	}
	st.Progress = progressOf(res.CellsExecuted, res.CellsTotal, -1, "")
	st.Checkpoint = res.LastCheckpoint().Summary()
	if !res.StartedAt.IsZero() {
		t := res.StartedAt
		st.StartedAt = &t
	}
	if res.Error != nil {
		st.Error = failureOf(res.Error)
	}
	return nil
}

func statusOfExecution(s enumspb.WorkflowExecutionStatus) string {
	switch s {
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		return workflows.StatusSucceeded
	case enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED, enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED:
		return workflows.StatusCanceled
	case enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:
		return workflows.StatusTimedOut
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return workflows.StatusRunning
	}
	return workflows.StatusFailed
}

func failureOf(e *workflows.RunError) *Failure {
	f := &Failure{Type: e.Type, Message: e.Message}
	if c := e.Cell; c != nil {
		idx, out := c.Index, c.OutputIndex
		f.CellIndex, f.OutputCellIndex, f.ExecutionCount, f.Source = &idx, &out, c.ExecutionCount, c.SourceExcerpt
		f.EName, f.EValue, f.Traceback = c.EName, c.EValue, c.Traceback
		if len(f.Traceback) > maxTraceback {
			f.Traceback = append(append([]string{}, f.Traceback[:5]...), append([]string{"..."}, f.Traceback[len(f.Traceback)-(maxTraceback-6):]...)...)
		}
	}
	return f
}

func progressOf(done, total, current int, source string) Progress {
	p := Progress{CellsDone: done, CellsTotal: total, CurrentSource: source}
	if total > 0 {
		p.Percent = float64(int(1000*float64(done)/float64(total))) / 10
	}
	if current >= 0 && total > 0 {
		p.CurrentCell = current + 1
	}
	return p
}

// attempts reads the end records of a job's attempts.
func (s *Service) attempts(jobID string) []Attempt {
	ns, _ := logstore.Attempts(rundir.JobDir(s.DataDir, jobID))
	var out []Attempt
	for _, n := range ns {
		if e, ok, err := rundir.ReadEnd(rundir.AttemptDir(s.DataDir, jobID, n)); ok && err == nil {
			out = append(out, Attempt{Attempt: n, Outcome: e.Outcome, Message: e.Message, EndedAt: e.EndedAt, ResumedFromCell: e.ResumedFromCell})
		}
	}
	return out
}

// notFound turns Temporal's NotFound into a UserError that says what to do.
func (s *Service) notFound(jobID string, err error) error {
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return s.unknownJob(jobID)
	}
	return fmt.Errorf("describe %s: %w", jobID, err)
}

// checkJobID rejects ids that cannot be a job before asking Temporal.
func checkJobID(id string) error {
	if !strings.HasPrefix(id, workflows.RunIDPrefix) && !strings.HasPrefix(id, workflows.BatchIDPrefix) || len(id) > 200 || strings.ContainsAny(id, "/\\\x00 ") {
		return userErrorf("%q is not a job id: job ids look like %s<uuid> (as start_notebook returns them)", id, workflows.RunIDPrefix)
	}
	return nil
}

// describe is the workflow execution of id as the server holds it: its
// status, pending activity with its last heartbeat, memo and search
// attributes, payloads still encoded (s.dc() decodes them).
func (s *Service) describe(ctx context.Context, id string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	d, err := s.Client.DescribeWorkflow(ctx, id, "")
	if err != nil {
		return nil, err
	}
	return d.RawResponse, nil
}
