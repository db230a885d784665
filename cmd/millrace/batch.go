package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"millrace/internal/config"
	"millrace/internal/jobs"
	"millrace/internal/notebook"
	"millrace/internal/runopts"
	"millrace/workflows"
)

func batchCommand() command {
	return command{
		name:    "batch",
		args:    "FILE.yaml [flags]",
		summary: "run a batch file: a DAG of notebooks with depends_on, shown live",
		help: `Starts the batch the file describes and shows every node's state live: a
table that redraws on a terminal, a line per change otherwise. Exits 0 when
every node succeeded, 1 otherwise. Each node is also an ordinary job
(millrace status, logs, cancel take its job id).

File format (examples/pipeline.yaml):
  name: pipeline
  max_parallel: 2          # nodes running at once (default 4)
  fail_fast: false         # true: cancel everything running when a node fails
  labels: [nightly]
  nodes:
    - id: preprocess
      path: preprocess.ipynb          # relative to the batch file
      parameters: {rows: 1000}
    - id: train
      path: train.ipynb
      depends_on: [preprocess]
      parameters:
        data: ${preprocess.output_path}        # upstream output notebook
        rows: ${preprocess.parameters.rows}    # upstream parameter

` + wrapText("Node fields: "+strings.Join(append([]string{"id", "path", "depends_on"}, runopts.Names(&runopts.Options{})...), ", ")+
			". no_type_check at the top applies to every node: values whose type does not fit the parameters cell are passed with a warning instead of refusing the batch.", 78),
		run: runBatch,
	}
}

func runBatch(ctx context.Context, c *cli, cmd command, args []string) error {
	f := newFlags(c, cmd)
	maxParallel := f.Int("max-parallel", 0, "nodes running at once, overriding the file's max_parallel")
	failFast := f.Bool("fail-fast", false, "cancel everything running when a node fails (overrides the file)")
	var labels stringList
	f.Var(&labels, "label", "a `label` added to the file's labels (repeatable)")
	priority := f.String("priority", "", "`high`, normal or low for every node, overriding the file's priority")
	notifyURL := f.String("notify-url", "", "POST a signed JSON message to this `url` when the batch ends, overriding the file's notify_url")
	noTypeCheck := f.Bool("no-type-check", false, "pass parameter values whose type does not fit a node's parameters cell, with a warning, instead of refusing the batch (the file's no_type_check)")
	detach := f.Bool("detach", false, "print the batch id and return at once; the batch goes on")
	asJSON := f.Bool("json", false, "print JSON: the started batch with --detach, else the final batch status")
	cfg := f.withConfig()
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	req, err := jobs.LoadBatchFile(absPath(pos[0]))
	if err != nil {
		return err
	}
	if *maxParallel != 0 {
		req.MaxParallel = *maxParallel
	}
	req.FailFast = req.FailFast || *failFast
	req.Labels = append(req.Labels, labels...)
	if *priority != "" {
		req.Priority = *priority
	}
	if *notifyURL != "" {
		req.NotifyURL = *notifyURL
	}
	req.NoTypeCheck = req.NoTypeCheck || *noTypeCheck
	// An invalid batch fails here, with every problem, before anything
	// connects to Temporal (or starts the dev service).
	local, err := localService(cmd, cfg)
	if err != nil {
		return err
	}
	if err := local.ValidateBatch(req); err != nil {
		return err
	}
	svc, done, err := c.connect(ctx, cmd, cfg)
	if err != nil {
		return err
	}
	defer done()
	started, err := svc.StartBatch(ctx, req)
	if err != nil {
		return err
	}
	for _, n := range started.Nodes {
		for _, w := range n.Warnings {
			c.printWarnings([]string{"node " + n.ID + ": " + w})
		}
	}
	return c.followBatch(ctx, svc, started, *detach, *asJSON)
}

func rerunCommand() command {
	return command{
		name:    "rerun",
		args:    "ID [flags]",
		summary: "run a job again: a batch reruns only the nodes that did not succeed",
		help: `A batch id reruns the finished batch under the same id, running only the
nodes that failed, were skipped, canceled or timed out, and reusing the
outputs of those that succeeded. A run id starts the same notebook with the
same input again, as a new job, from its first cell.

--from-cell N goes on from cell N instead (its index in the notebook, 0-based
with every cell counted, as a failed run's status shows it): the new job
restores the variables of the job's latest checkpoint taken before cell N
in a fresh kernel, does not run the cells before it, and runs the notebook
file as it is now from there. The fix-and-continue loop:

  millrace run train.ipynb --checkpoint every_cell   # fails at cell 12
  (fix cell 12 in train.ipynb)
  millrace rerun nb-... --from-cell 12                 # runs cells 12 onwards

The job must have ended and have taken a checkpoint before cell N; its
parameters are reused, and a checkpoint whose file changed on disk is
refused. For a batch, every node that runs again resumes from its own latest
checkpoint before cell N (a large N: each node's latest); a node without one
runs from its first cell, with a warning.`,
		run: runRerun,
	}
}

