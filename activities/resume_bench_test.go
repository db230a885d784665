package activities_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"millrace/internal/executor"
	"millrace/internal/executor/runner"
	"millrace/internal/jobs"
	"millrace/internal/logstore"
	"millrace/internal/notebook"
	"millrace/internal/rundir"
	"millrace/internal/runopts"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// benchHeartbeat is the heartbeat timeout of the resume benchmark's runs,
// as in the resume tests: a lost worker is noticed this long after its
// last heartbeat, so it is most of the time from a kill to the next
// attempt.
const benchHeartbeat = 6 * time.Second

// BenchmarkResumeAfterKill measures what a checkpoint saves when a worker
// dies: the resume test's notebook (testdata/resume_after_kill.ipynb: 10
// cells, cell 2 builds a 200 MB array and sleeps 20 s) runs on a worker
// process that is SIGKILLed while cell 8 runs; a second worker then takes
// attempt 2. Each repetition runs it twice, side by side: with checkpoint
// every_cell (attempt 2 restores the checkpoint after cell 7 and runs
// cells 8 and 9) and with checkpoint off (attempt 2 runs every cell
// again). It reports the time from the kill to the workflow's close
// (history) for each, their ratio, the time from the kill to attempt 2
// seen running, which the heartbeat timeout (6 s) sets, and to the resumed
// kernel's first mark (cell 8 starting: the kernel started and the
// checkpoint restored).
// `go test -run '^$' -bench ResumeAfterKill -benchtime 1x ./activities/`
func BenchmarkResumeAfterKill(b *testing.B) {
	bin, err := testenv.BuildBinary(b.TempDir(), "./cmd/worker", "millrace-worker")
	if err != nil {
		b.Fatal(err)
	}
	policies := []string{workflows.CheckpointEveryCell, workflows.CheckpointOff}
	took := map[string][]time.Duration{}
	detect := map[string][]time.Duration{}
	firstMark := map[string][]time.Duration{}
	var resumedFrom []int
	n := 0
	for b.Loop() {
		for _, policy := range policies {
			n++
			k := killAndFinish(b, bin, policy, n)
			took[policy] = append(took[policy], k.toClosed)
			detect[policy] = append(detect[policy], k.toAttempt2)
			firstMark[policy] = append(firstMark[policy], k.toFirstMark)
			if policy == workflows.CheckpointEveryCell {
				resumedFrom = append(resumedFrom, k.resumedFrom)
			}
			b.Logf("%s: kill to attempt 2 %.2fs, to its first mark %.2fs, to SUCCEEDED %.2fs, attempt 2 from cell %d",
				policy, k.toAttempt2.Seconds(), k.toFirstMark.Seconds(), k.toClosed.Seconds(), k.resumedFrom)
		}
	}
	resumed, rerun := median(took[workflows.CheckpointEveryCell]), median(took[workflows.CheckpointOff])
	b.ReportMetric(resumed.Seconds(), "resume-s")
	b.ReportMetric(rerun.Seconds(), "rerun-s")
	b.ReportMetric(resumed.Seconds()/rerun.Seconds(), "ratio")
	b.ReportMetric(median(detect[workflows.CheckpointEveryCell]).Seconds(), "kill-to-attempt2-s")
	b.ReportMetric(median(firstMark[workflows.CheckpointEveryCell]).Seconds(), "kill-to-restored-s")
	b.ReportMetric(float64(minInt(resumedFrom)), "resumed-from-cell")
}

// killTimes is one run of BenchmarkResumeAfterKill.
type killTimes struct {
	toAttempt2, toClosed time.Duration
	// toFirstMark is the time to the first mark of attempt 2's kernel: a
	// resumed attempt marks at the start of cell 8, after the restore; a
	// rerun at the end of cell 1.
	toFirstMark time.Duration
	resumedFrom int // the first cell attempt 2 ran; 0 when it ran them all
}

