package runner

// These tests drive real IPython kernels (testdata/kernel_driver.py, on
// jupyter_client) through the checkpoint library as the runner will: the
// bootstrap as a silent execute_request, then calls as user expressions
// between cells. A restore always happens in a new kernel process.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// step is one kernel_driver.py step.
type step struct {
	Op        string `json:"op"`
	Code      string `json:"code,omitempty"`
	Expr      string `json:"expr,omitempty"`
	Bootstrap *bool  `json:"bootstrap,omitempty"`
	Cwd       string `json:"cwd,omitempty"`
}

// stepResult is what the driver reports for a step.
type stepResult struct {
	Op     string          `json:"op"`
	OK     bool            `json:"ok"`
	Stdout string          `json:"stdout"`
	Error  string          `json:"error"`
	Value  json.RawMessage `json:"value"`
	Wall   float64         `json:"wall"`
}

// ckptSummary is the JSON the library returns from save, poll and wait.
type ckptSummary struct {
	Path              string            `json:"path"`
	Cell              int               `json:"cell"`
	State             string            `json:"state"`
	Mode              string            `json:"mode"`
	RequestedMode     string            `json:"requested_mode"`
	Fallback          *string           `json:"fallback"`
	SizeBytes         int64             `json:"size_bytes"`
	SHA256            string            `json:"sha256"`
	PauseSeconds      float64           `json:"pause_seconds"`
	TotalSeconds      float64           `json:"total_seconds"`
	Saved             []string          `json:"saved"`
	Modules           map[string]string `json:"modules"`
	Skipped           map[string]string `json:"skipped"`
	Partial           bool              `json:"partial"`
	Probe             string            `json:"probe"`
	Error             string            `json:"error"`
	InFlight          string            `json:"in_flight"`
	ChildPrivateBytes int64             `json:"child_private_bytes"`
}

// restoreSummary is the JSON restore returns.
type restoreSummary struct {
	Cell          int               `json:"cell"`
	Restored      []string          `json:"restored"`
	Modules       map[string]string `json:"modules"`
	SkippedAtSave map[string]string `json:"skipped_at_save"`
	Random        []string          `json:"random"`
	Seconds       float64           `json:"seconds"`
}

var checkCheckpointPython = sync.OnceValue(func() error {
	out, err := exec.Command(DefaultPython, "-c", "import jupyter_client, ipykernel, dill, numpy").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s cannot import jupyter_client/ipykernel/dill/numpy (apt-get install python3-ipykernel python3-dill python3-numpy): %v\n%s", DefaultPython, err, out)
	}
	return nil
})

// drive runs steps in one kernel_driver.py process and returns its results,
// one per step; a step the driver could not run at all fails the test.
func drive(tb testing.TB, steps ...step) []stepResult {
	tb.Helper()
	if err := checkCheckpointPython(); err != nil {
		tb.Fatal(err)
	}
	boot := filepath.Join(tb.TempDir(), "bootstrap.py")
	if err := os.WriteFile(boot, []byte(CheckpointBootstrap()), 0o644); err != nil {
		tb.Fatal(err)
	}
	in, err := json.Marshal(steps)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, DefaultPython, filepath.Join("testdata", "kernel_driver.py"), boot)
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var results []stepResult
	if err := json.Unmarshal(stdout.Bytes(), &results); err != nil || runErr != nil || len(results) != len(steps) {
		tb.Fatalf("kernel driver: %v; %d of %d steps ran (%v)\nstdout: %s\nstderr: %s", runErr, len(results), len(steps), err, stdout.String(), stderr.String())
	}
	return results
}

func call(expr string) step   { return step{Op: "call", Expr: expr} }
func nbCell(code string) step { return step{Op: "run", Code: code} }
func startKernel() step       { return step{Op: "start"} }

// ck builds a call of the library: ck("save", "'/p'", "1") is
// __import__("millrace_checkpoint").save('/p', 1).
func ck(fn string, args ...string) step {
	return call(fmt.Sprintf("__import__(%q).%s(%s)", CheckpointModule, fn, strings.Join(args, ", ")))
}

