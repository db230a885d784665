package main

import (
	"context"
	"fmt"
	"strings"

	"millrace/internal/jobs"
	"millrace/workflows"
)

func jobsCommand() command {
	return command{
		name:    "jobs",
		args:    "[flags]",
		summary: "list jobs, running ones first, then the newest",
		help: `Lists jobs, running ones first, then by newest end, with how many jobs of each
status match the other filters.

Examples:
  millrace jobs --status FAILED
  millrace jobs --label nightly --limit 10 --json`,
		run: runJobs,
	}
}

func runJobs(ctx context.Context, c *cli, cmd command, args []string) error {
	f := newFlags(c, cmd)
	status := f.String("status", "", "only jobs with this `status`: PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED or TIMED_OUT")
	label := f.String("label", "", "only jobs with this `label`")
	batch := f.String("batch", "", "only the runs of this batch `id`")
	nb := f.String("notebook", "", "only runs of this notebook `path`")
	limit := f.Int("limit", jobs.DefaultListLimit, fmt.Sprintf("at most `n` jobs (up to %d)", jobs.MaxListLimit))
	page := f.String("page-token", "", "the `token` a previous listing printed, for its next page")
	asJSON := f.withJSON()
	cfg := f.withConfig()
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	if *limit < 0 {
		return usagef(cmd, "--limit %d: give a number of jobs", *limit)
	}
	svc, done, err := c.connect(ctx, cmd, cfg)
	if err != nil {
		return err
	}
	defer done()
	list, err := svc.List(ctx, jobs.ListRequest{
		Status: *status, Label: *label, BatchID: *batch, Notebook: absPath(*nb), Limit: *limit, PageToken: *page,
	})
	if err != nil {
		return err
	}
	if *asJSON {
		return c.printJSON(list)
	}
	s := c.out
	if len(list.Jobs) == 0 {
		fmt.Fprintln(c.stdout, "no jobs match")
	} else {
		t := table{header: []string{"JOB", "STATUS", "CREATED", "NOTEBOOK", "LABELS"}}
		for _, j := range list.Jobs {
			what := displayPath(j.Notebook)
			if j.Kind == "batch" {
				what = "(batch)"
			}
			t.add(cell{text: j.JobID}, cell{text: j.Status, colour: s.status}, cell{text: ago(j.CreatedAt)},
				cell{text: what}, cell{text: strings.Join(j.Labels, ",")})
		}
		t.print(c.stdout, s)
	}
	var counts []string
	total := 0
	for _, st := range []string{workflows.StatusRunning, workflows.StatusSucceeded, workflows.StatusFailed, workflows.StatusCanceled, workflows.StatusTimedOut} {
		if n := list.Counts[st]; n > 0 {
			counts = append(counts, fmt.Sprintf("%d %s", n, strings.ToLower(st)))
			total += n
		}
	}
	if total > 0 {
		noun := "jobs match"
		if total == 1 {
			noun = "job matches"
		}
		fmt.Fprintf(c.stdout, "%s\n", s.dim(fmt.Sprintf("%d %s in all: %s (running includes pending)", total, noun, strings.Join(counts, ", "))))
	}
	if list.NextPageToken != "" {
		fmt.Fprintf(c.stdout, "%s\n", s.dim("more: millrace jobs --page-token "+list.NextPageToken))
	}
	return nil
}
