package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"millrace/internal/jobs"
	"millrace/internal/logstore"
)

func logsCommand() command {
	return command{
		name:    "logs",
		args:    "ID [flags]",
		summary: "print a job's output lines; -f follows a running job to its end",
		help: `Prints the output lines of a job's kernel (stdout and stderr, in order, across
attempts). With -f it keeps printing new lines until the job ends; Ctrl-C stops
following, not the job.

--json prints {"lines": [...], "next_cursor": ...}; pass the cursor back with
--cursor to read only what came after. With -f, --json prints one JSON object
per line instead.`,
		run: runLogs,
	}
}

func runLogs(ctx context.Context, c *cli, cmd command, args []string) error {
	f := newFlags(c, cmd)
	follow := f.Bool("f", false, "follow: print new lines until the job ends")
	f.BoolVar(follow, "follow", false, "same as -f")
	stream := f.String("stream", "both", "which `stream`: stdout, stderr or both")
	tail := f.Int("tail", 0, fmt.Sprintf("only the last `n` lines (at most %d)", jobs.MaxLogLines))
	cursor := f.String("cursor", "", "start after this `cursor` (a next_cursor from --json)")
	asJSON := f.withJSON()
	cfg := f.withConfig()
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	if *tail != 0 && *cursor != "" {
		return usagef(cmd, "--tail and --cursor do not go together")
	}
	svc, done, err := c.connect(ctx, cmd, cfg)
	if err != nil {
		return err
	}
	defer done()

	req := jobs.LogsRequest{JobID: pos[0], Cursor: *cursor, Stream: *stream, Tail: *tail, Limit: jobs.MaxLogLines}
	p := &logPrinter{c: c, json: *asJSON && *follow}
	var closed <-chan struct{}
	if *follow {
		var stopWatch func()
		closed, stopWatch = svc.WatchClose(ctx, req.JobID)
		defer stopWatch()
	}
	var all []logstore.Line
	for {
		last, err := readLogs(ctx, svc, &req, func(page jobs.Logs) error {
			if *asJSON && !*follow {
				all = append(all, page.Lines...)
				return nil
			}
			return p.print(page.Lines)
		})
		switch {
		case err != nil && ctx.Err() != nil && *follow:
			return nil // Ctrl-C stops following
		case err != nil:
			return err
		case *asJSON && !*follow:
			last.Lines = append([]logstore.Line{}, all...)
			return c.printJSON(last)
		case !*follow || last.Done:
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-closed:
			closed = nil
		case <-time.After(watchEvery):
		}
	}
}

// readLogs reads the pages of a job's log from req on, handing each to
// each, until a page is not full (the end of what is written so far), and
// returns that last page. req's cursor is left after the last line read,
// so the next call goes on from there; a tail request reads one page.
func readLogs(ctx context.Context, svc *jobs.Service, req *jobs.LogsRequest, each func(jobs.Logs) error) (jobs.Logs, error) {
	for {
		page, err := svc.Logs(ctx, *req)
		if err != nil {
			return page, err
		}
		wasTail := req.Tail > 0
		req.Tail, req.Cursor = 0, page.NextCursor
		if err := each(page); err != nil {
			return page, err
		}
		if wasTail || page.Done || len(page.Lines) < req.Limit {
			return page, nil
		}
	}
}

// logPrinter prints log lines as text, or as JSON lines.
type logPrinter struct {
	c       *cli
	json    bool
	attempt int
}

func (p *logPrinter) print(ls []logstore.Line) error {
	if p.json {
		enc := json.NewEncoder(p.c.stdout)
		enc.SetEscapeHTML(false)
		for _, l := range ls {
			if err := enc.Encode(l); err != nil {
				return err
			}
		}
		return nil
	}
	var b strings.Builder
	for _, l := range ls {
		if l.Attempt != p.attempt {
			if p.attempt != 0 || l.Attempt > 1 {
				fmt.Fprintf(&b, "%s\n", p.c.out.dim(fmt.Sprintf("--- attempt %d ---", l.Attempt)))
			}
			p.attempt = l.Attempt
		}
		writeLine(&b, l)
	}
	_, err := fmt.Fprint(p.c.stdout, b.String())
	return err
}
