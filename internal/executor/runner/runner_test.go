package runner

// These tests run the embedded script with the system Python against the
// repository's own notebooks (testdata/), which stand for the behaviours of
// papermill's contract; papermill's own notebooks are checked through the
// whole product by `make conformance`. Each run starts a real kernel.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"millrace/internal/failure"
)

const runTimeout = 2 * time.Minute

// testdata is one of the repository's own notebooks (testdata/ at the
// root), each written for the behaviour a test checks.
func testdata(t *testing.T, name string) string {
	t.Helper()
	path, err := filepath.Abs(filepath.Join("..", "..", "..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return path
}

var checkPython = sync.OnceValue(func() error {
	out, err := exec.Command(DefaultPython, "-c", "import nbclient, nbformat, jupyter_client, ipykernel").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s cannot import nbclient/ipykernel (apt-get install python3-nbclient python3-ipykernel): %v\n%s", DefaultPython, err, out)
	}
	return nil
})

// writeScript puts the embedded runner in a fresh temporary directory.
func writeScript(t *testing.T) string {
	t.Helper()
	if err := checkPython(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "millrace_runner.py")
	if err := os.WriteFile(path, Script, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// invocation is one runner command line to build.
type invocation struct {
	notebook string         // input notebook
	params   map[string]any // written to a -f file when non-nil
	args     []string       // more flags (-k, --cwd, ...)
	env      []string       // added to the environment
	combined bool           // capture stdout and stderr through one pipe, in order
}

// outcome is what a finished runner left behind.
type outcome struct {
	exit     int
	stdout   string
	stderr   string // with combined, everything is here
	result   Result
	nb       outputNB
	output   string // output notebook path
	elapsed  time.Duration
	hasNB    bool
	resultOK bool
}

func (o *outcome) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s\n--- stderr\n%s\n--- result %+v", o.exit, o.stdout, o.stderr, o.result)
}

// command builds the runner's exec.Cmd and returns it with the output and
// result paths.
func command(t *testing.T, ctx context.Context, inv invocation) (*exec.Cmd, string, string) {
	t.Helper()
	script := writeScript(t)
	dir := t.TempDir()
	output := filepath.Join(dir, "out.ipynb")
	resultFile := filepath.Join(dir, "result.json")
	args := []string{script, inv.notebook, output, "--result-file", resultFile}
	if inv.params != nil {
		b, err := json.Marshal(inv.params)
		if err != nil {
			t.Fatal(err)
		}
		pf := filepath.Join(dir, "params.json")
		if err := os.WriteFile(pf, b, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-f", pf)
	}
	args = append(args, inv.args...)
	cmd := exec.CommandContext(ctx, DefaultPython, args...)
	cmd.Env = append(os.Environ(), inv.env...)
	cmd.WaitDelay = 10 * time.Second // a leaked kernel holding our pipes must not hang the test
	return cmd, output, resultFile
}

// run runs the runner to completion.
func run(t *testing.T, inv invocation) *outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd, output, resultFile := command(t, ctx, inv)
	var stdout, stderr bytes.Buffer
	if inv.combined {
		cmd.Stdout, cmd.Stderr = &stderr, &stderr
	} else {
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
	}
	start := time.Now()
	err := cmd.Run()
	o := &outcome{stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start), output: output}
	o.exit = exitCode(t, err, o)
	o.load(t, resultFile)
	return o
}

func exitCode(t *testing.T, err error, o *outcome) int {
	t.Helper()
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("run runner: %v\n%s", err, o)
	}
	return ee.ExitCode()
}

func (o *outcome) load(t *testing.T, resultFile string) {
	t.Helper()
	res, ok, err := ReadResult(resultFile)
	if err != nil {
		b, _ := os.ReadFile(resultFile)
		t.Fatalf("result file: %v\n%s", err, b)
	}
	o.result, o.resultOK = res, ok
	if nb, err := readNotebook(o.output); err == nil {
		o.nb, o.hasNB = nb, true
	} else if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("output notebook: %v", err)
	}
}