func pyStr(s string) string { b, _ := json.Marshal(s); return string(b) }

// value decodes a call's value, failing the test when the call failed.
func value[T any](t *testing.T, r stepResult, what string) T {
	t.Helper()
	var v T
	if !r.OK {
		t.Fatalf("%s: %s", what, r.Error)
	}
	if err := json.Unmarshal(r.Value, &v); err != nil {
		t.Fatalf("%s: %v in %s", what, err, r.Value)
	}
	return v
}

// ok fails the test when a run step failed.
func ok(t *testing.T, r stepResult, what string) string {
	t.Helper()
	if !r.OK {
		t.Fatalf("%s: %s", what, r.Error)
	}
	return r.Stdout
}

// refused asserts that a call failed with an error that contains want.
func refused(t *testing.T, r stepResult, what, want string) {
	t.Helper()
	if r.OK || !strings.Contains(r.Error, want) {
		t.Errorf("%s: got ok=%v error %q, want an error containing %q", what, r.OK, r.Error, want)
	}
}

// fileSHA256 is the checkpoint's hash as Go computes it.
func fileSHA256(t *testing.T, path string) (string, int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), int64(len(b))
}

// notebookCells define every kind of name a checkpoint must carry, and two it
// cannot pickle (a socket and a generator).
const notebookCells = `import random, socket
import numpy as np
import json as j
x = 42
big = 2**70
arr = np.arange(100000, dtype=np.float64)
random.seed(7); np.random.seed(3)
m = np.random.rand(300, 300)
def f(a):
    return a * x
class C:
    def __init__(self, v):
        self.v = v
    def twice(self):
        return 2 * self.v
c = C(5)
sq = lambda v: v * v
_mine = "kept"
sock = socket.socket()
gen = (i for i in range(3))`

// probeCell prints what the restored kernel must reproduce, random draws
// included: run right after the saves in the first kernel, and right after
// a restore in a new one, it must print the same line.
const probeCell = `import sys as _sys
print(j.dumps([x, big, arr.dtype.str, list(arr.shape), float(arr.sum()), float(m.sum()), f(2), c.twice(),
    isinstance(c, C), sq(3), j is _sys.modules["json"], np is _sys.modules["numpy"], _mine,
    random.random(), float(np.random.rand())]))`

var wantSaved = []string{"C", "_mine", "arr", "big", "c", "f", "m", "sq", "x"}

