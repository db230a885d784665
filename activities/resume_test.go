package activities_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"millrace/internal/jobs"
	"millrace/internal/notebook"
	"millrace/internal/runopts"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// markCell defines mark for the resume notebooks: mark(i), at the end of
// cell i, appends "i pid time" to ran.log in the kernel's working folder,
// so the log shows which cells ran, in which kernel, and when.
const markCell = `import os, time, hashlib
def mark(i):
    with open("ran.log", "a") as f:
        f.write("%d %d %.3f\n" % (i, os.getpid(), time.time()))
`

// ranCell is one line of ran.log.
type ranCell struct {
	cell, pid int
	at        float64
}

// readRan reads ran.log in dir.
func readRan(t *testing.T, dir string) []ranCell {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "ran.log"))
	if err != nil {
		t.Fatal(err)
	}
	var out []ranCell
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("ran.log line %q", line)
		}
		c, _ := strconv.Atoi(f[0])
		p, _ := strconv.Atoi(f[1])
		at, _ := strconv.ParseFloat(f[2], 64)
		out = append(out, ranCell{c, p, at})
	}
	return out
}

// runsOf counts how often each cell ran.
func runsOf(ran []ranCell) map[int]int {
	n := map[int]int{}
	for _, r := range ran {
		n[r.cell]++
	}
	return n
}

