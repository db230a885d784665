package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"millrace/internal/executor"
	"millrace/internal/failure"
	"millrace/internal/filemode"
	"millrace/internal/heartbeat"
	"millrace/internal/limits"
	"millrace/internal/logstore"
	"millrace/internal/notebook"
	"millrace/internal/rundir"
	"millrace/internal/runenv"
	"millrace/workflows"
)

// RunNotebook runs one attempt of a notebook run. It returns when the
// executor has exited and every process it started is gone. It runs in
// three stages, each owning one part of the attempt: prepare (everything
// before the executor), run (the executor's life) and conclude (what its
// exit means). What a stage opens for a later one is closed by the
// attempt's close, once all three are done.
func (a *Activities) RunNotebook(ctx context.Context, in workflows.RunInput) (workflows.AttemptResult, error) {
	at := &attempt{in: in}
	defer at.close()
	res, err := a.prepare(ctx, at)
	if err == nil {
		res, err = a.run(ctx, at, res)
	}
	if err == nil {
		res, err = a.conclude(ctx, at, res)
	}
	at.final = res
	return res, err
}

// attempt is one attempt of a run as its stages hand it on.
type attempt struct {
	in    workflows.RunInput
	jobID string
	n     int
	log   *slog.Logger
	dir   string
	// final is the attempt's result once its stages are done, for the
	// closers that report on it (the attempt's metrics).
	final workflows.AttemptResult
	// closers undo what the stages opened (see close).
	closers []func()
	// Set by prepare.
	resume  resumePoint
	spec    executor.Spec
	launch  executor.Spec
	logw    *logstore.Writer
	ad      *admitted
	startup func()
	// schedule and gate time the attempt's heartbeats (startHeartbeats).
	schedule heartbeat.Schedule
	gate     *heartbeat.Gate[workflows.Progress]
	// Set by run.
	proc      *executor.Process
	progress  *progressReader
	grp       *limits.Group
	isolation string
	oomKills  int64
}

// onClose has close call f, after the closers added later.
func (at *attempt) onClose(f func()) { at.closers = append(at.closers, f) }

// close runs the closers in reverse order, as deferred calls would.
func (at *attempt) close() {
	for i := len(at.closers) - 1; i >= 0; i-- {
		at.closers[i]()
	}
}

