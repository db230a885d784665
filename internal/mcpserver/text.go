package mcpserver

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"millrace/internal/jobs"
	"millrace/internal/limits"
	"millrace/internal/notebook"
	"millrace/workflows"
)

// statusLine is a job's state in one line, as a model or a person wants it
// first: "nb-… RUNNING cell 5/12: for i in range(10): (attempt 1/3, 42s)".
func statusLine(st jobs.Status) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", st.JobID, st.Status)
	switch st.Status {
	case workflows.StatusPending:
		if st.Message != "" {
			b.WriteString(": " + st.Message)
		}
	case workflows.StatusRunning:
		b.WriteString(" " + st.Progress.String())
		if src := notebook.FirstLine(st.Progress.CurrentSource, 60); src != "" && st.Progress.CurrentCell > 0 {
			b.WriteString(": " + src)
		}
		fmt.Fprintf(&b, " (attempt %d/%d, %s)", st.Attempt, st.MaxAttempts, seconds(st.Duration))
		if st.Message != "" {
			b.WriteString("; " + st.Message)
		}
	case workflows.StatusSucceeded:
		fmt.Fprintf(&b, ": %d/%d cells in %s", st.Progress.CellsDone, st.Progress.CellsTotal, seconds(st.Duration))
		if st.Attempt > 1 {
			fmt.Fprintf(&b, " (attempt %d)", st.Attempt)
		}
	default: // FAILED, CANCELED, TIMED_OUT
		if st.Progress.CellsTotal > 0 {
			fmt.Fprintf(&b, " after %d/%d cells, %s", st.Progress.CellsDone, st.Progress.CellsTotal, seconds(st.Duration))
		} else {
			b.WriteString(" after " + seconds(st.Duration))
		}
		if e := st.Error; e != nil {
			switch {
			case e.EName != "" && e.CellIndex != nil:
				fmt.Fprintf(&b, ": cell %d raised %s: %s", *e.CellIndex, e.EName, notebook.FirstLine(e.EValue, 200))
			case e.Message != "":
				b.WriteString(": " + notebook.FirstLine(e.Message, 200))
			}
		}
	}
	if st.Notebook != "" {
		b.WriteString("; notebook " + filepath.Base(st.Notebook))
	}
	return b.String()
}

// statusText is get_job_status's text: the status line, then what a model
// needs next (where the output is, the traceback's end, how attempts
// ended).
func statusText(st jobs.Status) string {
	var b strings.Builder
	b.WriteString(statusLine(st))
	if st.OutputPath != "" {
		b.WriteString("\noutput notebook: " + st.OutputPath)
	}
	if e := st.Error; e != nil && len(e.Traceback) > 0 {
		tb := e.Traceback
		if len(tb) > 6 {
			tb = tb[len(tb)-6:]
		}
		b.WriteString("\ntraceback (end):\n" + strings.Join(tb, "\n"))
	}
	if len(st.Attempts) > 1 {
		b.WriteString("\nattempts:")
		for _, a := range st.Attempts {
			fmt.Fprintf(&b, "\n  %d: %s: %s", a.Attempt, a.Outcome, notebook.FirstLine(a.Message, 160))
			if a.ResumedFromCell > 0 {
				fmt.Fprintf(&b, " (resumed from cell %d)", a.ResumedFromCell)
			}
		}
	}
	if r := st.ResumedFrom; r != nil {
		fmt.Fprintf(&b, "\nresumed from job %s: its checkpoint after cell %d", r.JobID, r.CheckpointCell)
	}
	if cp := st.Checkpoint; cp != nil {
		fmt.Fprintf(&b, "\nlast checkpoint: after cell %d, %s", cp.Cell, limits.FormatSize(cp.SizeBytes))
		if cp.Partial {
			fmt.Fprintf(&b, ", partial (left out: %s)", strings.Join(cp.Skipped, ", "))
		}
		if e := st.Error; st.Status == workflows.StatusFailed && e != nil && e.CellIndex != nil && *e.CellIndex > cp.Cell {
			fmt.Fprintf(&b, "\nto go on once cell %d is fixed: rerun_job with from_cell %d (restores the checkpoint after cell %d instead of running cells 0-%d again)", *e.CellIndex, *e.CellIndex, cp.Cell, cp.Cell)
		}
	}
	for _, w := range st.Warnings {
		b.WriteString("\nwarning: " + w)
	}
	if st.Notification != nil {
		b.WriteString("\nwebhook: " + st.Notification.String())
	}
	if !st.Ended() {
		b.WriteString("\nstill running: call get_job_status again later, get_job_logs for its output, cancel_job to stop it")
	}
	return b.String()
}

// seconds renders a duration in seconds the way people read it: 850ms,
// 42s, 3m5s.
func seconds(s float64) string {
	d := time.Duration(s * float64(time.Second))
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