// rerunArgs are millrace rerun's command line.
type rerunArgs struct {
	id             string
	opts           jobs.RerunOptions
	detach, asJSON bool
	cfg            *config.Config
}

func parseRerun(c *cli, cmd command, args []string) (rerunArgs, error) {
	f := newFlags(c, cmd)
	detach := f.Bool("detach", false, "print the id and return at once")
	asJSON := f.Bool("json", false, "print JSON instead of text")
	fromCell := f.Int("from-cell", 0, "go on from cell `N` (0-based index in the notebook, as a failed run's status gives it), restoring the job's latest checkpoint taken before it")
	allowPartial := f.Bool("allow-partial", false, "with --from-cell: restore a partial checkpoint (one that could not save some names) without those names")
	cfg := f.withConfig()
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return rerunArgs{}, err
	}
	if *fromCell < 0 {
		return rerunArgs{}, usagef(cmd, "--from-cell %d: give a cell index of 1 or more", *fromCell)
	}
	if *allowPartial && *fromCell == 0 {
		return rerunArgs{}, usagef(cmd, "--allow-partial applies to a rerun with --from-cell")
	}
	return rerunArgs{id: pos[0], opts: jobs.RerunOptions{FromCell: *fromCell, AllowPartial: *allowPartial}, detach: *detach, asJSON: *asJSON, cfg: cfg}, nil
}

func runRerun(ctx context.Context, c *cli, cmd command, args []string) error {
	a, err := parseRerun(c, cmd, args)
	if err != nil {
		return err
	}
	svc, done, err := c.connect(ctx, cmd, a.cfg)
	if err != nil {
		return err
	}
	defer done()
	if jobs.IsBatchID(a.id) {
		started, err := svc.RerunBatchWith(ctx, a.id, a.opts)
		if err != nil {
			return err
		}
		if !a.asJSON {
			for _, n := range started.Nodes {
				if n.Resume != nil {
					fmt.Fprintf(c.stderr, "node %s resumes from %s\n", n.ID, jobs.ResumeText(n.Resume))
				}
				for _, w := range n.Warnings {
					c.printWarnings([]string{"node " + n.ID + ": " + w})
				}
			}
		}
		return c.followBatch(ctx, svc, started, a.detach, a.asJSON)
	}
	started, err := svc.RerunRunWith(ctx, a.id, a.opts)
	if err != nil {
		return err
	}
	if a.detach && a.asJSON {
		return c.printJSON(started)
	}
	if a.detach {
		fmt.Fprintln(c.stdout, started.JobID)
	}
	if started.Resume != nil && !a.asJSON {
		fmt.Fprintf(c.stderr, "%s resumes from %s\n", started.JobID, jobs.ResumeText(started.Resume))
	}
	if a.detach {
		c.printWarnings(started.Warnings) // a watched run prints them at its end
		return nil
	}
	return c.watch(ctx, svc, started.Started, watchOptions{onInterrupt: interruptDetach, json: a.asJSON})
}

// followBatch shows a started batch until it ends (or returns at once with
// detach). Ctrl-C detaches: the batch goes on; millrace cancel stops it.
func (c *cli) followBatch(ctx context.Context, svc *jobs.Service, started jobs.BatchStarted, detach, asJSON bool) error {
	if detach {
		if asJSON {
			return c.printJSON(started)
		}
		fmt.Fprintln(c.stdout, started.BatchID)
		fmt.Fprintf(c.stderr, "%s\n", c.errs.dim(fmt.Sprintf("started %d nodes; follow with: millrace jobs --batch %s", len(started.Nodes), started.BatchID)))
		return nil
	}
	if !asJSON {
		fmt.Fprintf(c.stderr, "%s started (round %d, %d nodes)\n", c.errs.bold("batch "+started.BatchID), started.Round, len(started.Nodes))
	}
	var disp batchDisplay = &plainBatchDisplay{c: c, seen: map[string]string{}}
	switch {
	case asJSON:
		disp = nopBatchDisplay{}
	case isTerminal(c.stderr):
		disp = newBarBatchDisplay(c, started)
	}
	for {
		st, err := svc.BatchStatus(ctx, started.BatchID)
		if ctx.Err() != nil {
			disp.stop()
			fmt.Fprintf(c.stderr, "detached: batch %s keeps running\n  status:    millrace jobs --batch %s\n  cancel it: millrace cancel %s\n", started.BatchID, started.BatchID, started.BatchID)
			return nil
		}
		if err != nil {
			disp.stop()
			return err
		}
		disp.update(st)
		if st.Ended() {
			disp.stop()
			return c.batchSummary(st, asJSON)
		}
		select {
		case <-ctx.Done():
		case <-time.After(watchEvery):
		}
	}
}