// prepare owns everything before the executor starts: the job id check,
// the heartbeat while starting, the sweep of a lost attempt's leftovers,
// the attempt's folder, the re-check of the input, the parameters file,
// the log, and the admission of the files beneath the roots. A failure
// here is recorded as the attempt's end and no executor runs.
func (a *Activities) prepare(ctx context.Context, at *attempt) (workflows.AttemptResult, error) {
	in := at.in
	info := activity.GetInfo(ctx)
	jobID := info.WorkflowExecution.ID
	n := int(info.Attempt)
	log := a.logger().With("job", jobID, "attempt", n)
	at.jobID, at.n, at.log = jobID, n, log
	res := workflows.AttemptResult{Attempt: n, Executor: a.Executor.Name, OutputPath: in.Output, StartedAt: time.Now()}
	// The id names folders under the data dir: checked before anything.
	if err := checkJobID(jobID); err != nil {
		return res, a.fail(&res, failure.TypeBadInput, err.Error(), nil, true)
	}

	// Heartbeat from the first moment: sweeping a lost attempt's leftovers,
	// confining this one and starting Python can take seconds on a loaded
	// host, and a short heartbeat timeout must not find this attempt lost
	// too before its executor's first heartbeat.
	// Where to start is read before the first heartbeat, which replaces
	// the lost attempt's details; the checkpoint goes on in every
	// heartbeat of this attempt until a newer one is taken.
	at.resume = a.resumeFrom(ctx, jobID, in)
	a.startHeartbeats(ctx, at)
	at.startup = at.heartbeatUntilStarted(ctx, workflows.Progress{Attempt: n, CurrentCell: -1, Executor: a.Executor.Name, OutputPath: in.Output, StartedAt: res.StartedAt, Checkpoint: at.resume.Checkpoint})
	at.onClose(at.startup)
	a.closeLostAttempts(ctx, jobID, n)
	dir := rundir.AttemptDir(a.DataDir, jobID, n)
	at.dir = dir
	if err := os.MkdirAll(dir, filemode.Dir); err != nil {
		return res, a.fail(&res, failure.TypeStorage, fmt.Sprintf("cannot create the run's directory: %v", err), nil, true)
	}
	if err := checkInput(in); err != nil {
		return res, a.end(dir, &res, failure.TypeBadInput, err.Error(), nil, true)
	}
	if res.OutputPath == "" {
		res.OutputPath = rundir.DefaultOutput(a.DataDir, jobID)
	}
	spec := executor.Spec{
		Input:       in.Notebook,
		Output:      res.OutputPath,
		Kernel:      in.Kernel,
		Cwd:         in.Cwd,
		CellTimeout: in.CellTimeout,
		ResultFile:  filepath.Join(dir, rundir.ResultFile),
	}
	if p := strings.TrimSpace(string(in.Parameters)); p != "" && p != "null" && p != "{}" {
		spec.ParamsFile = filepath.Join(dir, rundir.ParamsFile)
		if err := os.WriteFile(spec.ParamsFile, in.Parameters, filemode.File); err != nil {
			return res, a.end(dir, &res, failure.TypeStorage, fmt.Sprintf("cannot write the parameters file: %v", err), nil, true)
		}
	}
	if refused, err := a.checkpointSpec(at, &spec, &res); err != nil {
		return res, a.end(dir, &res, failure.TypeStorage, fmt.Sprintf("cannot create the run's checkpoint folder: %v", err), nil, true)
	} else if refused != "" {
		return res, a.end(dir, &res, failure.TypeBadInput, refused, nil, true)
	}
	at.spec = spec
	logw, err := logstore.Create(dir)
	if err != nil {
		return res, a.end(dir, &res, failure.TypeStorage, fmt.Sprintf("cannot open the run's log: %v", err), nil, true)
	}
	at.logw = logw
	at.onClose(func() { logw.Close() })
	at.onClose(countAttempt(ctx, logw, &at.final))

	// Last check before the executor starts: a run may have waited in the
	// queue for hours, time enough for its folders to be swapped.
	ad, err := a.admit(jobID, in, spec.Output)
	if err != nil {
		var r *refusal
		if errors.As(err, &r) {
			log.Warn("input refused", "reason", r.msg)
			return res, a.end(dir, &res, failure.TypeBadInput, err.Error(), nil, true)
		}
		return res, a.end(dir, &res, failure.TypeStorage, err.Error(), nil, true)
	}
	at.ad = ad
	at.onClose(ad.Close)
	launch := spec
	launch.Output = ad.outputArg(spec.Output)
	at.launch = launch
	return res, nil
}

