package main

import (
	"context"
	"fmt"

	"millrace/internal/jobs"
	"millrace/workflows"
)

func runCommand() command {
	return command{
		name:    "run",
		args:    "NOTEBOOK [flags]",
		summary: "start a notebook run and watch it to its end (or --detach)",
		help: `Starts NOTEBOOK as a durable job and follows it: a live progress bar (cell k/n,
elapsed time, the cell running) with the run's output lines above it, or plain
lines when the output is not a terminal. The exit status is 0 when the run
succeeds and 1 when it fails, is canceled or times out; a failure prints the
failing cell, the error and an excerpt of its traceback.

Parameters are typed as papermill types them: -p n=5 is an int, -p lr=0.1 a
float, -p flag=True a bool, -p x=None None, anything else a string. -f reads a
YAML or JSON file (YAML typed as papermill's loader types it); -r keeps a value
a string. Later sources override earlier ones: -f, then -r, then -p.
Papermill's two-word form, -p NAME VALUE, works too.

The job runs in Temporal, not in this process: Ctrl-C asks whether to cancel
the run or detach from it (it goes on; millrace logs -f ID follows it again).
--on-interrupt picks without asking; without a terminal to ask on, Ctrl-C
detaches.

Examples:
  millrace run examples/train.ipynb -p epochs=5
  millrace run report.ipynb -f params.yaml --label nightly --detach
  millrace run slow.ipynb --timeout 2h --cell-timeout 10m --on-interrupt cancel`,
		run: runRun,
	}
}

func runRun(ctx context.Context, c *cli, cmd command, args []string) error {
	f := newFlags(c, cmd)
	var params parameterFlags
	f.Var(&params.typed, "p", "a parameter `name=value`, typed as papermill's -p types it (repeatable)")
	f.Var(&params.raw, "r", "a parameter `name=value` passed as a string, untyped (repeatable)")
	f.Var(&params.files, "f", "a YAML or JSON `file` of parameters (repeatable)")
	var req jobs.StartRequest
	bindRunOptions(f, &req)
	detach := f.Bool("detach", false, "print the job id and return at once; the run goes on")
	onInterrupt := &choiceFlag{value: interruptAsk, choices: []string{interruptAsk, interruptCancel, interruptDetach}}
	f.Var(onInterrupt, "on-interrupt", "what Ctrl-C does: ask, cancel or detach; ask detaches when there is no terminal to ask on")
	asJSON := f.Bool("json", false, "print JSON instead of text: the started job with --detach, else the final status (no live display)")
	cfg := f.withConfig()
	pos, err := f.parse(papermillPairs(args), 1, 1)
	if err != nil {
		return err
	}

	if req.Parameters, err = params.values(); err != nil {
		return usagef(cmd, "%v", err)
	}
	req.Path = absPath(pos[0])

	// Bad input fails here, before anything connects to Temporal (or
	// starts the dev service).
	local, err := localService(cmd, cfg)
	if err != nil {
		return err
	}
	if _, err := local.RunInput(workflows.RunIDPrefix+"check", req); err != nil {
		return err
	}
	svc, done, err := c.connect(ctx, cmd, cfg)
	if err != nil {
		return err
	}
	defer done()
	started, err := svc.Start(ctx, req)
	if err != nil {
		return err
	}
	if *detach {
		if *asJSON {
			return c.printJSON(started)
		}
		fmt.Fprintln(c.stdout, started.JobID)
		c.printWarnings(started.Warnings) // a watched run prints them at its end
		fmt.Fprintf(c.stderr, "%s\n", c.errs.dim(fmt.Sprintf("started %s; follow it with: millrace logs -f %s", displayPath(started.Notebook), started.JobID)))
		return nil
	}
	if !*asJSON {
		fmt.Fprintf(c.stderr, "%s started: %s\n", c.errs.bold("job "+started.JobID), displayPath(started.Notebook))
	}
	return c.watch(ctx, svc, started, watchOptions{onInterrupt: onInterrupt.value, json: *asJSON})
}

// printWarnings prints a run's warnings on stderr.
func (c *cli) printWarnings(warnings []string) {
	for _, warning := range warnings {
		fmt.Fprintf(c.stderr, "%s %s\n", c.errs.yellow("warning:"), warning)
	}
}

// summary prints how a watched run ended; the error carries exit status 1
// unless it succeeded.
func (c *cli) summary(st jobs.Status, opt watchOptions) error {
	var err error
	if st.Status != workflows.StatusSucceeded {
		err = &exitError{code: exitFailed, err: fmt.Errorf("job %s %s", st.JobID, st.Status)}
	}
	if opt.json {
		if perr := c.printJSON(st); perr != nil {
			return perr
		}
		return err
	}
	s, w := c.errs, c.stderr
	c.printWarnings(st.Warnings)
	head := fmt.Sprintf("%s job %s %s in %s", s.mark(st.Status), st.JobID, s.bold(s.status(st.Status)), fmtDuration(seconds(st.Duration)))
	if st.Progress.CellsTotal > 0 {
		head += fmt.Sprintf(" (%d/%d cells)", st.Progress.CellsDone, st.Progress.CellsTotal)
	}
	// The verdict comes last, after what explains it.
	switch {
	case st.Status == workflows.StatusCanceled && st.Error != nil && st.Error.EName == "":
		fmt.Fprintln(w, st.Error.Message) // asked for: not an error
	case st.Error != nil:
		printFailure(w, s, st.Error, "")
	}
	if len(st.Attempts) > 1 {
		fmt.Fprintf(w, "after %d attempts\n", len(st.Attempts))
	}
	if st.OutputPath != "" {
		fmt.Fprintf(w, "output notebook: %s\n", displayPath(st.OutputPath))
	}
	fmt.Fprintln(w, head)
	return err
}
