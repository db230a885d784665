package activities

import (
	"os"
	"time"

	"millrace/internal/executor"
	"millrace/internal/logstore"
	"millrace/internal/notebook"
	"millrace/workflows"
)

// progressReader derives a run's progress from its output notebook, which
// both papermill and the bundled runner save at every cell start and end. It
// re-reads the file only when it changed.
type progressReader struct {
	path    string
	modTime time.Time
	size    int64
	last    workflows.Progress
}

func newProgressReader(path string, attempt int, executorName string, started time.Time) *progressReader {
	return &progressReader{path: path, last: workflows.Progress{
		Attempt: attempt, CurrentCell: -1, Executor: executorName, OutputPath: path, StartedAt: started,
	}}
}

func (r *progressReader) read() workflows.Progress {
	st, err := os.Stat(r.path)
	if err != nil || (st.ModTime().Equal(r.modTime) && st.Size() == r.size) {
		return r.last
	}
	p, err := notebook.ReadProgress(r.path)
	if err != nil {
		return r.last // a notebook mid-replace; the next tick sees it whole
	}
	r.modTime, r.size = st.ModTime(), st.Size()
	r.last.CellsDone, r.last.CellsTotal = p.CellsDone, p.CellsTotal
	r.last.CurrentCell, r.last.CurrentSource = p.Current, p.CurrentSource
	return r.last
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
// papermill (which has no result file), and counts executed code cells.
func failedCell(nb *notebook.Notebook) (int, *executor.CellFailure) {
	executed := 0
	var failure *executor.CellFailure
	code := 0
	for i, c := range nb.Cells {
		if c.Type != notebook.CellCode {
			continue
		}
		code++
		if c.Papermill != nil && (c.Papermill.Status == notebook.StatusCompleted || c.Papermill.Status == notebook.StatusFailed) {
			executed++
		}
		if failure != nil || c.Papermill == nil || c.Papermill.Status != notebook.StatusFailed {
			continue
		}
		failure = &executor.CellFailure{Index: i, OutputIndex: i, ExecutionCount: c.ExecutionCount, SourceExcerpt: excerpt(c.Source)}
		for _, o := range c.Outputs {
			if o.OutputType == "error" {
				failure.EName, failure.EValue, failure.Traceback = o.EName, o.EValue, o.Traceback
			}
		}
	}
	return executed, failure
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