// run owns the executor's life: its confinement (a cgroup, with the run's
// limits), its start, the copy of its output to the log, the heartbeats
// of its progress, and its stop on cancel, timeout or a log that cannot be
// written. It returns once the executor and every process it started are
// gone and the cgroup is released; an error means the attempt ended here,
// stopped, and conclude has nothing to read.
func (a *Activities) run(ctx context.Context, at *attempt, res workflows.AttemptResult) (workflows.AttemptResult, error) {
	in, jobID, n, log, dir := at.in, at.jobID, at.n, at.log, at.dir
	spec, launch, logw, ad, startup := at.spec, at.launch, at.logw, at.ad, at.startup
	marker := jobID + "." + strconv.Itoa(n)
	grp, isolation, err := a.confine(in, marker, log)
	if err != nil {
		return res, a.confineFailure(dir, &res, err)
	}
	env := runenv.Kernel(os.Environ(), a.PassEnv, in.Env)
	start := executor.Launch{Args: a.Executor.Args(launch), Dir: ad.dirArg(in.Cwd), Env: env, Marker: marker, Confiner: confiner(grp), Files: ad.files()}
	proc, err := executor.StartWith(start)
	if err != nil && grp != nil && grp.Spec() == (limits.Spec{}) {
		// A host may refuse to start a process in a cgroup it let the
		// worker create; a run without limits then goes without one.
		a.release(grp, log)
		grp, isolation = nil, limits.NoCgroupWarning("starting in one failed: "+err.Error())
		start.Confiner = nil
		proc, err = executor.StartWith(start)
	}
	if err != nil {
		a.release(grp, log)
		return res, a.end(dir, &res, failure.TypeExecutorExited, err.Error(), nil, true)
	}
	log.Info("executor started", "pid", proc.Pid(), "executor", a.Executor.Name, "notebook", in.Notebook)

	var pumps sync.WaitGroup
	pumps.Add(2)
	go func() { defer pumps.Done(); _ = logw.Copy(logstore.Stdout, proc.Stdout) }()
	go func() { defer pumps.Done(); _ = logw.Copy(logstore.Stderr, proc.Stderr) }()

	progress := newProgressReader(spec.Output, n, a.Executor.Name, res.StartedAt, spec.CheckpointDir, at.resume.Checkpoint)
	heartbeat := func() {
		p := progress.read()
		p.LogLines, p.LogBytes = logw.Stats()
		at.beat(ctx, p)
	}
	startup()
	heartbeat()
	storageErr := a.watch(ctx, proc, logw, at.schedule.Every, heartbeat)
	proc.Cleanup()
	oomKills := a.release(grp, log)
	drain(&pumps, proc, 5*time.Second)
	logw.Close()
	res.EndedAt = time.Now()
	at.proc, at.progress, at.grp, at.isolation, at.oomKills = proc, progress, grp, isolation, oomKills

	if lost := asLostContact(storageErr); lost != nil {
		return res, a.endFenced(at, &res, lost)
	}
	if asWorkerStopped(storageErr) {
		return res, a.endStopped(at, &res)
	}
	if storageErr != nil {
		return res, a.end(dir, &res, failure.TypeStorage, fmt.Sprintf("cannot write the run's log, so the run was stopped: %v", storageErr), nil, true)
	}
	if ctx.Err() != nil {
		outcome, msg := failure.KindCanceled, "the run was canceled"
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			outcome, msg = failure.KindTimedOut, "the run exceeded its timeout"
		}
		_ = rundir.WriteEnd(dir, rundir.AttemptEnd{Attempt: n, EndedAt: res.EndedAt, Outcome: string(outcome), Message: msg})
		log.Info("attempt stopped", "reason", outcome)
		return res, ctx.Err()
	}
	return res, nil
}

// conclude owns what the executor's exit means: the outcome (the runner's
// result file, or the exit status, stderr and output notebook), the
// memory limit's verdict, the last heartbeat, the attempt's end record,
// and the result or the failure whose type the retry policy matches.
func (a *Activities) conclude(ctx context.Context, at *attempt, res workflows.AttemptResult) (workflows.AttemptResult, error) {
	in, jobID, n, log, dir := at.in, at.jobID, at.n, at.log, at.dir
	spec, logw, proc, progress, grp, isolation, oomKills := at.spec, at.logw, at.proc, at.progress, at.grp, at.isolation, at.oomKills
	out := a.outcome(proc.ExitCode(), spec, jobID)
	limitOutcome(grp, oomKills, &out)
	if isolation != "" {
		out.Warnings = append(out.Warnings, isolation)
	}
	res.Kernel, res.KernelDefaulted = out.KernelName, out.KernelDefaulted
	res.CellsExecuted, res.CellsTotal = out.CellsExecuted, out.CellsTotal
	res.Warnings = append(res.Warnings, out.Warnings...)
	last := progress.final(out, logw)
	activity.RecordHeartbeat(ctx, last)
	res.ResumedFromCell, res.Checkpoints = last.ResumedFromCell, progress.checkpoints(out.Checkpoints)
	if out.Succeeded() {
		code := 0
		_ = rundir.WriteEnd(dir, rundir.AttemptEnd{Attempt: n, EndedAt: res.EndedAt, Outcome: string(failure.KindOK), Message: "the notebook ran to its end", ExitCode: &code, ResumedFromCell: res.ResumedFromCell})
		log.Info("attempt succeeded", "cells", out.CellsExecuted)
		return res, nil
	}
	errType, nonRetryable := out.Kind.Type()
	retried := !nonRetryable && n < maxAttempts(in) && (errType != failure.TypeCellError || in.RetryOnError)
	msg := out.Message
	if msg == "" {
		msg = string(out.Kind)
	}
	_ = rundir.WriteEnd(dir, rundir.AttemptEnd{Attempt: n, EndedAt: res.EndedAt, Outcome: string(out.Kind), Message: msg, ExitCode: &out.ExitCode, Retried: retried, ResumedFromCell: res.ResumedFromCell})
	log.Info("attempt failed", "kind", out.Kind, "exit", out.ExitCode, "retried", retried)
	return res, a.fail(&res, errType, msg, out.Cell, nonRetryable)
}

