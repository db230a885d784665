package main

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"millrace/internal/jobs"
	"millrace/internal/logstore"
	"millrace/internal/notebook"
	"millrace/workflows"
)

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
		if src := codeLine(st.Progress.CurrentSource, 60); src != "" {
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
	return notebook.Shorten(progressLabel(d.st), 15)
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
	return " " + d.c.errs.dim(codeLine(d.st.Progress.CurrentSource, d.srcWidth))
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
