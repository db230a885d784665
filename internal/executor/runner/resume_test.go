package runner

// These tests run the runner with --checkpoint-dir and --resume-checkpoint
// against real kernels: the checkpoints it keeps and records, and the runs
// that resume from them (or refuse to, and why).

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"millrace/internal/failure"
)

// ckptFlags are the flags of a run that checkpoints into dir, with the
// bootstrap file the executor writes beside the runner.
func ckptFlags(t *testing.T, dir string, more ...string) []string {
	t.Helper()
	if err := checkCheckpointPython(); err != nil {
		t.Fatal(err)
	}
	boot := filepath.Join(t.TempDir(), "bootstrap.py")
	if err := os.WriteFile(boot, []byte(CheckpointBootstrap()), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"--checkpoint-bootstrap", boot}
	if dir != "" {
		args = append(args, "--checkpoint-dir", dir)
	}
	return append(args, more...)
}

// ckptDir is a fresh checkpoint folder, 0700 as the worker makes it.
func ckptDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "checkpoints")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

func resumeFlags(c Checkpoint, more ...string) []string {
	return append([]string{"--resume-checkpoint", c.Path, "--resume-sha256", c.SHA256, "--resume-cell", strconv.Itoa(c.Cell)}, more...)
}

// savedCells lists the cells the runner said it checkpointed, in order.
func savedCells(stderr string) []int {
	var cells []int
	for _, m := range regexp.MustCompile(`(?m)^\[millrace-runner\] checkpoint after cell (\d+): `).FindAllStringSubmatch(stderr, -1) {
		n, _ := strconv.Atoi(m[1])
		cells = append(cells, n)
	}
	return cells
}

// dirFiles lists a folder's file names, sorted.
func dirFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// resumedNB is the part of an output notebook the resume tests look at.
type resumedNB struct {
	Metadata struct {
		Millrace struct {
			Resumed *struct {
				Cell       int    `json:"cell"`
				FirstCell  int    `json:"first_cell"`
				Checkpoint string `json:"checkpoint"`
				SHA256     string `json:"sha256"`
			} `json:"resumed"`
		} `json:"millrace"`
	} `json:"metadata"`
	Cells []struct {
		Source   multiline `json:"source"`
		Metadata struct {
			Millrace struct {
				Restored bool `json:"restored"`
			} `json:"millrace"`
			Papermill struct {
				Status string `json:"status"`
			} `json:"papermill"`
		} `json:"metadata"`
		Outputs []struct {
			Text multiline `json:"text"`
		} `json:"outputs"`
	} `json:"cells"`
}

func readResumed(t *testing.T, path string) resumedNB {
	t.Helper()
	var nb resumedNB
	b, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(b, &nb)
	}
	if err != nil {
		t.Fatalf("output notebook: %v", err)
	}
	return nb
}

func (nb resumedNB) text(i int) string {
	var b strings.Builder
	for _, o := range nb.Cells[i].Outputs {
		b.WriteString(string(o.Text))
	}
	return b.String()
}

func wantWarning(t *testing.T, o *outcome, want string) {
	t.Helper()
	for _, w := range o.result.Warnings {
		if strings.Contains(w, want) {
			return
		}
	}
	t.Errorf("no warning contains %q; warnings %q", want, o.result.Warnings)
}

func wantResumeOutcome(t *testing.T, dir string, resumed bool, cell int, reason string) {
	t.Helper()
	r, ok, err := ReadResumeOutcome(dir)
	if !ok || err != nil || r.Resumed != resumed || r.Cell != cell || r.FirstCell != cell+1 || !strings.Contains(r.Reason, reason) {
		t.Errorf("resume.json: %+v (ok %v, %v), want resumed %v, cell %d, reason containing %q", r, ok, err, resumed, cell, reason)
	}
}