// heartbeatUntilStarted heartbeats p while the attempt starts, looking
// every heartbeat period, until the returned stop is called (any number of
// times); stop returns once no heartbeat of p can follow.
func (at *attempt) heartbeatUntilStarted(ctx context.Context, p workflows.Progress) (stop func()) {
	at.beat(ctx, p)
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		tick := time.NewTicker(at.schedule.Every)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
				at.beat(ctx, p)
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		<-exited
	}
}

// startHeartbeats sets the attempt's heartbeat schedule, fitted to the
// heartbeat timeout the run was started with, and its gate, which the
// heartbeats while it starts and while it runs share.
func (a *Activities) startHeartbeats(ctx context.Context, at *attempt) {
	info := activity.GetInfo(ctx)
	every := a.HeartbeatInterval()
	at.schedule = heartbeat.ScheduleFor(every, info.HeartbeatTimeout)
	if at.schedule.Shortened {
		at.log.Warn("the run's heartbeat timeout is too short for this worker's --heartbeat-every: this attempt heartbeats more often",
			"heartbeat_every", every, "heartbeat_timeout", info.HeartbeatTimeout, "every", at.schedule.Every)
	}
	var accepted func() time.Time
	if a.Heartbeats != nil {
		token := info.TaskToken
		accepted = func() time.Time {
			last, _ := a.Heartbeats.Last(token)
			return last
		}
	}
	at.gate = heartbeat.NewGate[workflows.Progress](at.schedule, accepted)
}

// beat heartbeats p when the attempt's gate lets it through: it changed,
// or the keep-alive is due.
func (at *attempt) beat(ctx context.Context, p workflows.Progress) {
	if at.gate.Due(p, time.Now()) {
		activity.RecordHeartbeat(ctx, p)
	}
}

// watch looks at the run every heartbeat period, and heartbeats, until
// the executor exits, the context ends (cancel or timeout: the process
// tree is stopped), the log cannot be written (the process tree is
// stopped and the error returned), the attempt's fence finds the server
// out of reach (the process tree is stopped and the fence's reason
// returned: see FenceAfter), or the worker is told to stop and the run
// does not end within the grace (the process tree is stopped and
// workerStopped returned: see HandBackWithin).
func (a *Activities) watch(ctx context.Context, proc *executor.Process, logw *logstore.Writer, every time.Duration, heartbeat func()) error {
	grace := a.grace()
	fence := a.fence(ctx, every, grace)
	defer fence.close()
	tick := time.NewTicker(every)
	defer tick.Stop()
	stopping := activity.GetWorkerStopChannel(ctx)
	var handBack <-chan time.Time
	for {
		select {
		case <-proc.Done():
			return nil
		case <-stopping:
			// A run about to end gets the grace to do so; heartbeats go
			// on meanwhile.
			stopping = nil
			handBack = time.After(grace)
		case <-handBack:
			a.stop(proc, grace)
			return workerStopped{}
		case <-ctx.Done():
			// The SDK ends the context when a heartbeat fails for good:
			// that is the fence's to report, not a cancel.
			if lost := fence.lost(context.Cause(ctx)); lost != nil {
				a.stop(proc, lost.grace)
				return lost
			}
			a.stop(proc, grace)
			return nil
		case <-tick.C:
			if err := logw.Err(); err != nil {
				a.stop(proc, grace)
				return err
			}
			if lost := fence.lost(nil); lost != nil {
				a.stop(proc, lost.grace)
				return lost
			}
			heartbeat()
		}
	}
}

// stop stops the executor; one that would not die is the worker's trouble
// to report, not the run's: its outcome still comes from its exit.
func (a *Activities) stop(proc *executor.Process, grace time.Duration) {
	if err := proc.Stop(grace); err != nil {
		a.logger().Error("the executor could not be stopped", "err", err)
	}
}

