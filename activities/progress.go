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
