package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"millrace/internal/jobs"
	"millrace/internal/limits"
	"millrace/workflows"
)

func statusCommand() command {
	return command{
		name:    "status",
		args:    "ID [flags]",
		summary: "show a job's status, progress, attempts, error and webhook; a batch id shows its nodes",
		run:     runStatus,
	}
}

func runStatus(ctx context.Context, c *cli, cmd command, args []string) error {
	f := newFlags(c, cmd)
	asJSON := f.withJSON()
	f.withConfig()
	id, svc, done, err := f.parseJob(ctx, args)
	if err != nil {
		return err
	}
	defer done()
	if strings.HasPrefix(id, workflows.BatchIDPrefix) {
		bst, err := svc.BatchStatus(ctx, id)
		if err != nil {
			return err
		}
		// The batch's outcome is shown, not turned into an exit code:
		// the status was read successfully.
		_ = c.batchSummary(bst, *asJSON)
		return nil
	}
	st, err := svc.Status(ctx, id)
	if err != nil {
		return err
	}
	if *asJSON {
		return c.printJSON(st)
	}
	s, w := c.out, c.stdout
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "%-10s %s\n", k, v)
		}
	}
	status := s.status(st.Status)
	if !st.Ended() || st.Progress.CellsTotal > 0 {
		status += fmt.Sprintf(" (%s, %.0f%%)", progressLabel(st), st.Progress.Percent)
	}
	row("job", s.bold(st.JobID))
	row("status", status)
	row("message", st.Message)
	if st.Progress.CurrentCell > 0 {
		row("cell", codeLine(st.Progress.CurrentSource, 100))
	}
	row("notebook", displayPath(st.Notebook))
	row("output", displayPath(st.OutputPath))
	if st.Attempt > 0 {
		row("attempt", fmt.Sprintf("%d of at most %d", st.Attempt, st.MaxAttempts))
	}
	row("created", fmt.Sprintf("%s (%s)", st.CreatedAt.Local().Format(time.DateTime), ago(st.CreatedAt)))
	if st.EndedAt != nil {
		row("ended", st.EndedAt.Local().Format(time.DateTime))
	}
	row("duration", fmtDuration(seconds(st.Duration)))
	row("executor", strings.TrimSpace(st.Executor+" "+kernelNote(st.Kernel)))
	row("labels", strings.Join(st.Labels, ", "))
	row("batch", st.BatchID)
	if st.Priority != "normal" {
		row("priority", st.Priority)
	}
	if st.Notification != nil {
		row("webhook", st.Notification.String())
	}
	if r := st.ResumedFrom; r != nil {
		row("resumed", fmt.Sprintf("from job %s, its checkpoint after cell %d (asked: from cell %d)", r.JobID, r.CheckpointCell, r.FromCell))
	}
	row("checkpoint", checkpointLine(st.Checkpoint))
	for _, warning := range st.Warnings {
		row("warning", warning)
	}
	if len(st.Attempts) > 1 || (len(st.Attempts) == 1 && !st.Ended()) {
		fmt.Fprintln(w, "attempts:")
		for _, a := range st.Attempts {
			msg := a.Message
			if a.ResumedFromCell > 0 {
				msg += fmt.Sprintf(" (resumed from cell %d)", a.ResumedFromCell)
			}
			fmt.Fprintf(w, "  %d  %-10s %s\n", a.Attempt, a.Outcome, msg)
		}
	}
	if st.Error != nil {
		fmt.Fprintln(w, s.red("error:"))
		printFailure(w, s, st.Error, "  ")
	}
	return nil
}

// checkpointLine describes a run's last checkpoint in one line.
func checkpointLine(cp *jobs.CheckpointInfo) string {
	if cp == nil {
		return ""
	}
	s := fmt.Sprintf("after cell %d, %s, saved %s (attempt %d)", cp.Cell, limits.FormatSize(cp.SizeBytes), cp.SavedAt.Local().Format(time.DateTime), cp.Attempt)
	if cp.Partial {
		s += fmt.Sprintf("; partial: %d names left out (%s)", max(cp.SkippedCount, len(cp.Skipped)), strings.Join(cp.Skipped, ", "))
	}
	return s
}

func kernelNote(k string) string {
	if k == "" {
		return ""
	}
	return "(kernel " + k + ")"
}

// tracebackLines is how much of a traceback a terminal shows: its end,
// where the error is.
const tracebackLines = 15

// printFailure prints why a run failed: the cell, the error, and the end of
// its traceback.
func printFailure(w io.Writer, s style, f *jobs.Failure, indent string) {
	if f.CellIndex != nil {
		where := fmt.Sprintf("in cell %d of the notebook", *f.CellIndex)
		if f.ExecutionCount != nil {
			where += fmt.Sprintf(" (In [%d])", *f.ExecutionCount)
		}
		if src := codeLine(f.Source, 80); src != "" {
			where += ": " + s.dim(src)
		}
		fmt.Fprintf(w, "%s%s\n", indent, where)
	}
	switch {
	case f.EName != "":
		fmt.Fprintf(w, "%s%s\n", indent, s.bold(s.red(f.EName+": "+f.EValue)))
	case f.Message != "":
		fmt.Fprintf(w, "%s%s\n", indent, s.red(f.Message))
	}
	if f.EName == "" || len(f.Traceback) == 0 {
		return
	}
	var lines []string
	for _, t := range f.Traceback {
		lines = append(lines, strings.Split(strings.TrimRight(s.plain(t), "\n"), "\n")...)
	}
	fmt.Fprintf(w, "%s%s\n", indent, s.dim("traceback (its end):"))
	if len(lines) > tracebackLines {
		lines = append([]string{"..."}, lines[len(lines)-tracebackLines:]...)
	}
	for _, l := range lines {
		fmt.Fprintf(w, "%s  %s\n", indent, l)
	}
}
