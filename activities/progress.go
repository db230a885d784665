package activities

import (
	"os"
	"path/filepath"
	"time"

	"millrace/internal/executor"
	"millrace/internal/executor/runner"
	"millrace/internal/logstore"
	"millrace/internal/notebook"
	"millrace/workflows"
)

// progressReader derives a run's progress from its output notebook, which
// both papermill and the bundled runner save at every cell start and end. It
// re-reads the file only when it changed.
//
// It also carries the run's last complete checkpoint, so that every
// heartbeat, and with it the next attempt, knows it: at first the one this
// attempt resumes from (none if it restores nothing), then each one the
// runner reports in its checkpoint folder (rundir.LatestCheckpointFile).
type progressReader struct {
	path    string
	modTime time.Time
	size    int64
	last    workflows.Progress
	// ckptDir is the attempt's checkpoint folder, "" when it takes none.
	ckptDir   string
	latestMod time.Time
	// carried is the checkpoint the attempt resumes from until the
	// runner says whether it could (resumeKnown).
	carried     *workflows.Checkpoint
	resumeKnown bool
}

func newProgressReader(path string, attempt int, executorName string, started time.Time, ckptDir string, carried *workflows.Checkpoint) *progressReader {
	return &progressReader{path: path, ckptDir: ckptDir, carried: carried, last: workflows.Progress{
		Attempt: attempt, CurrentCell: -1, Executor: executorName, OutputPath: path, StartedAt: started, Checkpoint: carried,
	}}
}

func (r *progressReader) read() workflows.Progress {
	r.readCheckpoints()
	st, err := os.Stat(r.path)
	if err != nil || (st.ModTime().Equal(r.modTime) && st.Size() == r.size) {
		return r.last
	}
	if st.ModTime().Before(r.last.StartedAt) {
		return r.last // an earlier attempt's notebook, not rewritten yet
	}
	p, err := notebook.ReadProgress(r.path)
	if err != nil {
		return r.last // a notebook mid-replace; the next tick sees it whole
	}
	r.modTime, r.size = st.ModTime(), st.Size()
	r.last.CellsDone, r.last.CellsTotal = p.CellsDone, p.CellsTotal
	r.last.CurrentCell, r.last.CurrentSource = p.Current, p.CurrentSource
	if r.last.ResumedFromCell > 0 && r.last.ResumedAt == 0 {
		r.last.ResumedAt = resumedAt(r.path)
	}
	return r.last
}

// readCheckpoints takes in what the runner wrote to the checkpoint folder
// since the last read: whether it resumed, and its latest checkpoint.
func (r *progressReader) readCheckpoints() {
	if r.ckptDir == "" {
		return
	}
	if !r.resumeKnown && r.carried != nil {
		if rr, ok, _ := runner.ReadResumeOutcome(r.ckptDir); ok {
			r.resumeKnown = true
			if rr.Resumed {
				r.last.ResumedFromCell = rr.FirstCell
			} else if r.last.Checkpoint == r.carried {
				// A checkpoint that could not be restored is not offered
				// to the next attempt either.
				r.last.Checkpoint = nil
			}
		}
	}
	st, err := os.Stat(filepath.Join(r.ckptDir, runner.LatestFile))
	if err != nil || st.ModTime().Equal(r.latestMod) {
		return
	}
	if c, ok, _ := runner.ReadLatest(r.ckptDir); ok && c.SHA256 != "" {
		cp := checkpointOf(c, r.last.Attempt)
		r.last.Checkpoint, r.latestMod = &cp, st.ModTime()
	}
}

// final is the last heartbeat of an attempt whose executor exited: the
// executor's own counts win over the notebook's.
func (r *progressReader) final(out executor.Outcome, logw *logstore.Writer) workflows.Progress {
	p := r.read()
	if out.CellsTotal > 0 {
		p.CellsDone, p.CellsTotal = out.CellsExecuted, out.CellsTotal
	}
	p.CurrentCell, p.CurrentSource = -1, ""
	p.LogLines, p.LogBytes = logw.Stats()
	return p
}

// failedCell finds the failed cell of an output notebook written by
// papermill (which writes no result file), and counts executed code cells.
// The failing cell's index is given in the input notebook: the k-th code
// cell of the output, not counting the injected parameters, is the k-th
// code cell of the input.
func failedCell(out, in *notebook.Notebook) (int, *notebook.CellFailure) {
	executed, ordinal := 0, 0
	var failure *notebook.CellFailure
	for i, c := range out.Cells {
		if c.Type != notebook.CellCode {
			continue
		}
		if c.Papermill != nil && (c.Papermill.Status == notebook.StatusCompleted || c.Papermill.Status == notebook.StatusFailed) {
			executed++
		}
		if c.HasTag(notebook.TagInjectedParameters) {
			continue
		}
		ordinal++
		if failure != nil || c.Papermill == nil || c.Papermill.Status != notebook.StatusFailed {
			continue
		}
		failure = &notebook.CellFailure{Index: inputIndex(in, ordinal, i), OutputIndex: i, ExecutionCount: c.ExecutionCount, SourceExcerpt: excerpt(c.Source)}
		for _, o := range c.Outputs {
			if o.OutputType == "error" {
				failure.EName, failure.EValue = o.EName, notebook.StripANSI(o.EValue)
				failure.Traceback = make([]string, len(o.Traceback))
				for k, line := range o.Traceback {
					failure.Traceback[k] = notebook.StripANSI(line)
				}
			}
		}
	}
	return executed, failure
}

// inputIndex returns the index of the ordinal-th (1-based) code cell of the
// input notebook, or fallback when there is no input to look at.
func inputIndex(in *notebook.Notebook, ordinal, fallback int) int {
	if in == nil {
		return fallback
	}
	n := 0
	for i, c := range in.Cells {
		if c.Type == notebook.CellCode && !c.HasTag(notebook.TagInjectedParameters) {
			if n++; n == ordinal {
				return i
			}
		}
	}
	return fallback
}

// excerpt is the first lines of a cell's source, enough to recognise it.
func excerpt(src string) string {
	const maxLines, maxChars = 5, 500
	lines := 0
	for i, r := range src {
		if r == '\n' {
			lines++
			if lines == maxLines {
				return src[:i]
			}
		}
		if i >= maxChars {
			return src[:i] + "…"
		}
	}
	return src
}

// checkpoints are the attempt's checkpoints for its result, oldest first:
// the one it resumed from, then those the runner kept (its result file
// lists them), or else its last one.
func (r *progressReader) checkpoints(kept []runner.Checkpoint) []workflows.Checkpoint {
	var out []workflows.Checkpoint
	if r.carried != nil && r.last.ResumedFromCell > 0 {
		out = append(out, *r.carried)
	}
	for _, c := range kept {
		out = append(out, checkpointOf(c, r.last.Attempt))
	}
	if cp := r.last.Checkpoint; len(kept) == 0 && cp != nil && cp != r.carried {
		out = append(out, *cp)
	}
	return out
}
