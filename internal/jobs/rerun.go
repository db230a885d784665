package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"millrace/internal/notebook"
	"millrace/internal/rundir"
	"millrace/internal/runenv"
	"millrace/workflows"
)

// IsBatchID reports whether id names a batch rather than a single run.
func IsBatchID(id string) bool { return strings.HasPrefix(id, workflows.BatchIDPrefix) }

// RerunBatch runs a finished batch again under the same batch id, running
// only the nodes that did not succeed (failed, skipped, canceled, timed
// out) and reusing the outputs of those that did: a long pipeline that died
// at its last node does not start over.
func (s *Service) RerunBatch(ctx context.Context, batchID string) (BatchStarted, error) {
	return s.RerunBatchWith(ctx, batchID, RerunOptions{})
}

// RerunBatchWith is RerunBatch with options. With FromCell, each node that
// runs again goes on from its previous job's latest checkpoint before that
// cell (a FromCell past a node's last cell: its latest checkpoint); a node
// without one runs from its first cell, with a warning.
func (s *Service) RerunBatchWith(ctx context.Context, batchID string, opts RerunOptions) (BatchStarted, error) {
	if err := opts.check(); err != nil {
		return BatchStarted{}, err
	}
	st, err := s.BatchStatus(ctx, batchID)
	if err != nil {
		return BatchStarted{}, err
	}
	if !st.Ended() {
		return BatchStarted{}, userErrorf("batch %s is still running; cancel it first or wait for it to end", batchID)
	}
	prev, err := s.batchInput(ctx, batchID)
	if err != nil {
		return BatchStarted{}, err
	}
	var req BatchRequest
	if err := json.Unmarshal(prev.Spec, &req); err != nil {
		return BatchStarted{}, fmt.Errorf("read batch %s request: %w", batchID, err)
	}
	reuse := map[string]workflows.NodeState{}
	for _, n := range st.Nodes {
		if n.Status == workflows.StatusSucceeded {
			reuse[n.ID] = n.NodeState
		}
	}
	if len(reuse) == len(st.Nodes) {
		return BatchStarted{}, userErrorf("every node of batch %s succeeded: there is nothing to rerun", batchID)
	}
	in, err := s.resolveBatch(batchID, req, st.Round+1, reuse)
	if err != nil {
		return BatchStarted{}, err
	}
	if opts.FromCell > 0 {
		if err := s.resumeNodes(ctx, &in, st, opts); err != nil {
			return BatchStarted{}, err
		}
	}
	return s.launchBatch(ctx, batchID, req, in)
}

// resumeNodes gives each node of a batch rerun that runs again the resume
// of its previous round's job, refusing the whole rerun, with every node's
// problem, when a node's checkpoint may not be restored. Each node runs the
// notebook path the batch's request names, the same as in the previous
// round. The batch workflow starts each node with its Run input as it is,
// so the resume travels in it and the workflow does not change.
func (s *Service) resumeNodes(ctx context.Context, in *workflows.BatchInput, st BatchStatus, opts RerunOptions) error {
	prevJob := map[string]BatchNodeStatus{}
	for _, n := range st.Nodes {
		prevJob[n.ID] = n
	}
	var problems []string
	for i := range in.Nodes {
		bn := &in.Nodes[i]
		if bn.Reused {
			continue
		}
		prev := prevJob[bn.ID]
		if prev.StartedAt == nil || prev.Status == workflows.NodeSkipped {
			bn.Run.Warnings = append(bn.Run.Warnings, fmt.Sprintf("%sruns from its first cell: it did not run in round %d (%s), so it has no checkpoint", resumeWarningPrefix, st.Round, prev.Status))
			continue
		}
		prevIn, err := s.StartedInput(ctx, prev.JobID)
		if err != nil {
			return fmt.Errorf("node %s: read the input of its job %s: %w", bn.ID, prev.JobID, err)
		}
		r, warning, found, err := s.resumeRun(ctx, prev.JobID, prevIn, bn.Run, opts, false)
		switch {
		case err != nil && !found && IsUserError(err):
			bn.Run.Warnings = append(bn.Run.Warnings, fmt.Sprintf("%sruns from its first cell: %v", resumeWarningPrefix, err))
		case err != nil && IsUserError(err):
			problems = append(problems, fmt.Sprintf("node %s: %v", bn.ID, err))
		case err != nil:
			return fmt.Errorf("node %s: %w", bn.ID, err)
		default:
			bn.Run.Resume = r
			if warning != "" {
				bn.Run.Warnings = append(bn.Run.Warnings, warning)
			}
		}
	}
	if len(problems) > 0 {
		return &UserError{Msg: strings.Join(problems, "; ")}
	}
	return nil
}

// RerunRun starts a finished or running run's notebook again with the same
// input, as a new job, from its first cell. Its default output goes to the
// new job's directory.
func (s *Service) RerunRun(ctx context.Context, jobID string) (Started, error) {
	r, err := s.RerunRunWith(ctx, jobID, RerunOptions{})
	return r.Started, err
}

// RerunStarted answers a rerun of a run: the new job, and where it resumes
// when it does.
type RerunStarted struct {
	Started
	// Resume is the checkpoint the new job goes on from; nil when it runs
	// from its first cell.
	Resume *workflows.Resume `json:"resume,omitempty"`
}