// resumeNotebook has five code cells, the first tagged parameters. Cell 1
// makes a numpy array, its checksum and a function; cells 1 to 3 append
// their names to a log file (cell 1 takes its path from $RESUME_LOG), which
// shows which cells ran in which run; cell 3 checks the array and the
// function and draws a random number.
func resumeNotebook(t *testing.T, edit func(cells []map[string]any)) string {
	t.Helper()
	cells := []map[string]any{
		codeCell("n = 5", "parameters"),
		codeCell("import hashlib, os, random\nimport numpy as np\nLOG = os.environ['RESUME_LOG']\nrandom.seed(11)\n" +
			"arr = np.random.default_rng(0).random(n * 1000)\nsum1 = hashlib.sha256(arr.tobytes()).hexdigest()\n" +
			"def scale(v):\n    return v * n\nopen(LOG, 'a').write('cell1\\n')\nprint('cell1', len(arr))"),
		codeCell("open(LOG, 'a').write('cell2\\n')\nfirst = random.random()\nprint('cell2')"),
		codeCell("open(LOG, 'a').write('cell3\\n')\n" +
			"print('cell3', hashlib.sha256(arr.tobytes()).hexdigest() == sum1, scale(2), random.random())"),
		codeCell("print('cell4', n)"),
	}
	if edit != nil {
		edit(cells)
	}
	path := filepath.Join(t.TempDir(), "resume.ipynb")
	writeNotebook(t, path, cells...)
	return path
}

