package main

import (
	"context"
	"fmt"

	"millrace/internal/jobs"
)

func cancelCommand() command {
	return command{
		name:    "cancel",
		args:    "ID [flags]",
		summary: "cancel a running job or batch: its kernels are stopped and it ends CANCELED",
		run:     runCancel,
	}
}

func runCancel(ctx context.Context, c *cli, cmd command, args []string) error {
	f := newFlags(c, cmd)
	reason := f.String("reason", "", "why, recorded with the cancellation")
	asJSON := f.withJSON()
	f.withConfig()
	id, svc, done, err := f.parseJob(ctx, args)
	if err != nil {
		return err
	}
	defer done()
	if *reason == "" {
		*reason = "canceled with millrace cancel"
	}
	if jobs.IsBatchID(id) {
		st, err := svc.CancelBatch(ctx, id, *reason)
		if err != nil {
			return err
		}
		if *asJSON {
			return c.printJSON(st)
		}
		_ = c.batchSummary(st, false) // CANCELED is what was asked: exit 0
		return nil
	}
	st, err := svc.Cancel(ctx, id, *reason)
	if err != nil {
		return err
	}
	if *asJSON {
		return c.printJSON(st)
	}
	if !st.Ended() {
		fmt.Fprintf(c.stdout, "cancel requested: job %s is stopping (%s); millrace status %s shows when it has\n", st.JobID, st.Status, st.JobID)
		return nil
	}
	fmt.Fprintf(c.stdout, "job %s %s after %s (%s)\n", st.JobID, c.out.status(st.Status), fmtDuration(seconds(st.Duration)), progressLabel(st))
	return nil
}
