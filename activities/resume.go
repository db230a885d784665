package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"go.temporal.io/sdk/activity"

	"millrace/internal/executor"
	"millrace/internal/executor/runner"
	"millrace/internal/filemode"
	"millrace/internal/notebook"
	"millrace/internal/rundir"
	"millrace/workflows"
)

// resumePoint is where an attempt starts: from a checkpoint, or (nil
// Checkpoint) from the first cell.
type resumePoint struct {
	// Checkpoint is the one to restore.
	Checkpoint *workflows.Checkpoint
	// Required is set for a rerun with from_cell on its first try: the
	// caller asked for this checkpoint, and a run that cannot restore it
	// fails rather than quietly running everything.
	Required     bool
	AllowPartial bool
	// Warning says why a checkpoint there was is not used.
	Warning string
}

// resumeFrom chooses where an attempt starts. An attempt after a lost one
// (worker, host or kernel gone) resumes from the last complete checkpoint
// the lost attempt recorded in its heartbeat details: Temporal holds its
// hash, so a file changed since is refused when it is read. The first
// attempt of a rerun with from_cell resumes from the checkpoint the job
// service chose. A partial checkpoint is restored only when the run was
// started with allow_partial; otherwise the attempt runs from the start,
// and says why.
func (a *Activities) resumeFrom(ctx context.Context, jobID string, in workflows.RunInput) resumePoint {
	var last workflows.Progress
	var cp *workflows.Checkpoint
	required := false
	if activity.HasHeartbeatDetails(ctx) && activity.GetHeartbeatDetails(ctx, &last) == nil && last.Checkpoint != nil {
		cp = last.Checkpoint
	} else if in.Resume != nil {
		c := in.Resume.Checkpoint
		cp, required = &c, activity.GetInfo(ctx).Attempt == 1
	}
	if cp == nil {
		return resumePoint{}
	}
	allowPartial := in.Resume != nil && in.Resume.AllowPartial
	rp := resumePoint{Checkpoint: cp, Required: required, AllowPartial: allowPartial}
	owner := jobID
	if in.Resume != nil && cp.Path == in.Resume.Checkpoint.Path {
		owner = in.Resume.Job
	}
	var why string
	switch {
	case a.Executor.Name != executor.Bundled:
		why = fmt.Sprintf("this worker runs %s, which cannot restore checkpoints: resuming needs the bundled runner (start the worker with --executor bundled)", a.Executor.Name)
	case cp.Partial && !allowPartial:
		why = fmt.Sprintf("the checkpoint after cell %d left out %s, which could not be saved; rerun with from_cell and allow_partial to resume from it anyway", cp.Cell, skippedText(cp))
	default:
		if err := rundir.CheckCheckpoint(a.DataDir, owner, cp.Path); err != nil {
			why = err.Error()
		}
	}
	if why != "" {
		w := fmt.Sprintf("not resumed from the checkpoint after cell %d: %s", cp.Cell, why)
		if !required {
			w += "; the run started from its first cell"
		}
		return resumePoint{Required: required, Warning: w}
	}
	return rp
}

// skippedText lists a checkpoint's skipped names for a message.
func skippedText(cp *workflows.Checkpoint) string {
	s := ""
	for i, n := range cp.Skipped {
		if i > 0 {
			s += ", "
		}
		s += n
	}
	if more := cp.SkippedCount - len(cp.Skipped); more > 0 {
		s += fmt.Sprintf(" and %d more", more)
	}
	if s == "" {
		s = "some names"
	}
	return s
}