func TestCheckpointRestoresNamespaceInFreshKernel(t *testing.T) {
	dir := t.TempDir()
	inline, fork := filepath.Join(dir, "inline.ckpt"), filepath.Join(dir, "fork.ckpt")
	noBootstrap := false

	first := drive(t,
		step{Op: "start", Bootstrap: &noBootstrap},
		call(`__import__("json").dumps(sorted(get_ipython().user_ns))`),
		step{Op: "bootstrap"},
		call(`__import__("json").dumps(sorted(get_ipython().user_ns))`),
		ck("user_names"),
		nbCell(notebookCells),
		ck("save", pyStr(inline), "1", "mode='inline'"),
		ck("save", pyStr(fork), "1", "mode='fork'"),
		ck("wait", pyStr(fork), "120"),
		nbCell(probeCell),
	)
	var before, after string
	before, after = value[string](t, first[1], "names before bootstrap"), value[string](t, first[3], "names after bootstrap")
	if before != after {
		t.Errorf("the bootstrap changed the user namespace:\nbefore %s\nafter  %s", before, after)
	}
	if names := value[[]string](t, first[4], "user_names"); len(names) != 0 {
		t.Errorf("user_names before any cell = %v, want none (the kernel's names are not the notebook's)", names)
	}
	ok(t, first[5], "notebook cells")
	in := value[ckptSummary](t, first[6], "inline save")
	started := value[ckptSummary](t, first[7], "fork save")
	fk := value[ckptSummary](t, first[8], "fork wait")
	want := ok(t, first[9], "probe in the first kernel")

	if in.Probe != "on_failure" || started.Probe != "always" {
		t.Errorf("probe %q then %q, want on_failure for the first save and always after a partial one", in.Probe, started.Probe)
	}
	if started.State != "writing" || started.Mode != "fork" {
		t.Errorf("fork save returned state %q mode %q, want writing, fork", started.State, started.Mode)
	}
	for _, s := range []ckptSummary{in, fk} {
		if s.State != "complete" || !s.Partial || s.Cell != 1 {
			t.Errorf("%s: state %q partial %v cell %d, want complete, partial, 1", s.Mode, s.State, s.Partial, s.Cell)
		}
		if !reflect.DeepEqual(s.Saved, wantSaved) {
			t.Errorf("%s saved %v, want %v", s.Mode, s.Saved, wantSaved)
		}
		wantModules := map[string]string{"j": "json", "np": "numpy", "random": "random", "socket": "socket"}
		if !reflect.DeepEqual(s.Modules, wantModules) {
			t.Errorf("%s modules %v, want %v", s.Mode, s.Modules, wantModules)
		}
		if len(s.Skipped) != 2 || !strings.HasPrefix(s.Skipped["sock"], "TypeError: cannot pickle 'socket'") ||
			!strings.HasPrefix(s.Skipped["gen"], "TypeError: cannot pickle 'generator'") {
			t.Errorf("%s skipped %v, want sock and gen with their TypeErrors", s.Mode, s.Skipped)
		}
		sum, size := fileSHA256(t, s.Path)
		if s.SHA256 != sum || s.SizeBytes != size {
			t.Errorf("%s: summary says sha256 %s size %d, the file has %s %d", s.Mode, s.SHA256, s.SizeBytes, sum, size)
		}
		st, err := os.Stat(s.Path)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: checkpoint mode %v (%v), want 0600: whoever can rewrite it runs code in the next kernel", s.Mode, st.Mode(), err)
		}
		var side ckptSummary
		b, err := os.ReadFile(s.Path + ".json")
		if err != nil || json.Unmarshal(b, &side) != nil || side.SHA256 != s.SHA256 || side.State != "complete" {
			t.Errorf("%s: sidecar %s does not record the complete checkpoint (%v): %s", s.Mode, s.Path+".json", err, b)
		}
	}
	if in.SHA256 != fk.SHA256 {
		t.Errorf("inline and fork wrote different files (%s, %s) from the same namespace", in.SHA256, fk.SHA256)
	}
	if fk.PauseSeconds != started.PauseSeconds || fk.TotalSeconds < fk.PauseSeconds {
		t.Errorf("fork: pause %v (at start %v), total %v: the pause is the fork, the total ends with the file", fk.PauseSeconds, started.PauseSeconds, fk.TotalSeconds)
	}

	// A tampered copy (one bit flipped) must be refused before anything loads.
	data, err := os.ReadFile(inline)
	if err != nil {
		t.Fatal(err)
	}
	tampered := filepath.Join(dir, "tampered.ckpt")
	data[len(data)/2] ^= 1
	if err := os.WriteFile(tampered, data, 0o600); err != nil {
		t.Fatal(err)
	}

	truncated := filepath.Join(dir, "truncated.ckpt")
	data[len(data)/2] ^= 1
	if err := os.WriteFile(truncated, data[:len(data)-1], 0o600); err != nil {
		t.Fatal(err)
	}

	second := drive(t,
		startKernel(),
		ck("restore", pyStr(tampered), pyStr(in.SHA256)),
		ck("restore", pyStr(truncated), pyStr(in.SHA256)),
		ck("restore", pyStr(inline), "'not-a-hash'"),
		ck("user_names"),
		ck("restore", pyStr(inline), pyStr(in.SHA256)),
		nbCell(probeCell),
		nbCell(`print(j.dumps(sorted(n for n in ("sock", "gen") if n in globals())))`),
		startKernel(),
		ck("restore", pyStr(fork), pyStr(fk.SHA256)),
		nbCell(probeCell),
	)
	refused(t, second[1], "restore of a tampered file", "not the recorded "+in.SHA256)
	refused(t, second[2], "restore of a truncated file", "is not a complete millrace-checkpoint/1 file")
	refused(t, second[3], "restore with a malformed hash", "64 hex digits")
	if names := value[[]string](t, second[4], "user_names after refusals"); len(names) != 0 {
		t.Errorf("refused restores left names %v in the namespace", names)
	}
	rs := value[restoreSummary](t, second[5], "inline restore")
	if !reflect.DeepEqual(rs.Restored, wantSaved) || rs.Cell != 1 || len(rs.SkippedAtSave) != 2 ||
		!reflect.DeepEqual(rs.Random, []string{"random", "numpy"}) {
		t.Errorf("inline restore: %+v, want names %v, cell 1, two skipped, random and numpy states", rs, wantSaved)
	}
	if got := ok(t, second[6], "probe after inline restore"); got != want {
		t.Errorf("after the inline restore the probe printed\n%s want (the first kernel's)\n%s", got, want)
	}
	if got := ok(t, second[7], "skipped names"); got != "[]\n" {
		t.Errorf("names present after restore among the skipped ones: %s", got)
	}
	value[restoreSummary](t, second[9], "fork restore")
	if got := ok(t, second[10], "probe after fork restore"); got != want {
		t.Errorf("after the fork restore the probe printed\n%s want (the first kernel's)\n%s", got, want)
	}
}