// killAndFinish runs the notebook once with the policy on a worker
// process of its own task queue, kills that worker in cell 8, starts a
// second worker, and times what follows.
func killAndFinish(b *testing.B, bin, policy string, n int) killTimes {
	root := b.TempDir()
	nb := testenv.CopyFile(b, "testdata/resume_after_kill.ipynb", root)
	cfg := server.Config(b)
	cfg.TaskQueue += "-" + strconv.Itoa(n) // a fresh queue: no worker of an earlier run takes this one
	svc := server.Service(b, cfg, root)
	worker, exited := server.StartWorkerProcess(b, bin, cfg)
	ctx := context.Background()
	run, err := svc.Start(ctx, jobs.StartRequest{Path: nb, HeartbeatTimeout: benchHeartbeat,
		Options: runopts.Options{Checkpoint: policy}})
	if err != nil {
		b.Fatal(err)
	}
	status := func() jobs.Status {
		st, err := svc.Status(ctx, run.JobID)
		if err != nil {
			b.Fatal(err)
		}
		if st.Ended() {
			b.Fatalf("%s: the run ended before the kill: %s %+v", policy, st.Status, st.Error)
		}
		return st
	}
	testenv.Eventually(b, 3*time.Minute, "cell 8 running", func() bool {
		status()
		return ranCells(root)[8] > 0
	})
	if policy == workflows.CheckpointEveryCell {
		// Kill once Temporal holds the checkpoint after cell 7, as the
		// resume test does; a runner that records it only later is
		// killed anyway and resumes from what Temporal had (reported).
		deadline := time.Now().Add(30 * time.Second)
		for st := status(); st.Checkpoint == nil || st.Checkpoint.Cell < 7; st = status() {
			if time.Now().After(deadline) {
				b.Logf("the checkpoint after cell 7 was not recorded 30 s into cell 8 (last: %+v); killing anyway", st.Checkpoint)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if err := worker.Process.Signal(syscall.SIGKILL); err != nil {
		b.Fatal(err)
	}
	killed := time.Now()
	<-exited
	if err := os.WriteFile(filepath.Join(root, "go"), nil, 0o644); err != nil {
		b.Fatal(err)
	}
	server.StartWorker(b, cfg)

	var toAttempt2 time.Duration
	for toAttempt2 == 0 {
		st, err := svc.Status(ctx, run.JobID)
		if err != nil {
			b.Fatal(err)
		}
		if st.Attempt >= 2 || st.Ended() {
			toAttempt2 = time.Since(killed)
			break
		}
		if time.Since(killed) > 2*time.Minute {
			b.Fatalf("%s: no attempt 2 two minutes after the kill", policy)
		}
		time.Sleep(50 * time.Millisecond)
	}
	st, err := svc.WaitEnded(ctx, run.JobID, 5*time.Minute, nil)
	if err != nil || st.Status != workflows.StatusSucceeded || st.Attempt != 2 {
		b.Fatalf("%s: %s on attempt %d (%+v) %v; want SUCCEEDED on attempt 2", policy, st.Status, st.Attempt, st.Error, err)
	}
	closed := eventTimes(b, svc, run.JobID)[enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED]
	k := killTimes{toAttempt2: toAttempt2, toClosed: closed.Sub(killed)}
	if len(st.Attempts) == 2 {
		k.resumedFrom = st.Attempts[1].ResumedFromCell
	}
	if marks := readMarks(root); len(marks) > 0 {
		for _, m := range marks {
			if m.pid != marks[0].pid {
				k.toFirstMark = time.Unix(0, int64(m.at*1e9)).Sub(killed)
				break
			}
		}
	}
	// What attempt 2's runner said, with the log's times from the kill:
	// where a slow resume spends its time.
	for _, l := range stderrLines(b, svc, run.JobID) {
		if l.Attempt == 2 {
			b.Logf("%s attempt 2 +%.2fs %s", policy, l.Time.Sub(killed).Seconds(), l.Text)
		}
	}
	ran := ranCells(root)
	switch {
	case policy == workflows.CheckpointOff && (ran[1] != 2 || k.resumedFrom != 0):
		b.Fatalf("off: cell 1 ran %d times, attempt 2 resumed from %d; want a rerun from the start", ran[1], k.resumedFrom)
	case policy == workflows.CheckpointEveryCell && (ran[1] != 1 || k.resumedFrom == 0):
		b.Fatalf("every_cell: cell 1 ran %d times, attempt 2 resumed from %d; want a resume", ran[1], k.resumedFrom)
	}
	return k
}

// readMarks reads ran.log in dir (see markCell); a line being written is
// left out.
func readMarks(dir string) []ranCell {
	var out []ranCell
	b, _ := os.ReadFile(filepath.Join(dir, "ran.log"))
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		c, err1 := strconv.Atoi(f[0])
		p, err2 := strconv.Atoi(f[1])
		at, err3 := strconv.ParseFloat(f[2], 64)
		if err1 == nil && err2 == nil && err3 == nil {
			out = append(out, ranCell{c, p, at})
		}
	}
	return out
}

// ranCells counts the marks in ran.log by cell.
func ranCells(dir string) map[int]int {
	n := map[int]int{}
	for _, m := range readMarks(dir) {
		n[m.cell]++
	}
	return n
}

func minInt(xs []int) int {
	m := 0
	for i, x := range xs {
		if i == 0 || x < m {
			m = x
		}
	}
	return m
}

// costSizes are the namespaces BenchmarkCheckpointCost runs with: the
// bigger one runs longer, so that auto, which spaces its saves by their
// cost, saves more than once.
var costSizes = []struct {
	name   string
	mb     int
	cells  int
	filter string
}{{"200MB", 200, 12, "200MB"}, {"2GB", 2048, 24, "2GB"}}

// costCellSeconds is how long one compute cell runs, on this machine, with
// no checkpoint.
const costCellSeconds = 5

// BenchmarkCheckpointCost measures what checkpoint auto (the default)
// costs a run: testdata/checkpoint_cost.ipynb builds a namespace of 200 MB
// or 2 GB, then runs 12 (200 MB) or 24 (2 GB) compute cells of about 5 s
// of numpy work each on a 1 MB slice of it. Each repetition runs it
// through the job service and a worker with checkpoint off and with auto,
// alternating which goes first, and reports each run's time from the
// start call to the workflow's close, (auto - off) / off in percent, the
// checkpoints auto took, the pause each put before the next cell as the
// kernel measured it (the fork), and as the output notebook shows it: the
// gap between a checkpointed cell's end and the next cell's start, less
// the median gap of the run without checkpoints, and those pauses' share
// of the auto run (a part of auto's cost that other load on the machine
// does not blur; the other part is the forked child's competition for the
// processors while it writes). The compute cells' work
// is calibrated once (a fixed number of steps), so both runs do the same.
// MILLRACE_BENCH_COST_SIZES (200MB, 2GB or both, comma separated) picks
// the namespaces.
// `go test -run '^$' -bench CheckpointCost -benchtime 1x ./activities/`
func BenchmarkCheckpointCost(b *testing.B) {
	dir := b.TempDir()
	nb := testenv.CopyFile(b, "testdata/checkpoint_cost.ipynb", dir)
	cfg := server.Config(b)
	server.StartWorker(b, cfg)
	svc := server.Service(b, cfg, dir)
	steps := calibrateSteps(b, nb, costCellSeconds)
	b.Logf("compute cells: %d steps each (about %d s)", steps, costCellSeconds)
	want := os.Getenv("MILLRACE_BENCH_COST_SIZES")
	for _, size := range costSizes {
		if want != "" && !strings.Contains(","+want+",", ","+size.filter+",") {
			continue
		}
		b.Run(size.name, func(b *testing.B) {
			params := map[string]any{"size_mb": size.mb, "cells": size.cells, "steps": steps}
			runs := map[string][]costRun{}
			rep := 0
			for b.Loop() {
				order := []string{workflows.CheckpointOff, workflows.CheckpointAuto}
				if rep%2 == 1 {
					order[0], order[1] = order[1], order[0]
				}
				rep++
				for _, policy := range order {
					r := runForCost(b, svc, cfg.DataDir, nb, policy, params)
					runs[policy] = append(runs[policy], r)
					b.Logf("%s: %.2fs, %d checkpoints, kernel pauses %v s, gaps after them %v s, median gap %.3fs, forked writes %.1fs",
						policy, r.took.Seconds(), len(r.pauses), r.pauses, r.gapsAfter, r.medianGap, r.writing)
				}
			}
			reportCost(b, runs[workflows.CheckpointOff], runs[workflows.CheckpointAuto])
		})
	}
}

// costRun is one run of BenchmarkCheckpointCost.
type costRun struct {
	took      time.Duration
	pauses    []float64 // the kernel's pause per checkpoint, seconds
	gapsAfter []float64 // cell end to next cell start after each checkpointed cell, seconds
	medianGap float64   // the median gap between code cells, seconds
	writing   float64   // seconds the forked children spent writing, all checkpoints
}

func runForCost(b *testing.B, svc *jobs.Service, dataDir, nb, policy string, params map[string]any) costRun {
	ctx := context.Background()
	began := time.Now()
	run, err := svc.Start(ctx, jobs.StartRequest{Path: nb, Options: runopts.Options{Parameters: params, Checkpoint: policy}})
	if err != nil {
		b.Fatal(err)
	}
	st, err := svc.WaitEnded(ctx, run.JobID, 15*time.Minute, nil)
	if err != nil || st.Status != workflows.StatusSucceeded || st.Attempt != 1 {
		b.Fatalf("%s run %s: %s on attempt %d (%+v) %v", policy, run.JobID, st.Status, st.Attempt, st.Error, err)
	}
	closed := eventTimes(b, svc, run.JobID)[enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED]
	r := costRun{took: closed.Sub(began)}
	cells := checkpointLines(b, svc, run.JobID)
	gaps, err := cellGaps(st.OutputPath)
	if err != nil {
		b.Fatal(err)
	}
	var all []float64
	for _, g := range gaps {
		all = append(all, g)
	}
	r.medianGap = medianFloat(all)
	for _, c := range cells {
		r.pauses = append(r.pauses, c.pause)
		if g, ok := gaps[c.cell]; ok {
			r.gapsAfter = append(r.gapsAfter, g)
		}
	}
	// The result keeps the last few checkpoints (--checkpoint-keep): the
	// others are counted at the mean of those.
	res, ok, err := runner.ReadResult(filepath.Join(rundir.AttemptDir(dataDir, run.JobID, 1), rundir.ResultFile))
	if err != nil || !ok {
		b.Fatalf("the runner's result: %v (found %v)", err, ok)
	}
	if kept := len(res.Checkpoints); kept > 0 {
		sum := 0.0
		for _, c := range res.Checkpoints {
			sum += c.TotalSeconds
		}
		r.writing = sum / float64(kept) * float64(max(kept, len(cells)))
	}
	if policy == workflows.CheckpointOff && len(cells) > 0 {
		b.Fatalf("off took %d checkpoints", len(cells))
	}
	return r
}

// reportCost reports the medians of the runs each way and the cost of auto.
func reportCost(b *testing.B, off, auto []costRun) {
	took := func(rs []costRun) float64 {
		var ds []time.Duration
		for _, r := range rs {
			ds = append(ds, r.took)
		}
		return median(ds).Seconds()
	}
	o, a := took(off), took(auto)
	b.ReportMetric(o, "off-s")
	b.ReportMetric(a, "auto-s")
	b.ReportMetric(100*(a-o)/o, "auto-cost-%")
	var pauses, added []float64
	var addedSum, autoSum, writing float64
	count := 0
	var offGaps []float64
	for _, r := range off {
		offGaps = append(offGaps, r.medianGap)
	}
	baseGap := medianFloat(offGaps)
	for _, r := range auto {
		count += len(r.pauses)
		pauses = append(pauses, r.pauses...)
		autoSum += r.took.Seconds()
		writing += r.writing
		for _, g := range r.gapsAfter {
			added = append(added, g-baseGap)
			addedSum += g - baseGap
		}
	}
	// The pauses' share of the auto runs: measured inside each run, so it
	// does not move with what other processes take from the machine, as
	// the difference of two runs does.
	b.ReportMetric(100*addedSum/autoSum, "pause-share-%")
	// The forked children's time writing beside the cells, per run: what
	// competes with the cells for the processors.
	b.ReportMetric(writing/float64(len(auto)), "fork-write-s")
	b.ReportMetric(float64(count)/float64(len(auto)), "checkpoints")
	if len(pauses) > 0 {
		b.ReportMetric(1000*medianFloat(pauses), "kernel-pause-ms")
		b.ReportMetric(1000*maxFloat(pauses), "kernel-pause-max-ms")
	}
	if len(added) > 0 {
		b.ReportMetric(1000*medianFloat(added), "added-gap-ms")
		b.ReportMetric(1000*maxFloat(added), "added-gap-max-ms")
	}
}

// checkpointLine is what the runner says in the log when a checkpoint is
// complete.
var checkpointLine = regexp.MustCompile(`checkpoint after cell (\d+): .*\((\w+), paused the kernel ([0-9.]+)s\)`)

type checkpointSeen struct {
	cell  int
	pause float64
}

// checkpointLines reads the checkpoints a run took from its log: every
// one, where the run's result keeps only the last few.
func checkpointLines(b *testing.B, svc *jobs.Service, jobID string) []checkpointSeen {
	var out []checkpointSeen
	for _, l := range stderrLines(b, svc, jobID) {
		if m := checkpointLine.FindStringSubmatch(l.Text); m != nil {
			cell, _ := strconv.Atoi(m[1])
			pause, _ := strconv.ParseFloat(m[3], 64)
			out = append(out, checkpointSeen{cell, pause})
		}
	}
	return out
}

// stderrLines reads a job's whole stderr log, every attempt, page by page.
func stderrLines(b *testing.B, svc *jobs.Service, jobID string) []logstore.Line {
	var out []logstore.Line
	cursor := ""
	for {
		page, err := svc.Logs(context.Background(), jobs.LogsRequest{JobID: jobID, Cursor: cursor, Stream: "stderr", Limit: jobs.MaxLogLines})
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, page.Lines...)
		if len(page.Lines) == 0 || page.NextCursor == "" || page.NextCursor == cursor {
			return out
		}
		cursor = page.NextCursor
	}
}

// cellGaps returns, for each code cell of an executed notebook but the
// last, the time from its end to the next code cell's start (papermill's
// metadata), by the cell's index in the input notebook: what the runner
// did between the two cells, a checkpoint's pause included. The output
// has the injected parameters cell after the parameters cell, which has
// no input index.
func cellGaps(output string) (map[int]float64, error) {
	nb, err := notebook.Load(output)
	if err != nil {
		return nil, err
	}
	type span struct {
		input      int
		start, end time.Time
	}
	var spans []span
	input := 0
	for _, c := range nb.Cells {
		injected := false
		for _, t := range c.Tags {
			injected = injected || t == "injected-parameters"
		}
		idx := input
		if injected {
			idx = -1
		} else {
			input++
		}
		if c.Type != notebook.CellCode || c.Papermill == nil {
			continue
		}
		s, err1 := parseNaiveUTC(c.Papermill.StartTime)
		e, err2 := parseNaiveUTC(c.Papermill.EndTime)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("cell %d: times %q %q", idx, c.Papermill.StartTime, c.Papermill.EndTime)
		}
		spans = append(spans, span{idx, s, e})
	}
	gaps := map[int]float64{}
	for i := 0; i+1 < len(spans); i++ {
		if spans[i].input >= 0 {
			gaps[spans[i].input] = spans[i+1].start.Sub(spans[i].end).Seconds()
		}
	}
	return gaps, nil
}