func readLog(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

// TestCheckpointsAndResume: every_cell saves after each code cell but the
// injected one, keeps 3, and records the last in latest.json and all kept
// in the result; a run given the checkpoint after cell 2 restores it and
// runs cells 3 and 4 only, with the namespace (array, function, random
// state) as the first run had it. An edited cell before the checkpoint and
// a tampered file are refused: resume_failed when the resume is required,
// a warning and a run from the first cell otherwise.
func TestCheckpointsAndResume(t *testing.T) {
	t.Parallel()
	logEnv := func(t *testing.T) (string, []string) {
		log := filepath.Join(t.TempDir(), "ran.log")
		return log, []string{"RESUME_LOG=" + log}
	}
	log, env := logEnv(t)
	nb := resumeNotebook(t, nil)
	params := map[string]any{"n": 7}
	dir := ckptDir(t)
	first := run(t, invocation{notebook: nb, params: params, env: env, args: ckptFlags(t, dir, "--checkpoint", "every_cell")})
	wantExit(t, first, ExitOK, failure.KindOK)
	if got, want := savedCells(first.stderr), []int{0, 1, 2, 3, 4}; !slices.Equal(got, want) {
		t.Errorf("checkpoints taken after cells %v, want %v (never after the injected parameters)", got, want)
	}
	cs := first.result.Checkpoints
	var cells []int
	for _, c := range cs {
		cells = append(cells, c.Cell)
		sum, size := fileSHA256(t, c.Path)
		if c.SHA256 != sum || c.SizeBytes != size || c.Mode != "fork" || c.Partial || c.SavedAt.IsZero() {
			t.Errorf("checkpoint %+v: the file has sha256 %s size %d; want those, fork mode, not partial, a time", c, sum, size)
		}
	}
	if !slices.Equal(cells, []int{2, 3, 4}) {
		t.Fatalf("result checkpoints are of cells %v, want the 3 latest, [2 3 4]", cells)
	}
	latest, ok, err := ReadLatest(dir)
	if !ok || err != nil || !reflect.DeepEqual(latest, cs[2]) {
		t.Errorf("latest.json %+v (%v, %v), want the result's last checkpoint %+v", latest, ok, err, cs[2])
	}
	wantFiles := []string{"cell-2.ckpt", "cell-2.ckpt.json", "cell-2.ipynb", "cell-3.ckpt", "cell-3.ckpt.json", "cell-3.ipynb",
		"cell-4.ckpt", "cell-4.ckpt.json", "cell-4.ipynb", "latest.json"}
	if got := dirFiles(t, dir); !slices.Equal(got, wantFiles) {
		t.Errorf("checkpoint folder holds %v, want %v", got, wantFiles)
	}
	for _, name := range wantFiles {
		if st, err := os.Stat(filepath.Join(dir, name)); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v (%v), want 0600", name, st.Mode(), err)
		}
	}
	firstDraw := strings.Fields(first.stdout)
	if got := readLog(t, log); !slices.Equal(got, []string{"cell1", "cell2", "cell3"}) {
		t.Fatalf("log after the first run: %v", got)
	}
	ck2 := cs[0]

	t.Run("resume", func(t *testing.T) {
		t.Parallel()
		_, env2 := logEnv(t)
		dir2 := ckptDir(t)
		o := run(t, invocation{notebook: nb, params: params, env: env2, args: ckptFlags(t, dir2, resumeFlags(ck2, "--resume-required", "--checkpoint", "every_cell")...)})
		wantExit(t, o, ExitOK, failure.KindOK)
		// Cells 1 and 2 did not run again: LOG, restored, is still the first
		// run's file, and it gains cell3 alone.
		if got := readLog(t, log); !slices.Equal(got[3:], []string{"cell3"}) {
			t.Errorf("log after the resumed run: %v, want cell3 added alone", got)
		}
		wantResumeOutcome(t, dir2, true, 2, "")
		if o.result.ResumedFromCell == nil || *o.result.ResumedFromCell != 3 || o.result.CellsRestored != 4 || o.result.CellsExecuted != 2 {
			t.Errorf("result: resumed from %v, %d restored, %d executed; want 3, 4 (parameters, injected, 1, 2), 2",
				o.result.ResumedFromCell, o.result.CellsRestored, o.result.CellsExecuted)
		}
		out := readResumed(t, o.output)
		if r := out.Metadata.Millrace.Resumed; r == nil || r.Cell != 2 || r.FirstCell != 3 || r.Checkpoint != ck2.Path || r.SHA256 != ck2.SHA256 {
			t.Errorf("metadata.millrace.resumed = %+v", r)
		}
		for i, c := range out.Cells {
			if want := i <= 3; c.Metadata.Millrace.Restored != want || c.Metadata.Papermill.Status != "completed" {
				t.Errorf("cell %d: restored %v status %q, want restored %v, completed", i, c.Metadata.Millrace.Restored, c.Metadata.Papermill.Status, want)
			}
		}
		if got := out.text(2); !strings.HasPrefix(got, "cell1 7000") {
			t.Errorf("restored output of cell 1: %q, want the first run's", got)
		}
		// cell3 True 14 <draw>: the array and its checksum, the function with
		// the injected n, and the random state as the first run had them.
		got := strings.Fields(out.text(4))
		if len(got) != 4 || got[1] != "True" || got[2] != "14" || !slices.Contains(firstDraw, got[3]) {
			t.Errorf("cell 3 after the resume printed %q; the first run printed %q", got, firstDraw)
		}
		if got := savedCells(o.stderr); !slices.Equal(got, []int{3, 4}) {
			t.Errorf("the resumed run checkpointed after cells %v, want [3 4]", got)
		}
	})

	t.Run("edited before the checkpoint", func(t *testing.T) {
		t.Parallel()
		edited := resumeNotebook(t, func(cells []map[string]any) {
			cells[1]["source"] = cells[1]["source"].(string) + "\n# edited"
		})
		dir2 := ckptDir(t)
		o := run(t, invocation{notebook: edited, params: params, args: ckptFlags(t, dir2, resumeFlags(ck2, "--resume-required")...)})
		const why = "cell 1 changed since the checkpoint was taken; rerun from cell 1 or earlier, or without from_cell"
		wantExit(t, o, ExitSetup, failure.KindResumeFailed)
		if !strings.Contains(o.result.Message, why) {
			t.Errorf("message %q lacks %q", o.result.Message, why)
		}
		wantResumeOutcome(t, dir2, false, 2, why)
		if o.result.CellsExecuted != 0 {
			t.Errorf("%d cells ran in a run whose required resume failed", o.result.CellsExecuted)
		}
	})

	t.Run("other parameters", func(t *testing.T) {
		t.Parallel()
		dir2 := ckptDir(t)
		o := run(t, invocation{notebook: nb, params: map[string]any{"n": 8}, args: ckptFlags(t, dir2, resumeFlags(ck2, "--resume-required")...)})
		const why = "the parameters differ from those of the run that took the checkpoint"
		wantExit(t, o, ExitSetup, failure.KindResumeFailed)
		wantResumeOutcome(t, dir2, false, 2, why)
	})

	// A copy of the checkpoint with one bit flipped, beside its snapshot and
	// sidecar.
	tamperedDir := t.TempDir()
	for _, name := range []string{"cell-2.ckpt", "cell-2.ckpt.json", "cell-2.ipynb"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if name == "cell-2.ckpt" {
			b[len(b)/2] ^= 1
		}
		if err := os.WriteFile(filepath.Join(tamperedDir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tampered := ck2
	tampered.Path = filepath.Join(tamperedDir, "cell-2.ckpt")
	const refusal = "not the recorded %s"
	for _, required := range []bool{true, false} {
		t.Run(fmt.Sprintf("tampered required=%v", required), func(t *testing.T) {
			t.Parallel()
			log2, env2 := logEnv(t)
			dir2 := ckptDir(t)
			more := []string{}
			if required {
				more = append(more, "--resume-required")
			}
			o := run(t, invocation{notebook: nb, params: params, env: env2, args: ckptFlags(t, dir2, resumeFlags(tampered, more...)...)})
			why := fmt.Sprintf(refusal, ck2.SHA256)
			wantResumeOutcome(t, dir2, false, 2, why)
			if required {
				wantExit(t, o, ExitSetup, failure.KindResumeFailed)
				if !strings.Contains(o.result.Message, why) {
					t.Errorf("message %q lacks %q", o.result.Message, why)
				}
				return
			}
			wantExit(t, o, ExitOK, failure.KindOK)
			wantWarning(t, o, "not resumed from the checkpoint after cell 2: ")
			wantWarning(t, o, "; the run started from its first cell")
			if o.result.ResumedFromCell != nil || o.result.CellsExecuted != 6 {
				t.Errorf("fallback run: resumed from %v, %d cells executed; want none, all 6", o.result.ResumedFromCell, o.result.CellsExecuted)
			}
			if got := readLog(t, log2); !slices.Equal(got, []string{"cell1", "cell2", "cell3"}) {
				t.Errorf("the fallback run's log: %v, want every cell once", got)
			}
		})
	}
}

// TestCheckpointPartial: a socket cannot be saved, so the checkpoint is
// partial and names it; a resume from it falls back (with the reason) or,
// when required, fails, unless partial checkpoints are allowed.
func TestCheckpointPartial(t *testing.T) {
	t.Parallel()
	nb := filepath.Join(t.TempDir(), "socket.ipynb")
	writeNotebook(t, nb,
		codeCell("import socket\nsock = socket.socket()\nx = 41"),
		codeCell("x += 1\nprint('x', x)"),
	)
	dir := ckptDir(t)
	first := run(t, invocation{notebook: nb, args: ckptFlags(t, dir, "--checkpoint", "every_cell")})
	wantExit(t, first, ExitOK, failure.KindOK)
	cs := first.result.Checkpoints
	if len(cs) != 2 || !cs[0].Partial || !slices.Equal(cs[0].Skipped, []string{"sock"}) || cs[0].SkippedCount != 1 {
		t.Fatalf("checkpoints %+v, want two, the first partial with sock skipped", cs)
	}
	const why = "the checkpoint after cell 0 left out names sock (they could not be saved); pass allow_partial to resume anyway"
	for _, tc := range []struct {
		name string
		more []string
		exit int
		kind failure.Kind
	}{
		{"fallback", nil, ExitOK, failure.KindOK},
		{"required", []string{"--resume-required"}, ExitSetup, failure.KindResumeFailed},
		{"allowed", []string{"--allow-partial", "--resume-required"}, ExitOK, failure.KindOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir2 := ckptDir(t)
			o := run(t, invocation{notebook: nb, args: ckptFlags(t, dir2, resumeFlags(cs[0], tc.more...)...)})
			wantExit(t, o, tc.exit, tc.kind)
			switch tc.name {
			case "fallback":
				wantResumeOutcome(t, dir2, false, 0, why)
				wantWarning(t, o, "not resumed from the checkpoint after cell 0: "+why+"; the run started from its first cell")
				wantLines(t, o.stdout, "x 42")
			case "required":
				wantResumeOutcome(t, dir2, false, 0, why)
				if !strings.Contains(o.result.Message, why) {
					t.Errorf("message %q lacks %q", o.result.Message, why)
				}
			case "allowed":
				wantResumeOutcome(t, dir2, true, 0, "")
				wantLines(t, o.stdout, "x 42") // x from the checkpoint, sock gone
			}
		})
	}
}

// TestCheckpointSizeCap: a namespace over the cap is not saved, the run
// says so once and succeeds; no checkpoint file is left.
// Both ways a save runs: forked (the child's sidecar says it passed the
// cap) and inline (the save raises), which a stand-in for a torch with CUDA
// initialised forces.
func TestCheckpointSizeCap(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"fork", "inline"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			testSizeCap(t, mode)
		})
	}
}