// gateCell defines Gate: pickling one blocks until its flag file exists, so
// a forked save stays "writing" for exactly as long as the test wants.
const gateCell = `import os, time, threading
class Gate:
    def __init__(self, flag):
        self.flag = flag
    def __reduce__(self):
        while not os.path.exists(self.flag):
            time.sleep(0.01)
        return (str, ("passed",))
`

func TestCheckpointForkLifecycle(t *testing.T) {
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	flag1, flag2 := p("flag1"), p("flag2")
	r := drive(t,
		startKernel(),
		nbCell(gateCell+fmt.Sprintf("gate = Gate(%s)\n", pyStr(flag1))),
		ck("save", pyStr(p("a.ckpt")), "1", "mode='fork'"),
		ck("poll", pyStr(p("a.ckpt"))),
		ck("save", pyStr(p("b.ckpt")), "2", "mode='fork'"), // busy: skipped
		nbCell(fmt.Sprintf("open(%s, 'w').close()", pyStr(flag1))),
		ck("wait", pyStr(p("a.ckpt")), "120"),
		// if_busy='wait': a timer in the kernel opens the gate while save waits.
		nbCell(fmt.Sprintf("gate2 = Gate(%s)", pyStr(flag2))),
		ck("save", pyStr(p("c.ckpt")), "3", "mode='fork'"),
		nbCell(fmt.Sprintf("threading.Timer(1.0, lambda: open(%s, 'w').close()).start()", pyStr(flag2))),
		ck("save", pyStr(p("d.ckpt")), "4", "mode='fork'", "if_busy='wait'"),
		ck("poll", pyStr(p("c.ckpt"))),
		ck("wait", pyStr(p("d.ckpt")), "120"),
		// A child stuck past its deadline is killed, and leaves no file.
		nbCell(fmt.Sprintf("stuck = Gate(%s)", pyStr(p("never")))),
		ck("save", pyStr(p("e.ckpt")), "5", "mode='fork'", "deadline=1"),
		ck("wait", pyStr(p("e.ckpt")), "120"),
		nbCell("del stuck\nprint(1 + 1)"),
		ck("save", pyStr(p("f.ckpt")), "6", "mode='fork'"),
		ck("wait", pyStr(p("f.ckpt")), "120"),
		// Arguments that cannot work are refused and change nothing.
		ck("save", pyStr(p("g.ckpt")), "7", "mode='bogus'"),
		ck("save", pyStr(p("no/such/folder/g.ckpt")), "7"),
		ck("save", pyStr(p("g.ckpt")), "-1"),
		ck("restore", pyStr(p("missing.ckpt")), pyStr(strings.Repeat("0", 64))),
		// torch is not installable with CUDA here: a stand-in module that
		// reports CUDA initialised is what the fork check sees.
		nbCell("import sys, types\n_t = types.ModuleType('torch')\n_t.get_rng_state = lambda: b'state'\n"+
			"_t.cuda = types.SimpleNamespace(is_initialized=lambda: True, is_available=lambda: False)\n"+
			"sys.modules['torch'] = _t\ndel _t"),
		ck("save", pyStr(p("h.ckpt")), "8"),
		ck("save", pyStr(p("i.ckpt")), "9", "mode='fork'"),
	)
	ok(t, r[1], "gate cell")
	if s := value[ckptSummary](t, r[2], "save a"); s.State != "writing" {
		t.Errorf("fork save a: state %q, want writing", s.State)
	}
	if s := value[ckptSummary](t, r[3], "poll a"); s.State != "writing" {
		t.Errorf("poll a while its gate is shut: state %q, want writing", s.State)
	}
	if s := value[ckptSummary](t, r[4], "save b"); s.State != "busy" || s.InFlight != p("a.ckpt") {
		t.Errorf("save b while a writes: state %q in_flight %q, want busy, %s", s.State, s.InFlight, p("a.ckpt"))
	}
	if _, err := os.Stat(p("b.ckpt")); !os.IsNotExist(err) {
		t.Errorf("a skipped save wrote %s (%v)", p("b.ckpt"), err)
	}
	ok(t, r[5], "open gate 1")
	if s := value[ckptSummary](t, r[6], "wait a"); s.State != "complete" || !reflect.DeepEqual(s.Saved, []string{"Gate", "gate"}) || s.ChildPrivateBytes <= 0 {
		t.Errorf("wait a: %+v, want complete with Gate and gate, and the child's private memory", s)
	}
	ok(t, r[7], "gate2")
	if s := value[ckptSummary](t, r[8], "save c"); s.State != "writing" {
		t.Errorf("save c: state %q, want writing", s.State)
	}
	ok(t, r[9], "timer")
	if s := value[ckptSummary](t, r[10], "save d"); s.State != "writing" {
		t.Errorf("save d with if_busy='wait': state %q, want writing (after c completed)", s.State)
	}
	if s := value[ckptSummary](t, r[11], "poll c"); s.State != "complete" {
		t.Errorf("poll c after save d waited for it: state %q, want complete", s.State)
	}
	if s := value[ckptSummary](t, r[12], "wait d"); s.State != "complete" {
		t.Errorf("wait d: state %q (%s), want complete", s.State, s.Error)
	}
	ok(t, r[13], "stuck")
	value[ckptSummary](t, r[14], "save e")
	if s := value[ckptSummary](t, r[15], "wait e"); s.State != "failed" || !strings.Contains(s.Error, "killed by signal") {
		t.Errorf("wait e past its deadline: state %q error %q, want failed, killed by signal", s.State, s.Error)
	}
	if _, err := os.Stat(p("e.ckpt")); !os.IsNotExist(err) {
		t.Errorf("a killed save left %s (%v)", p("e.ckpt"), err)
	}
	if got := ok(t, r[16], "the kernel after a killed save"); got != "2\n" {
		t.Errorf("the kernel printed %q after a killed save, want 2", got)
	}
	if s := value[ckptSummary](t, r[18], "wait f"); s.State != "complete" {
		t.Errorf("the save after a killed one: state %q (%s), want complete", s.State, s.Error)
	}
	refused(t, r[19], "mode='bogus'", "mode must be")
	refused(t, r[20], "missing folder", "does not exist; create it first")
	refused(t, r[21], "cell -1", "cell must be a cell index")
	refused(t, r[22], "restore of a missing file", "cannot read checkpoint")
	if _, err := os.Stat(p("g.ckpt")); !os.IsNotExist(err) {
		t.Errorf("a refused save wrote %s (%v)", p("g.ckpt"), err)
	}
	ok(t, r[23], "torch stand-in")
	if s := value[ckptSummary](t, r[24], "auto with CUDA"); s.Mode != "inline" || s.State != "complete" || s.Fallback == nil || !strings.Contains(*s.Fallback, "CUDA is initialised") {
		t.Errorf("auto save with CUDA initialised: mode %q state %q fallback %v, want inline, complete, the CUDA reason", s.Mode, s.State, s.Fallback)
	}
	if s := value[ckptSummary](t, r[25], "fork with CUDA"); s.Mode != "inline" || s.Fallback == nil || !strings.HasPrefix(*s.Fallback, "fork refused: CUDA") {
		t.Errorf("fork save with CUDA initialised: mode %q fallback %v, want inline, fork refused", s.Mode, s.Fallback)
	}
	entries, _ := os.ReadDir(dir)
	var left []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			left = append(left, e.Name())
		}
	}
	sort.Strings(left)
	if len(left) > 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