// checkpointPolicy is the policy an attempt runs with, and a warning when
// the run asked for checkpoints this worker's executor cannot take.
func (a *Activities) checkpointPolicy(in workflows.RunInput) (policy string, maxBytes int64, warning string) {
	policy, maxBytes = in.Checkpoint, in.CheckpointMaxBytes
	if policy == "" {
		policy = workflows.CheckpointAuto
	}
	if maxBytes <= 0 {
		maxBytes = workflows.DefaultCheckpointMaxBytes
	}
	if a.Executor.Name != executor.Bundled {
		if in.Checkpoint != "" && in.Checkpoint != workflows.CheckpointOff {
			warning = fmt.Sprintf("checkpoint %s: this worker runs %s, which takes no checkpoints (the bundled runner does); the run has none", in.Checkpoint, a.Executor.Name)
		}
		return workflows.CheckpointOff, maxBytes, warning
	}
	return policy, maxBytes, ""
}

// makeCheckpointDir creates an attempt's private checkpoint folder.
func makeCheckpointDir(dataDir, jobID string, n int) (string, error) {
	dir := rundir.CheckpointsDir(dataDir, jobID, n)
	if err := os.MkdirAll(dir, filemode.PrivateDir); err != nil {
		return "", err
	}
	return dir, os.Chmod(dir, filemode.PrivateDir)
}

// checkpointOf is a checkpoint the runner reported, as Temporal keeps it.
func checkpointOf(c runner.Checkpoint, attempt int) workflows.Checkpoint {
	skipped := c.Skipped
	if len(skipped) > workflows.MaxSkippedNames {
		skipped = skipped[:workflows.MaxSkippedNames]
	}
	return workflows.Checkpoint{
		Cell: c.Cell, Attempt: attempt, Path: c.Path, SHA256: c.SHA256, SizeBytes: c.SizeBytes, SavedAt: c.SavedAt,
		Partial: c.Partial, Skipped: skipped, SkippedCount: max(c.SkippedCount, len(c.Skipped)),
	}
}

// resumedAt finds where a resumed attempt went on in its output notebook:
// the first code cell not marked restored, counted among code cells from 1
// as the progress line counts them (the injected parameters cell
// included); 0 when the notebook cannot be read yet.
func resumedAt(output string) int {
	nb, err := notebook.Load(output)
	if err != nil {
		return 0
	}
	n := 0
	for _, c := range nb.Cells {
		if c.Type != notebook.CellCode {
			continue
		}
		n++
		var md struct {
			Millrace struct {
				Restored bool `json:"restored"`
			} `json:"millrace"`
		}
		if len(c.Metadata) == 0 || json.Unmarshal(c.Metadata, &md) != nil || !md.Millrace.Restored {
			return n
		}
	}
	return 0
}

// checkpointSpec sets up the attempt's checkpoints: its policy and private
// folder, and the checkpoint to restore first. The first attempt of a
// rerun with from_cell whose checkpoint cannot be restored here (a
// papermill worker, a file that is not the source job's) is refused: it
// cannot do what was asked, and running every cell instead would hide it.
func (a *Activities) checkpointSpec(at *attempt, spec *executor.Spec, res *workflows.AttemptResult) (refused string, err error) {
	rp := at.resume
	if rp.Required && rp.Warning != "" {
		return "cannot resume as asked: " + rp.Warning, nil
	}
	policy, maxBytes, warning := a.checkpointPolicy(at.in)
	if warning != "" {
		res.Warnings = append(res.Warnings, warning)
	}
	if rp.Warning != "" {
		res.Warnings = append(res.Warnings, rp.Warning)
	}
	if a.Executor.Name != executor.Bundled {
		return "", nil
	}
	dir, err := makeCheckpointDir(a.DataDir, at.jobID, at.n)
	if err != nil {
		return "", err
	}
	spec.CheckpointDir, spec.Checkpoint, spec.CheckpointMaxBytes = dir, policy, maxBytes
	if cp := at.resume.Checkpoint; cp != nil {
		spec.Resume = &executor.Resume{Checkpoint: cp.Path, SHA256: cp.SHA256, Cell: cp.Cell, AllowPartial: rp.AllowPartial, Required: rp.Required}
	}
	return "", nil
}