// TestResumeAfterWorkerKilled is the headline: a worker is SIGKILLed in
// cell 8 of 10, after cell 2 built a 200 MB array and slept. Attempt 2,
// on another worker, restores the checkpoint taken after cell 7 and runs
// cells 8 and 9 only; cell 9 checks the array's checksum.
func TestResumeAfterWorkerKilled(t *testing.T) {
	root := t.TempDir()
	nb := testenv.WriteNotebook(t, root, "train.ipynb",
		testenv.ParametersPrefix+"pause = 20",
		markCell+"mark(1)",
		"import numpy as np\narr = np.random.default_rng(7).random(25_000_000)  # 200 MB\nbefore = hashlib.sha256(arr.tobytes()).hexdigest()\ntime.sleep(pause)\nmark(2)",
		"mark(3)", "mark(4)", "mark(5)", "mark(6)",
		"def scale(v):\n    return v * 2\nmark(7)",
		"mark(8)\nwhile not os.path.exists('go'):\n    time.sleep(0.1)",
		"assert hashlib.sha256(arr.tobytes()).hexdigest() == before, 'the array changed'\nassert scale(21) == 42\ntime.sleep(2)\nmark(9)",
	)
	cfg := server.Config(t)
	svc := server.Service(t, cfg, root)
	worker, exited := startWorkerProcess(t, cfg)
	run := start(t, svc, jobs.StartRequest{Path: nb, HeartbeatTimeout: 6 * time.Second, Options: runopts.Options{
		Parameters: map[string]any{"pause": 20}, Checkpoint: workflows.CheckpointEveryCell}})

	// Kill once cell 8 runs and the checkpoint after cell 7 is in Temporal.
	testenv.Eventually(t, 2*time.Minute, "cell 8 running with the checkpoint after cell 7 recorded", func() bool {
		st, err := svc.Status(context.Background(), run.JobID)
		if err != nil {
			t.Fatal(err)
		}
		if st.Ended() {
			t.Fatalf("the run ended before the kill: %s %+v", st.Status, st.Error)
		}
		return st.Checkpoint != nil && st.Checkpoint.Cell == 7
	})
	if err := worker.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	if err := os.WriteFile(filepath.Join(root, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	server.StartWorker(t, cfg)

	sawResumed := ""
	testenv.Eventually(t, 2*time.Minute, "the run to end", func() bool {
		st, err := svc.Status(context.Background(), run.JobID)
		if err != nil {
			t.Fatal(err)
		}
		if st.Progress.ResumedAt > 0 {
			sawResumed = st.Progress.String()
		}
		return st.Ended()
	})
	st := waitEnd(t, svc, run.JobID, time.Second)
	if st.Status != workflows.StatusSucceeded || st.Attempt != 2 {
		t.Fatalf("status %s on attempt %d (%+v), warnings %q; want SUCCEEDED on attempt 2", st.Status, st.Attempt, st.Error, st.Warnings)
	}
	ran := readRan(t, root)
	n := runsOf(ran)
	for cell := 1; cell <= 7; cell++ {
		if n[cell] != 1 {
			t.Errorf("cell %d ran %d times; want once (attempt 2 resumes after cell 7): %v", cell, n[cell], ran)
		}
	}
	if n[8] != 2 || n[9] != 1 {
		t.Errorf("cell 8 ran %d times, cell 9 %d; want 2 and 1: %v", n[8], n[9], ran)
	}
	if last := ran[len(ran)-1]; last.cell != 9 || last.pid == ran[0].pid {
		t.Errorf("cell 9 ran in the first kernel (pid %d)", last.pid)
	}
	var resumed []int
	for _, a := range st.Attempts {
		resumed = append(resumed, a.ResumedFromCell)
	}
	if len(resumed) != 2 || resumed[1] != 8 {
		t.Errorf("attempts' resumed_from_cell %v; want attempt 2 resumed from cell 8", resumed)
	}
	if !strings.Contains(sawResumed, "resumed at cell") {
		t.Errorf("the progress line never said where attempt 2 resumed (last: %q)", sawResumed)
	}
	if st.Checkpoint == nil || st.Checkpoint.Cell != 9 || st.Checkpoint.Attempt != 2 {
		t.Errorf("last checkpoint %+v; want cell 9 of attempt 2", st.Checkpoint)
	}
	out, err := notebook.Load(st.OutputPath)
	if err != nil {
		t.Fatal(err)
	}
	restored := 0
	for i, c := range out.Cells {
		var md struct {
			Millrace struct {
				Restored bool `json:"restored"`
			} `json:"millrace"`
		}
		_ = json.Unmarshal(c.Metadata, &md)
		if md.Millrace.Restored {
			restored++
		}
		if c.Papermill == nil || c.Papermill.Status != notebook.StatusCompleted {
			t.Errorf("output cell %d: papermill status %+v; want completed", i, c.Papermill)
		}
	}
	// Cells 0-7 and the injected parameters cell were restored.
	if restored != 9 {
		t.Errorf("%d cells marked restored; want 9", restored)
	}
	server.ReplayHistory(t, run.JobID, "notebook_run_resumed")
}

// diesOnce is a cell that kills its kernel the first time it runs: a
// kernel lost mid-run, which the retry policy retries.
const diesOnce = "if not os.path.exists('died'):\n    open('died', 'w').close()\n    os._exit(1)\nmark(%d)"

// TestResumeFromPartialFallsBack has a namespace holding a socket: the
// checkpoints are partial and name it, and the attempt after a dead
// kernel runs from the first cell, saying why.
func TestResumeFromPartialFallsBack(t *testing.T) {
	root := t.TempDir()
	nb := testenv.WriteNotebook(t, root, "partial.ipynb",
		markCell+"mark(0)",
		"import socket\nconn = socket.socket()\nx = 41\nmark(1)",
		fmt.Sprintf(diesOnce, 2),
		"assert x == 41\nmark(3)",
	)
	_, svc := setup(t, root)
	run := start(t, svc, jobs.StartRequest{Path: nb, Options: runopts.Options{Checkpoint: workflows.CheckpointEveryCell}})
	st := waitEnd(t, svc, run.JobID, 2*time.Minute)
	if st.Status != workflows.StatusSucceeded || st.Attempt != 2 {
		t.Fatalf("status %s on attempt %d (%+v); want SUCCEEDED on attempt 2", st.Status, st.Attempt, st.Error)
	}
	if n := runsOf(readRan(t, root)); n[0] != 2 || n[1] != 2 {
		t.Errorf("cells 0 and 1 ran %d and %d times; want twice (no resume from a partial checkpoint)", n[0], n[1])
	}
	if !hasWarning(st.Warnings, "not resumed from the checkpoint after cell 1", "conn") {
		t.Errorf("warnings %q do not say why the run did not resume", st.Warnings)
	}
	if cp := st.Checkpoint; cp == nil || !cp.Partial || len(cp.Skipped) != 1 || cp.Skipped[0] != "conn" {
		t.Errorf("last checkpoint %+v; want a partial one that left out conn", cp)
	}

	// Resuming from it is a choice: refused without allow_partial, naming
	// the name left out; with it, cell 3 runs on x restored, conn gone.
	ctx := context.Background()
	if _, err := svc.RerunRunWith(ctx, run.JobID, jobs.RerunOptions{FromCell: 3}); err == nil || !strings.Contains(err.Error(), "conn") || !strings.Contains(err.Error(), "allow_partial") {
		t.Fatalf("rerun from cell 3 of a partial checkpoint: %v; want it refused, naming conn and allow_partial", err)
	}
	rerun, err := svc.RerunRunWith(ctx, run.JobID, jobs.RerunOptions{FromCell: 3, AllowPartial: true})
	if err != nil {
		t.Fatal(err)
	}
	st = waitEnd(t, svc, rerun.JobID, 2*time.Minute)
	if st.Status != workflows.StatusSucceeded || st.ResumedFrom == nil || st.ResumedFrom.CheckpointCell != 2 {
		t.Fatalf("rerun %s %+v, resumed from %+v; want SUCCEEDED from the checkpoint after cell 2", st.Status, st.Error, st.ResumedFrom)
	}
	if n := runsOf(readRan(t, root)); n[0] != 2 || n[1] != 2 || n[2] != 1 || n[3] != 2 {
		t.Errorf("cells ran %v times; want cells 0-2 not run by the rerun and cell 3 once more", n)
	}
}

// TestResumeRefusesTamperedCheckpoint has a cell change the checkpoint
// taken before it, then kill its kernel: the next attempt must not load
// the changed file (its hash is not the one Temporal holds) and runs from
// the first cell, saying why.
func TestResumeRefusesTamperedCheckpoint(t *testing.T) {
	root := t.TempDir()
	cfg := server.Config(t)
	nb := testenv.WriteNotebook(t, root, "tampered.ipynb",
		markCell+"mark(0)",
		"x = 41\nmark(1)",
		// Wait for the checkpoint after cell 1 (the fork writes it while
		// this cell runs), flip a byte in its middle, and kill the kernel.
		fmt.Sprintf(`import glob, json
if not os.path.exists('died'):
    ckpt = None
    for _ in range(600):
        found = glob.glob(%q + '/runs/*/attempt-1/checkpoints/cell-1.ckpt.json')
        if found and json.load(open(found[0])).get('state') == 'complete':
            ckpt = found[0][:-len('.json')]
            break
        time.sleep(0.1)
    with open(ckpt, 'r+b') as f:
        middle = os.path.getsize(ckpt) // 2
        f.seek(middle)
        b = f.read(1)
        f.seek(middle)
        f.write(bytes([b[0] ^ 0xFF]))
    open('died', 'w').close()
    os._exit(1)
mark(2)`, cfg.DataDir),
		"assert x == 41\nmark(3)",
	)
	server.StartWorker(t, cfg)
	svc := server.Service(t, cfg, root)
	run := start(t, svc, jobs.StartRequest{Path: nb, Options: runopts.Options{Checkpoint: workflows.CheckpointEveryCell}})
	st := waitEnd(t, svc, run.JobID, 2*time.Minute)
	if st.Status != workflows.StatusSucceeded || st.Attempt != 2 {
		t.Fatalf("status %s on attempt %d (%+v); want SUCCEEDED on attempt 2", st.Status, st.Attempt, st.Error)
	}
	if n := runsOf(readRan(t, root)); n[0] != 2 || n[1] != 2 {
		t.Errorf("cells 0 and 1 ran %d and %d times; want twice (the changed checkpoint refused)", n[0], n[1])
	}
	if !hasWarning(st.Warnings, "not resumed from the checkpoint after cell 1", "sha256") {
		t.Errorf("warnings %q do not say the checkpoint was refused for its hash", st.Warnings)
	}
}

// hasWarning reports whether one warning holds every part.
func hasWarning(warnings []string, parts ...string) bool {
	for _, w := range warnings {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(w, p)
		}
		if all {
			return true
		}
	}
	return false
}