// TestCheckpointReapLeavesRemovedFilesAlone: the runner may read a forked
// save's sidecar, see it failed and remove its files before the kernel
// reaps the child. The reaping must not write a sidecar back: that stray
// file would stay in the checkpoint folder for good.
func TestCheckpointReapLeavesRemovedFilesAlone(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.ckpt")
	r := drive(t,
		startKernel(),
		nbCell("big = bytearray(1 << 20)"),
		ck("save", pyStr(path), "0", "mode='fork'", "max_bytes=4096"),
		// As the runner's watcher does while a cell runs: the child's own
		// sidecar says failed; the files are removed; the child has exited.
		nbCell(fmt.Sprintf("import json, os, time\nside = %s + '.json'\n"+
			"while not os.path.exists(side): time.sleep(0.01)\n"+
			"print(json.load(open(side))['error_type'])\ntime.sleep(0.5)\nos.unlink(side)", pyStr(path))),
		ck("wait", pyStr(path), "120"),
	)
	if s := value[ckptSummary](t, r[2], "save"); s.State != "writing" {
		t.Fatalf("fork save: state %q, want writing", s.State)
	}
	if got := ok(t, r[3], "the watcher's cell"); got != "CheckpointTooBig\n" {
		t.Errorf("the child's sidecar said %q, want CheckpointTooBig", got)
	}
	if s := value[ckptSummary](t, r[4], "wait"); s.State != "failed" {
		t.Errorf("wait after the files were removed: state %q, want failed", s.State)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("%s was left in the checkpoint folder after its files were removed", e.Name())
	}
}

