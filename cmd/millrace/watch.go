package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"millrace/internal/jobs"
	"millrace/internal/logstore"
	"millrace/workflows"
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

// display shows a watched run: a live progress bar on a terminal, plain
// lines otherwise, nothing in JSON mode.
type display interface {
	update(st jobs.Status)
	lines(ls []logstore.Line)
	note(msg string)
	// finish shows the run's end and stops the display.
	finish(st jobs.Status)
	// stop stops the display where it is (interrupted).
	stop()
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
	for {
		page, err := w.svc.Logs(ctx, jobs.LogsRequest{JobID: w.id, Cursor: w.cursor, Limit: jobs.MaxLogLines})
		if err != nil {
			return nil, err
		}
		w.disp.lines(page.Lines)
		w.cursor = page.NextCursor
		if page.Done {
			if !st.Ended() {
				if st, err = w.svc.Status(ctx, w.id); err != nil {
					return nil, err
				}
			}
			return &st, nil
		}
		if len(page.Lines) < jobs.MaxLogLines {
			return nil, nil
		}
	}
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

// nopDisplay shows nothing: JSON mode prints the final status only.
type nopDisplay struct{}

func (nopDisplay) update(jobs.Status)    {}
func (nopDisplay) lines([]logstore.Line) {}
func (nopDisplay) note(string)           {}
func (nopDisplay) finish(jobs.Status)    {}
func (nopDisplay) stop()                 {}

// plainDisplay writes the run's lines as they come (stdout to stdout,
// stderr to stderr) and a line on stderr whenever the run moves to another
// cell: output fit for a file or a CI log.
type plainDisplay struct {
	c    *cli
	last string
}

func (d *plainDisplay) update(st jobs.Status) {
	what := progressLabel(st)
	if st.Progress.CurrentCell > 0 {
		if src := firstLine(st.Progress.CurrentSource, 60); src != "" {
			what += ": " + src
		}
	}
	if st.Message != "" && st.Status == workflows.StatusPending {
		what += " (" + st.Message + ")"
	}
	if what == d.last || st.Ended() {
		return
	}
	d.last = what
	fmt.Fprintf(d.c.stderr, "%s\n", d.c.errs.dim(fmt.Sprintf("[%s] %s", fmtDuration(time.Since(st.CreatedAt)), what)))
}

func (d *plainDisplay) lines(ls []logstore.Line) {
	var out, errs strings.Builder
	for _, l := range ls {
		b := &out
		if l.Stream == "stderr" {
			b = &errs
		}
		writeLine(b, l)
	}
	if out.Len() > 0 {
		fmt.Fprint(d.c.stdout, out.String())
	}
	if errs.Len() > 0 {
		fmt.Fprint(d.c.stderr, errs.String())
	}
}

func (d *plainDisplay) note(msg string)    { fmt.Fprintf(d.c.stderr, "%s\n", d.c.errs.yellow(msg)) }
func (d *plainDisplay) finish(jobs.Status) {}
func (d *plainDisplay) stop()              {}

// writeLine writes a log line; a line cut because it was too long goes on
// in the next one without a newline.
func writeLine(b *strings.Builder, l logstore.Line) {
	b.WriteString(l.Text)
	if !l.Continued {
		b.WriteByte('\n')
	}
}

// progressLabel says where a run is: "pending", "starting", "cell 3/5",
// "attempt 2 · cell 1/5".
func progressLabel(st jobs.Status) string {
	var l string
	switch {
	case st.Status == workflows.StatusPending:
		l = "pending"
	case st.Progress.CellsTotal == 0 && !st.Ended():
		l = "starting"
	default:
		l = st.Progress.String()
	}
	if st.Attempt > 1 {
		l = fmt.Sprintf("attempt %d · %s", st.Attempt, l)
	}
	return l
}

// barDisplay is the live display on a terminal: the run's output lines
// scroll above a progress bar (mpb) that shows the cell, the share of cells
// done, the time elapsed and the first line of the cell running.
type barDisplay struct {
	c *cli
	p *mpb.Progress
	b *mpb.Bar
	// outToBar: stdout is the same kind of terminal as stderr, so the
	// run's stdout lines must go through the display too.
	outToBar bool
	srcWidth int

	mu      sync.Mutex
	st      jobs.Status
	stopped bool
}

func newBarDisplay(c *cli) *barDisplay {
	width := 100
	if f, ok := c.stderr.(*os.File); ok {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
			width = w
		}
	}
	barWidth := min(max(width/4, 10), 40)
	d := &barDisplay{c: c, outToBar: isTerminal(c.stdout)}
	// label 16, bar and its spaces, percentage 5, elapsed 9, spaces.
	d.srcWidth = width - 16 - barWidth - 2 - 5 - 9 - 4
	d.p = mpb.New(mpb.WithOutput(c.stderr), mpb.WithWidth(barWidth), mpb.WithRefreshRate(150*time.Millisecond))
	d.b = d.p.New(0,
		mpb.BarStyle().Lbound("[").Filler("=").Tip(">").Padding("-").Rbound("]"),
		mpb.PrependDecorators(decor.Any(d.label, decor.WC{W: 16, C: decor.DindentRight})),
		mpb.AppendDecorators(
			decor.NewPercentage("%d", decor.WC{W: 5}),
			decor.Any(d.elapsed, decor.WC{W: 9}),
			decor.Any(d.source),
		),
	)
	return d
}

