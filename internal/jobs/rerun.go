package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/uuid"

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
	st, err := s.BatchStatus(ctx, batchID)
	if err != nil {
		return BatchStarted{}, err
	}
	if !st.Ended() {
		return BatchStarted{}, userErrorf("batch %s is still running; cancel it first or wait for it to end", batchID)
	}
	in, err := s.batchInput(ctx, batchID)
	if err != nil {
		return BatchStarted{}, err
	}
	var req BatchRequest
	if err := json.Unmarshal(in.Spec, &req); err != nil {
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
	return s.startBatch(ctx, batchID, req, st.Round+1, reuse)
}

// RerunRun starts a finished or running run's notebook again with the same
// input, as a new job. Its default output goes to the new job's directory.
func (s *Service) RerunRun(ctx context.Context, jobID string) (Started, error) {
	in, err := s.StartedInput(ctx, jobID)
	if err != nil {
		return Started{}, err
	}
	if err := s.recheck(&in, jobID); err != nil {
		return Started{}, err
	}
	newID := workflows.RunIDPrefix + uuid.NewString()
	if in.DefaultOutput || in.Output == rundir.DefaultOutput(s.DataDir, jobID) {
		in.Output, in.DefaultOutput = rundir.DefaultOutput(s.DataDir, newID), true
	}
	in.BatchID, in.NodeID = "", ""
	if _, err := s.Client.ExecuteWorkflow(ctx, s.runOptions(newID, in), workflows.NotebookRunWorkflow, in); err != nil {
		return Started{}, fmt.Errorf("start workflow: %w", err)
	}
	return Started{JobID: newID, Status: workflows.StatusPending, OutputPath: in.Output, Notebook: in.Notebook}, nil
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