func testSizeCap(t *testing.T, mode string) {
	nb := filepath.Join(t.TempDir(), "big.ipynb")
	first := "import numpy as np\nbig = np.ones(1 << 20)"
	if mode == "inline" {
		first += "\nimport sys, types\n_t = types.ModuleType('torch')\n_t.get_rng_state = lambda: b'state'\n" +
			"_t.cuda = types.SimpleNamespace(is_initialized=lambda: True, is_available=lambda: False)\n" +
			"sys.modules['torch'] = _t\ndel _t"
	}
	writeNotebook(t, nb,
		codeCell(first),
		codeCell("big2 = big * 2"),
		codeCell("print('done', big2.sum())"),
	)
	dir := ckptDir(t)
	o := run(t, invocation{notebook: nb, args: ckptFlags(t, dir, "--checkpoint", "every_cell", "--checkpoint-max-bytes", "65536")})
	wantExit(t, o, ExitOK, failure.KindOK)
	var capped []string
	for _, w := range o.result.Warnings {
		if strings.HasPrefix(w, "checkpoints stopped after cell") {
			capped = append(capped, w)
		}
	}
	const want = "checkpoints stopped after cell 0: the namespace needs more than 64 KiB, the cap (checkpoint_max_size); raise the cap or del large variables"
	if len(capped) != 1 || !strings.HasPrefix(capped[0], want) {
		t.Errorf("size warnings %q, want one starting %q", capped, want)
	}
	if len(o.result.Checkpoints) != 0 {
		t.Errorf("checkpoints %+v kept over the cap", o.result.Checkpoints)
	}
	if got := dirFiles(t, dir); len(got) != 0 {
		t.Errorf("checkpoint folder holds %v, want nothing", got)
	}
}

