package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"millrace/internal/jobs"
)

// Watching a run: how often to poll, and how long Temporal may be out of
// reach before giving up (the run itself goes on regardless).
const (
	watchEvery     = 400 * time.Millisecond
	watchPatience  = 2 * time.Minute
	cancelDeadline = time.Minute
)

// Interrupt choices of `run`.
const (
	interruptAsk    = "ask"
	interruptCancel = "cancel"
	interruptDetach = "detach"
)

// watchOptions say how `run` follows its job.
type watchOptions struct {
	onInterrupt string
	json        bool
}

// watch follows a started job to its end: progress, output lines, and
// the final status. Ctrl-C cancels or detaches, as opt says.
func (c *cli) watch(ctx context.Context, svc *jobs.Service, job jobs.Started, opt watchOptions) error {
	var disp display
	switch {
	case opt.json:
		disp = nopDisplay{}
	case isTerminal(c.stderr):
		disp = newBarDisplay(c)
	default:
		disp = &plainDisplay{c: c}
	}
	w := &watcher{svc: svc, id: job.JobID, disp: disp}
	// The end is read the moment the run closes, not at the next poll.
	closed, stopWatch := svc.WatchClose(ctx, job.JobID)
	defer stopWatch()
	var failingSince time.Time
	for {
		end, err := w.poll(ctx)
		if ctx.Err() != nil {
			return c.interrupted(ctx, w, opt)
		}
		switch {
		case err == nil:
			failingSince = time.Time{}
		case jobs.IsUserError(err):
			disp.stop()
			return err
		case failingSince.IsZero():
			failingSince = time.Now()
			disp.note(fmt.Sprintf("cannot read job %s (%v); retrying: the run goes on meanwhile", w.id, err))
		case time.Since(failingSince) > watchPatience:
			disp.stop()
			return fmt.Errorf("watch job %s: %w (the run may still be going: millrace status %s)", w.id, err, w.id)
		}
		if end != nil {
			disp.finish(*end)
			return c.summary(*end, opt)
		}
		select {
		case <-ctx.Done():
		case <-closed:
			closed = nil // once: a failed long poll leaves the timer
		case <-time.After(watchEvery):
		}
	}
}

// watcher reads a job's status and new log lines into a display.
type watcher struct {
	svc      *jobs.Service
	id       string
	disp     display
	cursor   string
	attempts int // earlier attempts already noted
}

// poll shows the job's progress and its new lines, and returns its final
// status once it has ended and every line has been read.
func (w *watcher) poll(ctx context.Context) (*jobs.Status, error) {
	st, err := w.svc.Status(ctx, w.id)
	if err != nil {
		return nil, err
	}
	// Earlier attempts: the summary tells how the last one ended.
	for w.attempts < len(st.Attempts) && st.Attempts[w.attempts].Attempt < st.Attempt {
		a := st.Attempts[w.attempts]
		w.disp.note(fmt.Sprintf("attempt %d ended (%s): %s; retrying", a.Attempt, a.Outcome, a.Message))
		w.attempts++
	}
	w.disp.update(st)
	req := jobs.LogsRequest{JobID: w.id, Cursor: w.cursor, Limit: jobs.MaxLogLines}
	page, err := readLogs(ctx, w.svc, &req, func(page jobs.Logs) error {
		w.disp.lines(page.Lines)
		return nil
	})
	w.cursor = req.Cursor
	if err != nil {
		return nil, err
	}
	if !page.Done {
		return nil, nil
	}
	if !st.Ended() {
		if st, err = w.svc.Status(ctx, w.id); err != nil {
			return nil, err
		}
	}
	return &st, nil
}

// interrupted handles Ctrl-C (or SIGTERM) while watching: cancel the job,
// or detach and leave it running.
func (c *cli) interrupted(ctx context.Context, w *watcher, opt watchOptions) error {
	w.disp.stop()
	bg := context.WithoutCancel(ctx)
	choice := opt.onInterrupt
	var intr interrupted
	if errors.As(context.Cause(ctx), &intr) && intr.sig == syscall.SIGTERM && choice == interruptAsk {
		choice = interruptDetach // nobody to ask
	}
	if choice == interruptAsk {
		if isTerminal(c.stdin) && isTerminal(c.stderr) {
			choice = c.ask()
		} else {
			fmt.Fprintf(c.stderr, "\ninterrupted, and there is no terminal to ask on: detaching (--on-interrupt cancel would cancel the run)\n")
			choice = interruptDetach
		}
	}
	if choice == interruptDetach {
		if opt.json {
			st, err := w.svc.Status(bg, w.id)
			if err != nil {
				return err
			}
			return c.printJSON(st)
		}
		fmt.Fprintf(c.stderr, "detached: job %s keeps running\n  follow it:  millrace logs -f %s\n  status:     millrace status %s\n  cancel it:  millrace cancel %s\n", w.id, w.id, w.id, w.id)
		return nil
	}
	fmt.Fprintf(c.stderr, "canceling job %s ...\n", w.id)
	cctx, cancel := context.WithTimeout(bg, cancelDeadline)
	defer cancel()
	st, err := w.svc.Cancel(cctx, w.id, "canceled from the millrace CLI (interrupted)")
	switch {
	case err != nil && !jobs.IsUserError(err):
		return err
	case err != nil && !st.Ended():
		return err
	case !st.Ended():
		fmt.Fprintf(c.stderr, "cancel requested, but job %s is still stopping: see millrace status %s\n", w.id, w.id)
		return &exitError{code: exitFailed, err: errors.New("job still stopping")}
	}
	return c.summary(st, opt) // canceled, or it had ended already
}

// ask asks on the terminal whether to cancel or detach. A second Ctrl-C
// detaches.
func (c *cli) ask() string {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt)
	defer signal.Stop(sigs)
	answers := make(chan string)
	go func() {
		// This reader may outlive the question (the process ends soon
		// after): stdin cannot be read with a deadline.
		sc := bufio.NewScanner(c.stdin)
		for sc.Scan() {
			answers <- sc.Text()
		}
		close(answers)
	}()
	for {
		fmt.Fprint(c.stderr, c.errs.bold("\nInterrupted. Cancel the run, or detach and leave it running? [c]ancel / [d]etach: "))
		select {
		case a, ok := <-answers:
			if !ok {
				fmt.Fprintln(c.stderr)
				return interruptDetach
			}
			switch strings.ToLower(strings.TrimSpace(a)) {
			case "c", "cancel":
				return interruptCancel
			case "d", "detach":
				return interruptDetach
			}
			fmt.Fprint(c.stderr, "answer c or d (Ctrl-C again detaches)")
		case <-sigs:
			fmt.Fprintln(c.stderr, "\ninterrupted again: detaching")
			return interruptDetach
		}
	}
}