// RerunRunWith is RerunRun with options. With FromCell, the source job must
// have ended: the new job restores its latest checkpoint taken before that
// cell in a fresh kernel and runs the notebook, as it is now, from the cell
// after the checkpoint's. Nothing starts when the checkpoint may not be
// restored (none before the cell, other parameters, partial without
// AllowPartial, a file that changed on disk).
func (s *Service) RerunRunWith(ctx context.Context, jobID string, opts RerunOptions) (RerunStarted, error) {
	if err := opts.check(); err != nil {
		return RerunStarted{}, err
	}
	in, err := s.StartedInput(ctx, jobID)
	if err != nil {
		return RerunStarted{}, err
	}
	if err := s.recheck(&in, jobID); err != nil {
		return RerunStarted{}, err
	}
	// A run that resumed is rerun from its first cell unless from_cell
	// asks again: its resume and the warnings about it are not carried.
	var resume *workflows.Resume
	warnings := withoutResumeWarnings(in.Warnings)
	if opts.FromCell > 0 {
		st, err := s.FreshStatus(ctx, jobID)
		if err != nil {
			return RerunStarted{}, err
		}
		if !st.Ended() {
			return RerunStarted{}, userErrorf("job %s is %s: a rerun with from_cell resumes from the checkpoints of a job that has ended; wait for it (or cancel it) first", jobID, st.Status)
		}
		// in is jobID's own input, rechecked: its Resume is the one the
		// job ran with, and its parameters are the ones it ran with.
		r, warning, found, err := s.resumeRun(ctx, jobID, in, in, opts, true)
		if err != nil && !found {
			return RerunStarted{}, userErrorf("%v; rerun without from_cell", err)
		}
		if err != nil {
			return RerunStarted{}, err
		}
		resume = r
		if warning != "" {
			warnings = append(warnings, warning)
		}
	}
	in.Warnings = warnings
	in.Resume = resume
	newID := workflows.RunIDPrefix + uuid.NewString()
	if in.DefaultOutput || in.Output == rundir.DefaultOutput(s.DataDir, jobID) {
		in.Output, in.DefaultOutput = rundir.DefaultOutput(s.DataDir, newID), true
	}
	in.BatchID, in.NodeID = "", ""
	if _, err := s.Client.ExecuteWorkflow(ctx, s.runOptions(newID, in), workflows.NotebookRunWorkflow, in); err != nil {
		return RerunStarted{}, fmt.Errorf("start workflow: %w", err)
	}
	return RerunStarted{
		Started: Started{JobID: newID, Status: workflows.StatusPending, OutputPath: in.Output, Notebook: in.Notebook, Warnings: in.Warnings},
		Resume:  resume,
	}, nil
}

// resumeRun is the resume of job (whose recorded input is jobIn) for a new
// run whose input is next, already rechecked. next's notebook, as it is
// now, bounds from_cell for a run's rerun (explicit); for a batch node a
// from_cell past its last cell means its latest checkpoint. found is false,
// with a UserError that says why, only when job has no checkpoint before
// the cell; any other UserError refuses the rerun.
func (s *Service) resumeRun(ctx context.Context, job string, jobIn, next workflows.RunInput, opts RerunOptions, explicit bool) (r *workflows.Resume, warning string, found bool, err error) {
	nb, err := notebook.Load(next.Notebook)
	if err != nil && !errors.Is(err, notebook.ErrNoCodeCells) {
		return nil, "", true, userErrorf("notebook %s: %v", next.Notebook, err)
	}
	if cells := len(nb.Cells); explicit && opts.FromCell >= cells {
		return nil, "", true, userErrorf("from_cell %d: %s has %d cells now (indexes 0 to %d), so from_cell must be 1 to %d", opts.FromCell, next.Notebook, cells, cells-1, cells-1)
	}
	return s.resumeFor(ctx, job, jobIn, next.Parameters, opts.FromCell, nb, opts.AllowPartial)
}

// recheck resolves a stored input's paths inside the roots again and checks
// its env with today's rule: the files may have moved (or been swapped for
// symlinks) since the run, and the rule may have tightened.
func (s *Service) recheck(in *workflows.RunInput, jobID string) error {
	var problems []string
	nb, err := s.Roots.Existing(in.Notebook)
	if err != nil {
		problems = append(problems, fmt.Sprintf("notebook: %v", err))
	}
	cwd, err := s.Roots.Existing(in.Cwd)
	if err != nil {
		problems = append(problems, fmt.Sprintf("cwd: %v", err))
	}
	out := in.Output
	if !in.DefaultOutput && in.Output != rundir.DefaultOutput(s.DataDir, jobID) {
		if out, err = s.Roots.Writable(in.Output); err != nil {
			problems = append(problems, fmt.Sprintf("output_path: %v", err))
		}
	}
	if err := runenv.CheckNames(in.Env, s.AllowEnv); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return userErrorf("cannot rerun %s: %s", jobID, strings.Join(problems, "; "))
	}
	in.Notebook, in.Cwd, in.Output, in.Roots = nb, cwd, out, s.Roots.Dirs()
	return nil
}