// TestCheckpointAutoPolicy: auto takes no checkpoint while cells have run
// for less than the minimum interval (2 s here, by the tests-only flag),
// takes one after the cell that passes it, and none right after that.
func TestCheckpointAutoPolicy(t *testing.T) {
	t.Parallel()
	nb := filepath.Join(t.TempDir(), "auto.ipynb")
	writeNotebook(t, nb,
		codeCell("a = 1"),
		codeCell("b = 2"),
		codeCell("import time\ntime.sleep(2.5)"),
		codeCell("c = 3"),
	)
	dir := ckptDir(t)
	o := run(t, invocation{notebook: nb, args: ckptFlags(t, dir, "--checkpoint-min-interval", "2")})
	wantExit(t, o, ExitOK, failure.KindOK)
	if got := savedCells(o.stderr); !slices.Equal(got, []int{2}) {
		t.Errorf("auto checkpointed after cells %v, want [2]", got)
	}
	if l, ok, err := ReadLatest(dir); !ok || err != nil || l.Cell != 2 {
		t.Errorf("latest.json: %+v (%v, %v), want cell 2", l, ok, err)
	}
}

// TestCancelDuringForkedSave: SIGTERM while a forked save is still
// writing (its pickling blocks on a file that never appears) stops the
// child with the kernel and leaves neither temporary nor partial files.
func TestCancelDuringForkedSave(t *testing.T) {
	t.Parallel()
	marker := newMarker(t)
	nb := filepath.Join(t.TempDir(), "gate.ipynb")
	writeNotebook(t, nb,
		codeCell(gateCell+fmt.Sprintf("gate = Gate(%s)", pyStr(filepath.Join(t.TempDir(), "never")))),
		codeCell("import time\ntime.sleep(60)"),
	)
	dir := ckptDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd, output, resultFile := command(t, ctx, invocation{
		notebook: nb, env: []string{markerVar + "=" + marker}, args: ckptFlags(t, dir, "--checkpoint", "every_cell"),
	})
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(time.Minute)
	for {
		nbOut, err := readNotebook(output)
		tmp := false
		for _, name := range dirFiles(t, dir) {
			tmp = tmp || strings.HasSuffix(name, ".tmp")
		}
		if err == nil && len(nbOut.Cells) == 2 && nbOut.Cells[1].Metadata.Papermill.Status == "running" && tmp {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("runner ended early: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the save never started writing while cell 1 ran; folder %v\n%s", dirFiles(t, dir), stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var err error
	select {
	case err = <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("runner still running 15 s after SIGTERM")
	}
	o := &outcome{stdout: stdout.String(), stderr: stderr.String(), output: output}
	o.exit = exitCode(t, err, o)
	o.load(t, resultFile)
	wantExit(t, o, ExitSIGTERM, failure.KindCanceled)
	wantNoMarkedProcesses(t, marker) // the forked child carries the marker too
	if got := dirFiles(t, dir); len(got) != 0 {
		t.Errorf("checkpoint folder holds %v after the cancel, want nothing", got)
	}
}