// parseNaiveUTC reads papermill's timestamps: ISO 8601 without a zone, UTC.
func parseNaiveUTC(s string) (time.Time, error) {
	return time.Parse("2006-01-02T15:04:05.999999", s)
}

func medianFloat(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func maxFloat(xs []float64) float64 {
	m := 0.0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// calibrateSteps finds how many steps of the notebook's compute cell take
// seconds on this machine: it runs the notebook's setup cell (its second)
// with a small namespace in the kernels' Python and times 2,000 steps.
func calibrateSteps(b *testing.B, nb string, seconds float64) int {
	raw, err := os.ReadFile(nb)
	if err != nil {
		b.Fatal(err)
	}
	var doc struct {
		Cells []struct {
			Source json.RawMessage `json:"source"`
		} `json:"cells"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil || len(doc.Cells) < 2 {
		b.Fatalf("%s: %v", nb, err)
	}
	var setup string
	if err := json.Unmarshal(doc.Cells[1].Source, &setup); err != nil {
		b.Fatalf("%s: the setup cell's source: %v", nb, err)
	}
	const probe = 2000
	script := fmt.Sprintf("size_mb = 200\ncells = 1\nsteps = %d\n%s\nimport time\nt = time.perf_counter()\nwork(1)\nprint(time.perf_counter() - t)\n", probe, setup)
	out, err := exec.Command(executor.DefaultPython, "-c", script).Output()
	if err != nil {
		b.Fatalf("calibrating: %v", err)
	}
	took, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil || took <= 0 {
		b.Fatalf("calibrating: %q", out)
	}
	return int(probe * seconds / took)
}