// TestCheckpointRestoreChangesNothingOnFailure: a checkpoint that needs a
// module the new kernel cannot import is refused whole, with the module named.
func TestCheckpointRestoreChangesNothingOnFailure(t *testing.T) {
	dir := t.TempDir()
	lib := filepath.Join(dir, "lib")
	if err := os.Mkdir(lib, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(lib, "millrace_ckpt_mod.py"), []byte("VALUE = 11\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "a.ckpt")
	first := drive(t,
		startKernel(),
		nbCell(fmt.Sprintf("import sys\nsys.path.insert(0, %s)\nimport millrace_ckpt_mod as mod\nkeep = 7", pyStr(lib))),
		ck("save", pyStr(path), "1", "mode='inline'"),
	)
	ok(t, first[1], "cells")
	s := value[ckptSummary](t, first[2], "save")
	second := drive(t,
		startKernel(),
		nbCell("keep = 'before'"),
		ck("restore", pyStr(path), pyStr(s.SHA256)),
		nbCell("print(keep, 'mod' in globals(), 'sys' in globals())"),
	)
	refused(t, second[2], "restore without the module", "cannot import (mod: import millrace_ckpt_mod: ModuleNotFoundError")
	if got := ok(t, second[3], "namespace after the refused restore"); got != "before False False\n" {
		t.Errorf("after a refused restore the namespace printed %q, want it unchanged: before False False", got)
	}
}