func (d *barDisplay) label(decor.Statistics) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.st.JobID == "" {
		return "starting"
	}
	return shorten(progressLabel(d.st), 15)
}

func (d *barDisplay) elapsed(decor.Statistics) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.st.CreatedAt.IsZero() {
		return ""
	}
	if d.st.EndedAt != nil {
		return fmtDuration(d.st.EndedAt.Sub(d.st.CreatedAt))
	}
	return fmtDuration(time.Since(d.st.CreatedAt))
}

func (d *barDisplay) source(decor.Statistics) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.st.Ended() || d.st.Progress.CurrentCell == 0 || d.srcWidth < 10 {
		return ""
	}
	return " " + d.c.errs.dim(firstLine(d.st.Progress.CurrentSource, d.srcWidth))
}

func (d *barDisplay) update(st jobs.Status) {
	d.mu.Lock()
	d.st = st
	stopped := d.stopped
	d.mu.Unlock()
	if stopped || st.Progress.CellsTotal == 0 {
		return
	}
	d.b.SetTotal(int64(st.Progress.CellsTotal), false)
	d.b.SetCurrent(int64(st.Progress.CellsDone))
}

func (d *barDisplay) lines(ls []logstore.Line) {
	var above, out strings.Builder
	for _, l := range ls {
		b := &above
		if l.Stream != "stderr" && !d.outToBar {
			b = &out
		}
		writeLine(b, l)
	}
	if out.Len() > 0 {
		fmt.Fprint(d.c.stdout, out.String())
	}
	if above.Len() > 0 {
		d.write(above.String())
	}
}

// write prints text above the bar, or plainly once the bar has stopped.
func (d *barDisplay) write(text string) {
	d.mu.Lock()
	stopped := d.stopped
	d.mu.Unlock()
	if stopped {
		fmt.Fprint(d.c.stderr, text)
		return
	}
	_, _ = d.p.Write([]byte(text))
}

func (d *barDisplay) note(msg string) { d.write(d.c.errs.yellow(msg) + "\n") }

func (d *barDisplay) finish(st jobs.Status) {
	d.update(st)
	if st.Status == workflows.StatusSucceeded {
		// Cells after a sys.exit(0) never run; the run is complete all the same.
		d.b.SetTotal(int64(max(st.Progress.CellsTotal, 1)), true)
	}
	d.stop()
}

func (d *barDisplay) stop() {
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		return
	}
	d.stopped = true
	d.mu.Unlock()
	d.b.Abort(false) // no-op once complete; keeps the last state shown
	d.p.Wait()
}