// drain waits for the output pumps to reach EOF. A process that escaped the
// sweep could hold a pipe open forever: after the bound the read ends are
// closed, which ends the pumps.
func drain(pumps *sync.WaitGroup, proc *executor.Process, bound time.Duration) {
	done := make(chan struct{})
	go func() { pumps.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(bound):
		proc.Stdout.Close()
		proc.Stderr.Close()
		<-done
	}
	proc.Stdout.Close()
	proc.Stderr.Close()
}

// outcome explains the executor's exit: the bundled runner's result file
// when there is one, else the exit status, stderr and the output notebook.
func (a *Activities) outcome(code int, spec executor.Spec, jobID string) executor.Outcome {
	out, ok, err := executor.ReadResultFile(spec.ResultFile)
	if ok && err == nil {
		out.ExitCode = code
		return out
	}
	var tail []string
	if page, terr := logstore.Tail(rundir.JobDir(a.DataDir, jobID), logstore.PageLimit{Lines: 40}, logstore.OnlyStderr); terr == nil {
		for _, l := range page.Lines {
			tail = append(tail, l.Text)
		}
	}
	out = executor.FromExit(code, tail)
	if nb, err := notebook.Load(spec.Output); err == nil {
		out.KernelName, out.Language = nb.KernelName(), nb.Language()
		out.CellsTotal = nb.CodeCells()
		in, _ := notebook.Load(spec.Input)
		out.CellsExecuted, out.Cell = failedCell(nb, in)
		if c := out.Cell; c != nil && (out.Kind == failure.KindExited && code == 1 || out.Kind == failure.KindCellError) {
			out.Kind = failure.KindCellError
			out.Message = fmt.Sprintf("cell %d raised %s: %s", c.Index, c.EName, c.EValue)
		}
	}
	return out
}

func maxAttempts(in workflows.RunInput) int {
	if in.MaxAttempts > 0 {
		return in.MaxAttempts
	}
	return workflows.DefaultMaxAttempts
}

// end records an attempt that failed before the executor ran, and returns
// its failure.
func (a *Activities) end(dir string, res *workflows.AttemptResult, errType failure.Type, msg string, cell *notebook.CellFailure, nonRetryable bool) error {
	res.EndedAt = time.Now()
	_ = rundir.WriteEnd(dir, rundir.AttemptEnd{Attempt: res.Attempt, EndedAt: res.EndedAt, Outcome: string(errType), Message: msg})
	return a.fail(res, errType, msg, cell, nonRetryable)
}

// fail builds the attempt's failure, carrying the attempt's result as
// details so the workflow can report cells, kernel and the failing cell.
func (a *Activities) fail(res *workflows.AttemptResult, errType failure.Type, msg string, cell *notebook.CellFailure, nonRetryable bool) error {
	if res.EndedAt.IsZero() {
		res.EndedAt = time.Now()
	}
	res.Error = &workflows.RunError{Type: errType, Message: msg, Cell: cell}
	return temporal.NewApplicationErrorWithOptions(msg, string(errType), temporal.ApplicationErrorOptions{
		NonRetryable: nonRetryable,
		Details:      []any{*res},
	})
}

func (a *Activities) logger() *slog.Logger {
	if a.Logger != nil {
		return a.Logger
	}
	return slog.Default()
}

// checkInput re-checks what the job service validated, because a workflow
// can also be started by other clients (the Temporal CLI or UI).
func checkInput(in workflows.RunInput) error {
	if !filepath.IsAbs(in.Notebook) {
		return fmt.Errorf("notebook path %q is not absolute", in.Notebook)
	}
	if st, err := os.Stat(in.Notebook); err != nil {
		return fmt.Errorf("notebook %s: %w", in.Notebook, err)
	} else if st.IsDir() {
		return fmt.Errorf("notebook %s is a directory", in.Notebook)
	}
	if in.Output != "" && filepath.Clean(in.Output) == filepath.Clean(in.Notebook) {
		return fmt.Errorf("the output path is the input notebook %s: choose another output path", in.Notebook)
	}
	if st, err := os.Stat(in.Cwd); err != nil || !st.IsDir() {
		return fmt.Errorf("working directory %q does not exist or is not a directory", in.Cwd)
	}
	if err := limits.CheckMemory(in.MemoryLimit); err != nil {
		return err
	}
	return limits.CheckCPU(in.CPULimit)
}