// outputNB is the part of an output notebook the tests look at.
type outputNB struct {
	Metadata struct {
		Papermill struct {
			Parameters map[string]any `json:"parameters"`
			Exception  *bool          `json:"exception"`
			Version    string         `json:"version"`
			InputPath  string         `json:"input_path"`
			OutputPath string         `json:"output_path"`
		} `json:"papermill"`
	} `json:"metadata"`
	Cells []cell `json:"cells"`
}

type cell struct {
	CellType string    `json:"cell_type"`
	Source   multiline `json:"source"`
	Metadata struct {
		Tags      []string `json:"tags"`
		Papermill struct {
			Status string `json:"status"`
		} `json:"papermill"`
	} `json:"metadata"`
	Outputs []struct {
		OutputType string         `json:"output_type"`
		Name       string         `json:"name"`
		Text       multiline      `json:"text"`
		Data       map[string]any `json:"data"`
		Ename      string         `json:"ename"`
	} `json:"outputs"`
}

func (c cell) tagged(tag string) bool { return slices.Contains(c.Metadata.Tags, tag) }

// multiline is nbformat's string-or-list-of-lines.
type multiline string

func (m *multiline) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*m = multiline(s)
		return nil
	}
	var lines []string
	if err := json.Unmarshal(b, &lines); err != nil {
		return err
	}
	*m = multiline(strings.Join(lines, ""))
	return nil
}

func readNotebook(path string) (outputNB, error) {
	var nb outputNB
	b, err := os.ReadFile(path)
	if err != nil {
		return nb, err
	}
	return nb, json.Unmarshal(b, &nb)
}

func (nb outputNB) statuses() []string {
	var s []string
	for _, c := range nb.Cells {
		s = append(s, c.Metadata.Papermill.Status)
	}
	return s
}

func wantExit(t *testing.T, o *outcome, code int, kind failure.Kind) {
	t.Helper()
	if o.exit != code || o.result.Kind != kind {
		t.Fatalf("got exit %d kind %q, want exit %d kind %q\n%s", o.exit, o.result.Kind, code, kind, o)
	}
	wantStatus := "failed"
	if kind == failure.KindOK {
		wantStatus = "succeeded"
	}
	if o.result.Status != wantStatus {
		t.Errorf("got status %q, want %q", o.result.Status, wantStatus)
	}
}

func wantLines(t *testing.T, text string, want ...string) {
	t.Helper()
	lines := strings.Split(text, "\n")
	for _, w := range want {
		if !slices.Contains(lines, w) {
			t.Errorf("output has no line %q:\n%s", w, text)
		}
	}
}

// --- processes ---------------------------------------------------------------

const markerVar = "MILLRACE_TEST_MARKER"

func newMarker(t *testing.T) string {
	return fmt.Sprintf("%s-%d-%d", strings.ReplaceAll(t.Name(), "/", "_"), os.Getpid(), time.Now().UnixNano())
}

// markedProcesses lists the processes whose environment holds marker: the
// runner and every kernel it started (the kernel inherits the environment).
func markedProcesses(t *testing.T, marker string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	needle := []byte(markerVar + "=" + marker + "\x00")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue // gone, or a zombie
		}
		if bytes.Contains(env, needle) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// wantNoMarkedProcesses fails unless every marked process is gone within a