// batchSummary prints a finished batch; the error carries exit status 1
// unless every node succeeded.
func (c *cli) batchSummary(st jobs.BatchStatus, asJSON bool) error {
	if asJSON {
		if err := c.printJSON(st); err != nil {
			return err
		}
	} else {
		t := table{header: []string{"NODE", "STATUS", "JOB", "OUTPUT"}}
		for _, n := range st.Nodes {
			status := n.Status
			if n.Reused {
				status += " (reused)"
			}
			t.add(cell{text: n.ID}, cell{text: status, colour: c.out.status}, cell{text: n.JobID}, cell{text: displayPath(n.Output)})
		}
		t.print(c.stdout, c.out)
		for _, n := range st.Nodes {
			if n.Error != nil && n.Status != workflows.NodeSkipped {
				fmt.Fprintf(c.stdout, "%s %s: %s\n", c.out.red("✗"), n.ID, n.Error.Message)
			}
		}
		fmt.Fprintf(c.stdout, "%s batch %s %s\n", c.out.mark(st.Status), st.BatchID, c.out.status(st.Status))
		if st.Notification != nil {
			fmt.Fprintf(c.stdout, "webhook: %s (millrace status %s shows how it went)\n", st.Notification, st.BatchID)
		}
	}
	if st.Status != workflows.StatusSucceeded {
		return &exitError{code: exitFailed, err: fmt.Errorf("batch %s", st.Status)}
	}
	return nil
}

// batchDisplay shows a batch while it runs.
type batchDisplay interface {
	update(st jobs.BatchStatus)
	stop()
}

type nopBatchDisplay struct{}

func (nopBatchDisplay) update(jobs.BatchStatus) {}
func (nopBatchDisplay) stop()                   {}

// plainBatchDisplay prints a line whenever a node changes state, for logs
// and pipes.
type plainBatchDisplay struct {
	c    *cli
	seen map[string]string
}

func (d *plainBatchDisplay) update(st jobs.BatchStatus) {
	for _, n := range st.Nodes {
		if d.seen[n.ID] == n.Status {
			continue
		}
		d.seen[n.ID] = n.Status
		extra := ""
		if n.Reused {
			extra = " (reused from an earlier round)"
		} else if n.Status == workflows.StatusRunning || n.Status == workflows.StatusPending {
			extra = " " + n.JobID
		}
		fmt.Fprintf(d.c.stderr, "%s %-16s %s%s\n", time.Now().Format("15:04:05"), n.ID, d.c.errs.status(n.Status), extra)
	}
}

func (d *plainBatchDisplay) stop() {}

// barBatchDisplay redraws one progress bar per node on a terminal.
type barBatchDisplay struct {
	p     *mpb.Progress
	mu    sync.Mutex
	nodes map[string]jobs.BatchNodeStatus
	bars  map[string]*mpb.Bar
	order []string
}

func newBarBatchDisplay(c *cli, started jobs.BatchStarted) *barBatchDisplay {
	d := &barBatchDisplay{
		p:     mpb.New(mpb.WithOutput(c.stderr), mpb.WithWidth(30), mpb.WithRefreshRate(150*time.Millisecond)),
		nodes: map[string]jobs.BatchNodeStatus{},
		bars:  map[string]*mpb.Bar{},
	}
	width := 8
	for _, n := range started.Nodes {
		width = max(width, len(n.ID)+1)
	}
	for _, n := range started.Nodes {
		id := n.ID
		d.order = append(d.order, id)
		d.bars[id] = d.p.New(0,
			mpb.BarStyle().Lbound("[").Filler("=").Tip(">").Padding("-").Rbound("]"),
			mpb.PrependDecorators(decor.Name(id, decor.WC{W: width, C: decor.DindentRight})),
			mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return d.label(id) })),
		)
	}
	return d
}

func (d *barBatchDisplay) label(id string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	n, ok := d.nodes[id]
	if !ok {
		return "WAITING"
	}
	s := n.Status
	if n.Reused {
		s += " (reused)"
	}
	if n.Progress != nil && n.Progress.CellsTotal > 0 && n.Status == workflows.StatusRunning {
		s += " " + n.Progress.String()
		if n.Progress.CurrentSource != "" {
			s += ": " + notebook.Shorten(n.Progress.CurrentSource, 40)
		}
	}
	return s
}

func (d *barBatchDisplay) update(st jobs.BatchStatus) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, n := range st.Nodes {
		d.nodes[n.ID] = n
		b := d.bars[n.ID]
		if b == nil || b.Completed() {
			continue
		}
		switch {
		case n.Status == workflows.StatusRunning && n.Progress != nil && n.Progress.CellsTotal > 0:
			b.SetTotal(int64(n.Progress.CellsTotal), false)
			b.SetCurrent(int64(n.Progress.CellsDone))
		case n.Status == workflows.StatusSucceeded:
			b.SetTotal(1, false)
			b.SetCurrent(1)
			b.SetTotal(-1, true)
		case n.Status != workflows.StatusRunning && n.Status != workflows.StatusPending && n.Status != workflows.NodeWaiting:
			b.Abort(false)
		}
	}
}

func (d *barBatchDisplay) stop() {
	d.mu.Lock()
	for _, id := range d.order {
		if b := d.bars[id]; !b.Completed() && !b.Aborted() {
			b.Abort(false)
		}
	}
	d.mu.Unlock()
	d.p.Wait()
}