// short deadline (a killed kernel may take a moment to be reaped).
func wantNoMarkedProcesses(t *testing.T, marker string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		pids := markedProcesses(t, marker)
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			var desc []string
			for _, pid := range pids {
				cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				desc = append(desc, fmt.Sprintf("%d: %s", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			t.Fatalf("processes left behind:\n%s", strings.Join(desc, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// --- parameters ----------------------------------------------------------------

func TestSimpleExecuteParameters(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, msg, source string
	}{
		{"plain", "Hello", `greeting = "Hello"`},
		{"quotes", `"Hello"`, `greeting = "\"Hello\""`},
		{"backslashes", `do\ not\ crash`, `greeting = "do\\ not\\ crash"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := run(t, invocation{notebook: testdata(t, "greeting.ipynb"), params: map[string]any{"greeting": tc.msg}})
			wantExit(t, o, ExitOK, failure.KindOK)
			wantLines(t, o.stdout, tc.msg)
			cells := o.nb.Cells
			if len(cells) != 4 || !cells[0].tagged("parameters") || !cells[1].tagged("injected-parameters") {
				t.Fatalf("want parameters cell then injected-parameters cell, got %+v", cells)
			}
			if got, want := string(cells[1].Source), "# Parameters\n"+tc.source+"\n"; got != want {
				t.Errorf("injected source: got %q, want %q", got, want)
			}
			if got, want := o.nb.Metadata.Papermill.Parameters, map[string]any{"greeting": tc.msg}; !reflect.DeepEqual(got, want) {
				t.Errorf("metadata.papermill.parameters: got %v, want %v", got, want)
			}
			if got, want := o.nb.statuses(), []string{"completed", "completed", "completed", "completed"}; !slices.Equal(got, want) {
				t.Errorf("cell statuses: got %v, want %v", got, want)
			}
			if e := o.nb.Metadata.Papermill.Exception; e == nil || *e {
				t.Errorf("metadata.papermill.exception: got %v, want false", e)
			}
			if o.result.CellsTotal != 3 || o.result.CellsExecuted != 3 {
				t.Errorf("cells: got %d/%d, want 3/3", o.result.CellsExecuted, o.result.CellsTotal)
			}
		})
	}
}

func TestNoParametersCellInjectsFirst(t *testing.T) {
	t.Parallel()
	o := run(t, invocation{notebook: testdata(t, "untagged.ipynb"), params: map[string]any{"greeting": "Hello"}})
	wantExit(t, o, ExitOK, failure.KindOK)
	// The notebook's own `greeting = None` runs after the injected cell, as with papermill.
	wantLines(t, o.stdout, "None")
	if len(o.nb.Cells) != 3 || !o.nb.Cells[0].tagged("injected-parameters") {
		t.Fatalf("want the injected cell first, got %+v", o.nb.Cells)
	}
	const warning = "Input notebook does not contain a cell with tag 'parameters'"
	if !slices.Contains(o.result.Warnings, warning) {
		t.Errorf("result warnings %q lack %q", o.result.Warnings, warning)
	}
	if !strings.Contains(o.stderr, warning) {
		t.Errorf("stderr lacks the warning:\n%s", o.stderr)
	}
}

func TestParametersArePrinted(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		notebook string
		params   map[string]any
		line     string // a line the run must print; "" for none
		cells    int    // cells in the output notebook
	}{
		{"sum.ipynb", map[string]any{"left": 2, "right": 3}, "5", 4},
		{"only_parameters.ipynb", map[string]any{"count": 2, "label": "x"}, "", 2},
	} {
		t.Run(tc.notebook, func(t *testing.T) {
			t.Parallel()
			o := run(t, invocation{notebook: testdata(t, tc.notebook), params: tc.params})
			wantExit(t, o, ExitOK, failure.KindOK)
			if tc.line != "" {
				wantLines(t, o.stdout, tc.line)
			}
			if len(o.nb.Cells) != tc.cells || !o.nb.Cells[0].tagged("parameters") || !o.nb.Cells[1].tagged("injected-parameters") {
				t.Fatalf("want %d cells, parameters then injected-parameters, got %+v", tc.cells, o.nb.Cells)
			}
		})
	}
}

// TestTypedParametersRoundTrip checks that every JSON type reaches the kernel
// as the same value, and that the injected source follows papermill's
// PythonTranslator byte for byte.
func TestTypedParametersRoundTrip(t *testing.T) {
	t.Parallel()
	params := map[string]any{
		"items":   []any{1, "two", 3.5, nil, true},
		"mapping": map[string]any{"a": 1, "b": []any{1, 2}, "nested": map[string]any{"k": "v"}},
		"flag":    true,
		"off":     false,
		"nothing": nil,
		"ratio":   2.5,
		"tiny":    1e-7,
		"big":     12345678901234,
		"unicode": "héllo ✓",
		"tricky":  "she said \"hi\" \\ back\\slash 'single'\n\ttab \\\"",
	}
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	slices.Sort(names)
	nbPath := filepath.Join(t.TempDir(), "typed.ipynb")
	writeNotebook(t, nbPath,
		codeCell("items = mapping = flag = off = nothing = ratio = tiny = big = unicode = tricky = 0", "parameters"),
		codeCell(fmt.Sprintf("import json\nfor name in %s:\n    print(name, json.dumps(globals()[name], ensure_ascii=False))", pyList(names))),
	)
	o := run(t, invocation{notebook: nbPath, params: params})
	wantExit(t, o, ExitOK, failure.KindOK)

	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(o.stdout), "\n") {
		name, value, _ := strings.Cut(line, " ")
		got[name] = value
	}
	for _, name := range names {
		var back any
		if err := json.Unmarshal([]byte(got[name]), &back); err != nil {
			t.Errorf("%s: kernel printed %q: %v", name, got[name], err)
			continue
		}
		want := roundTrip(t, params[name])
		if !reflect.DeepEqual(back, want) {
			t.Errorf("%s: kernel has %#v, want %#v", name, back, want)
		}
	}

	source := string(o.nb.Cells[1].Source)
	for _, line := range []string{
		`items = [1, "two", 3.5, None, True]`,
		`flag = True`,
		`off = False`,
		`nothing = None`,
		`ratio = 2.5`,
		`tiny = 1e-07`,
		`big = 12345678901234`,
		`unicode = "h\xe9llo \u2713"`,
		`tricky = "she said \"hi\" \\ back\\slash 'single'\n\ttab \\\""`,
	} {
		if !strings.Contains(source, "\n"+line+"\n") {
			t.Errorf("injected source lacks line %s:\n%s", line, source)
		}
	}
	if !strings.HasPrefix(source, "# Parameters\n") {
		t.Errorf("injected source does not start with # Parameters:\n%s", source)
	}
}

func roundTrip(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func pyList(names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = strconv.Quote(n)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

// --- plain runs ------------------------------------------------------------------

func TestNotebookNodeIO(t *testing.T) {
	t.Parallel()
	o := run(t, invocation{notebook: testdata(t, "hello.ipynb")})
	wantExit(t, o, ExitOK, failure.KindOK)
	wantLines(t, o.stdout, "Hello from millrace")
	if o.nb.Metadata.Papermill.Parameters == nil || len(o.nb.Metadata.Papermill.Parameters) != 0 {
		t.Errorf("metadata.papermill.parameters: got %v, want {}", o.nb.Metadata.Papermill.Parameters)
	}
}

func TestNoKernelspecUsesDefaultKernel(t *testing.T) {
	t.Parallel()
	o := run(t, invocation{notebook: testdata(t, "no_kernelspec.ipynb")})
	wantExit(t, o, ExitOK, failure.KindOK)
	if !o.result.KernelDefaulted || o.result.KernelName != "python3" {
		t.Errorf("got kernel %q defaulted %v, want python3 defaulted", o.result.KernelName, o.result.KernelDefaulted)
	}
	if !strings.Contains(o.stderr, "No kernel name found in notebook; using the default kernel python3") {
		t.Errorf("stderr does not say which kernel was used:\n%s", o.stderr)
	}
}

func TestWorkingDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "input.txt"), []byte("here\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := run(t, invocation{notebook: testdata(t, "needs_cwd_file.ipynb"), args: []string{"--cwd", dir}})
	wantExit(t, o, ExitOK, failure.KindOK)
	resolved, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, o.stdout, "NB_CWD "+resolved)
}

// The kernel listens on unix sockets in a private folder, not on TCP
// ports: kernels started at once could be handed the same "free" port.
// The folder is gone once the run ends.
func TestKernelOnUnixSockets(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	nbPath := filepath.Join(t.TempDir(), "transport.ipynb")
	writeNotebook(t, nbPath, codeCell("import json, ipykernel\ninfo = json.loads(ipykernel.get_connection_info())\nprint('TRANSPORT', info['transport'], info['ip'])"))
	o := run(t, invocation{notebook: nbPath, env: []string{"TMPDIR=" + tmp}})
	wantExit(t, o, ExitOK, failure.KindOK)
	f := strings.Fields(o.stdout)
	if len(f) != 3 || f[0] != "TRANSPORT" || f[1] != "ipc" || !strings.HasPrefix(f[2], filepath.Join(tmp, "millrace-kernel-")) {
		t.Fatalf("the kernel printed %q, want TRANSPORT ipc %s/millrace-kernel-.../k", o.stdout, tmp)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "millrace-kernel-*")); len(left) > 0 {
		t.Errorf("the kernel's socket folder was left behind: %v", left)
	}
}

func TestSystemExitIsSuccess(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"exit_zero.ipynb", "exit_bare.ipynb", "raise_systemexit.ipynb"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			o := run(t, invocation{notebook: testdata(t, name)})
			wantExit(t, o, ExitOK, failure.KindOK)
			if strings.Contains(o.stdout, "after the exit") {
				t.Errorf("the cell after the exit ran:\n%s", o.stdout)
			}
			if got, want := o.nb.statuses(), []string{"completed", "completed", "pending"}; !slices.Equal(got, want) {
				t.Errorf("cell statuses: got %v, want %v", got, want)
			}
			if o.result.Cell != nil {
				t.Errorf("result names a failing cell: %+v", o.result.Cell)
			}
		})
	}
}

// --- failures ------------------------------------------------------------------------

func TestCellErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		notebook string
		index    int    // failing cell in the input notebook
		ename    string // and its exception
		evalue   string // "" to skip
		combined bool   // capture stdout and stderr in order
		check    func(t *testing.T, o *outcome)
	}{
		{notebook: "exit_one.ipynb", index: 1, ename: "SystemExit", evalue: "1"},
		{notebook: "fails_later.ipynb", index: 4, ename: "AssertionError", check: func(t *testing.T, o *outcome) {
			wantLines(t, o.stdout, "first cell ran")
			if strings.Contains(o.stdout, "after the failure") {
				t.Errorf("a cell after the failure ran")
			}
		}},
		{notebook: "display_then_fail.ipynb", index: 1, ename: "AssertionError", check: func(t *testing.T, o *outcome) {
			failing := o.nb.Cells[o.result.Cell.OutputIndex]
			var kinds []string
			for _, out := range failing.Outputs {
				kinds = append(kinds, out.OutputType)
			}
			if len(kinds) < 2 || kinds[len(kinds)-1] != "error" || !slices.Contains(kinds, "display_data") {
				t.Errorf("failing cell outputs: got %v, want display_data kept before the error", kinds)
			}
		}},
		{notebook: "syntax_error.ipynb", index: 0, ename: "SyntaxError"},
		{notebook: "unknown_magic.ipynb", index: 0, ename: "UsageError"},
		{notebook: "unparsable_parameters.ipynb", index: 0, ename: "SyntaxError"},
		{notebook: "log_then_import_error.ipynb", index: 2, ename: "ModuleNotFoundError", combined: true, check: func(t *testing.T, o *outcome) {
			logged := strings.Index(o.stderr, "logged first")
			printed := strings.Index(o.stderr, "printed second")
			failed := strings.Index(o.stderr, "ModuleNotFoundError")
			if logged < 0 || printed < 0 || failed < 0 || !(logged < printed && printed < failed) {
				t.Errorf("want logging, then print, then the error, in order:\n%s", o.stderr)
			}
		}},
	} {
		t.Run(tc.notebook, func(t *testing.T) {
			t.Parallel()
			o := run(t, invocation{notebook: testdata(t, tc.notebook), combined: tc.combined})
			wantExit(t, o, ExitCellFailed, failure.KindCellError)
			c := o.result.Cell
			if c == nil {
				t.Fatalf("result has no failing cell: %+v", o.result)
			}
			if c.Index != tc.index || c.EName != tc.ename || !strings.HasPrefix(o.result.Message, fmt.Sprintf("cell %d raised", tc.index)) {
				t.Errorf("got cell %d %s (%q), want cell %d %s", c.Index, c.EName, o.result.Message, tc.index, tc.ename)
			}
			if tc.evalue != "" && c.EValue != tc.evalue {
				t.Errorf("got evalue %q, want %q", c.EValue, tc.evalue)
			}
			for _, line := range c.Traceback {
				if strings.Contains(line, "\x1b[") {
					t.Errorf("traceback keeps ANSI codes: %q", line)
				}
			}
			wantErrorMarkers(t, o)
			if tc.check != nil {
				tc.check(t, o)
			}
		})
	}
}

// wantErrorMarkers checks papermill's two marker cells, the failed status, and
// that nothing after the failing cell ran.
func wantErrorMarkers(t *testing.T, o *outcome) {
	t.Helper()
	cells := o.nb.Cells
	at := o.result.Cell.OutputIndex
	if at < 2 || at >= len(cells) {
		t.Fatalf("output index %d out of range (%d cells)", at, len(cells))
	}
	var markers []int
	for i, c := range cells {
		if c.tagged("papermill-error-cell-tag") {
			markers = append(markers, i)
		}
	}
	if !slices.Equal(markers, []int{0, at - 1}) {
		t.Errorf("error markers at %v, want [0 %d]", markers, at-1)
	}
	if !strings.Contains(string(cells[0].Source), "An Exception was encountered at") ||
		!strings.Contains(string(cells[at-1].Source), `id="papermill-error-cell"`) {
		t.Errorf("marker cells: %q / %q", cells[0].Source, cells[at-1].Source)
	}
	if got := cells[at].Metadata.Papermill.Status; got != "failed" {
		t.Errorf("failing cell status %q, want failed", got)
	}
	for i := at + 1; i < len(cells); i++ {
		if cells[i].CellType == "code" && cells[i].Metadata.Papermill.Status != "pending" {
			t.Errorf("cell %d after the failure has status %q, want pending", i, cells[i].Metadata.Papermill.Status)
		}
	}
	if e := o.nb.Metadata.Papermill.Exception; e == nil || !*e {
		t.Errorf("metadata.papermill.exception: got %v, want true", e)
	}
}

func TestMissingKernel(t *testing.T) {
	t.Parallel()
	o := run(t, invocation{notebook: testdata(t, "unknown_kernel.ipynb")})
	wantExit(t, o, ExitSetup, failure.KindNoSuchKernel)
	if !strings.Contains(o.result.Message, "'millrace-no-such-kernel'") || !strings.Contains(o.result.Message, "python3") {
		t.Errorf("message should name the missing kernel and the available ones: %q", o.result.Message)
	}
	if !slices.Contains(o.result.AvailableKernels, "python3") {
		t.Errorf("available kernels %v lack python3", o.result.AvailableKernels)
	}
	if o.result.CellsExecuted != 0 || strings.Contains(o.stdout, "0\n") {
		t.Errorf("a cell ran:\n%s", o)
	}
}

func TestNoTranslatorForR(t *testing.T) {
	t.Parallel()
	o := run(t, invocation{notebook: testdata(t, "r_kernel.ipynb"), params: map[string]any{"greeting": "x"}})
	wantExit(t, o, ExitSetup, failure.KindNoTranslator)
	if !strings.Contains(o.result.Message, "no parameter translator for kernel 'ir' (language 'R')") {
		t.Errorf("message: %q", o.result.Message)
	}
	if o.hasNB {
		t.Errorf("an output notebook was written for a run that cannot start")
	}
}

func TestBadNotebook(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "garbage.ipynb")
	if err := os.WriteFile(path, []byte("this is not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := run(t, invocation{notebook: path})
	wantExit(t, o, ExitSetup, failure.KindBadNotebook)
	if !o.resultOK {
		t.Fatal("no result file")
	}
}

// TestAutosaveLiveOutput runs a counting notebook with a kernel override: the
// numbers must reach stdout while the cell runs, not at the end.
func TestAutosaveLiveOutput(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd, output, resultFile := command(t, ctx, invocation{notebook: testdata(t, "ticker.ipynb"), args: []string{"-k", "python3"}})
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	var firstAt time.Time
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		if firstAt.IsZero() {
			firstAt = time.Now()
		}
		lines = append(lines, sc.Text())
	}
	err = cmd.Wait()
	lastAt := time.Now()
	o := &outcome{stdout: strings.Join(lines, "\n"), stderr: stderr.String(), output: output}
	o.exit = exitCode(t, err, o)
	o.load(t, resultFile)
	wantExit(t, o, ExitOK, failure.KindOK)
	var want []string
	for i := range 25 {
		want = append(want, strconv.Itoa(i))
	}
	if !slices.Equal(lines, want) {
		t.Fatalf("stdout lines: got %q, want 0..24", lines)
	}
	// The cell takes 2.5 s; printed live, the first number comes well before the end.
	if gap := lastAt.Sub(firstAt); gap < 1500*time.Millisecond {
		t.Errorf("first output only %v before exit: output is not live", gap)
	}
	if o.result.KernelName != "python3" {
		t.Errorf("kernel %q, want the override python3", o.result.KernelName)
	}
}

// --- stopping --------------------------------------------------------------------------

func TestSignalCancelsRun(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		sig  syscall.Signal
		exit int
	}{
		{syscall.SIGTERM, ExitSIGTERM},
		{syscall.SIGINT, ExitSIGINT},
	} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			t.Parallel()
			marker := newMarker(t)
			ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
			defer cancel()
			cmd, output, resultFile := command(t, ctx, invocation{
				notebook: testdata(t, "sleeps.ipynb"),
				env:      []string{markerVar + "=" + marker},
			})
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()

			// Wait until the output notebook says the sleep(60) cell is running.
			deadline := time.Now().Add(time.Minute)
			for {
				nb, err := readNotebook(output)
				if err == nil && len(nb.Cells) == 1 && nb.Cells[0].Metadata.Papermill.Status == "running" {
					break
				}
				select {
				case err := <-done:
					t.Fatalf("runner ended before the cell ran: %v\n%s\n%s", err, stdout.String(), stderr.String())
				default:
				}
				if time.Now().After(deadline) {
					t.Fatal("the cell never started")
				}
				time.Sleep(50 * time.Millisecond)
			}
			var kernels []int
			for _, pid := range markedProcesses(t, marker) {
				if pid != cmd.Process.Pid {
					kernels = append(kernels, pid)
				}
			}
			if len(kernels) == 0 {
				t.Fatal("no kernel process found carrying the marker: the process check would prove nothing")
			}

			sent := time.Now()
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			var err error
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				t.Fatalf("runner still running 5 s after %v", tc.sig)
			}
			took := time.Since(sent)
			o := &outcome{stdout: stdout.String(), stderr: stderr.String(), output: output}
			o.exit = exitCode(t, err, o)
			o.load(t, resultFile)
			wantExit(t, o, tc.exit, failure.KindCanceled)
			t.Logf("stopped %v after %v", tc.sig, took)
			wantNoMarkedProcesses(t, marker)
			if got := o.nb.statuses(); !slices.Equal(got, []string{"failed"}) {
				t.Errorf("cell statuses: got %v, want [failed]", got)
			}
			if c := o.result.Cell; c == nil || c.Index != 0 || !strings.Contains(o.result.Message, "while cell 0 was running") {
				t.Errorf("result cell: got %+v (%q), want index 0", c, o.result.Message)
			}
		})
	}
}

func TestExecutionTimeout(t *testing.T) {
	t.Parallel()
	marker := newMarker(t)
	o := run(t, invocation{
		notebook: testdata(t, "sleeps.ipynb"),
		args:     []string{"--execution-timeout", "2"},
		env:      []string{markerVar + "=" + marker},
	})
	wantExit(t, o, ExitCellFailed, failure.KindCellTimeout)
	wantNoMarkedProcesses(t, marker)
	// Kernel start plus the 2 s limit plus shutdown; far from sleep(60).
	if o.elapsed > 30*time.Second {
		t.Errorf("took %v", o.elapsed)
	}
	if c := o.result.Cell; c == nil || c.Index != 0 || !strings.HasPrefix(o.result.Message, "cell 0 timed out") {
		t.Errorf("result cell: got %+v (%q), want index 0", c, o.result.Message)
	}
	if got := o.nb.statuses(); !slices.Equal(got, []string{"failed"}) {
		t.Errorf("cell statuses: got %v, want [failed]", got)
	}
}

func TestKernelDied(t *testing.T) {
	t.Parallel()
	marker := newMarker(t)
	path := filepath.Join(t.TempDir(), "dies.ipynb")
	writeNotebook(t, path,
		codeCell("print('before')"),
		codeCell("import os\nos._exit(1)"),
		codeCell("print('after')"),
	)
	o := run(t, invocation{notebook: path, env: []string{markerVar + "=" + marker}})
	wantExit(t, o, ExitKernelDied, failure.KindKernelDied)
	wantLines(t, o.stdout, "before")
	if c := o.result.Cell; c == nil || c.Index != 1 || !strings.Contains(o.result.Message, "while cell 1 was running") {
		t.Errorf("result cell: got %+v (%q), want index 1", c, o.result.Message)
	}
	if got, want := o.nb.statuses(), []string{"completed", "failed", "pending"}; !slices.Equal(got, want) {
		t.Errorf("cell statuses: got %v, want %v", got, want)
	}
	wantNoMarkedProcesses(t, marker)
}

// TestKernelStartFailed uses kernelspecs of its own (through JUPYTER_PATH): one
// whose program does not exist, one that never answers.
func TestKernelStartFailed(t *testing.T) {
	t.Parallel()
	jupyterPath := t.TempDir()
	for name, argv := range map[string][]string{
		"missing-program": {"/nonexistent/kernel", "-f", "{connection_file}"},
		"silent":          {"/bin/sleep", "120"},
	} {
		dir := filepath.Join(jupyterPath, "kernels", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		spec, _ := json.Marshal(map[string]any{"argv": argv, "display_name": name, "language": "python"})
		if err := os.WriteFile(filepath.Join(dir, "kernel.json"), spec, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, kernel := range []string{"missing-program", "silent"} {
		t.Run(kernel, func(t *testing.T) {
			t.Parallel()
			marker := newMarker(t)
			o := run(t, invocation{
				notebook: testdata(t, "hello.ipynb"),
				args:     []string{"-k", kernel, "--start-timeout", "2"},
				env:      []string{"JUPYTER_PATH=" + jupyterPath, markerVar + "=" + marker},
			})
			wantExit(t, o, ExitKernelStart, failure.KindKernelStartFailed)
			if !strings.Contains(o.result.Message, kernel) {
				t.Errorf("message does not name the kernel: %q", o.result.Message)
			}
			wantNoMarkedProcesses(t, marker)
		})
	}
}

// --- notebooks written by tests ---------------------------------------------------------

func codeCell(source string, tags ...string) map[string]any {
	md := map[string]any{}
	if len(tags) > 0 {
		md["tags"] = tags
	}
	return map[string]any{"cell_type": "code", "execution_count": nil, "metadata": md, "outputs": []any{}, "source": source}
}

func writeNotebook(t *testing.T, path string, cells ...map[string]any) {
	t.Helper()
	nb := map[string]any{
		"nbformat": 4, "nbformat_minor": 4,
		"metadata": map[string]any{"kernelspec": map[string]any{"name": "python3", "language": "python", "display_name": "Python 3"}},
		"cells":    cells,
	}
	b, err := json.MarshalIndent(nb, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
