//go:build conformance

package activities_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"millrace/internal/failure"
	"millrace/internal/jobs"
	"millrace/internal/notebook"
	"millrace/internal/runopts"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// corpusRow is one row of papermill's corpus EXPECTED.md, run through the
// whole product (job service, Temporal, worker, bundled runner) by `make
// conformance`.
type corpusRow struct {
	name   string
	req    jobs.StartRequest // Path is the corpus file name
	status string
	// cancelAfter cancels the run once it has run this long.
	cancelAfter time.Duration
	check       func(t *testing.T, st jobs.Status, logs string, out *notebook.Notebook)
}

func failedAt(index int, ename string) func(*testing.T, jobs.Status, string, *notebook.Notebook) {
	return func(t *testing.T, st jobs.Status, logs string, out *notebook.Notebook) {
		t.Helper()
		e := st.Error
		if e == nil || e.EName != ename || e.CellIndex == nil || *e.CellIndex != index {
			t.Fatalf("error %+v, want %s in cell %d", e, ename, index)
		}
		if st.Attempt != 1 {
			t.Fatalf("attempt %d: a cell error must not be retried", st.Attempt)
		}
	}
}

func logsHave(lines ...string) func(*testing.T, jobs.Status, string, *notebook.Notebook) {
	return func(t *testing.T, st jobs.Status, logs string, out *notebook.Notebook) {
		t.Helper()
		for _, l := range lines {
			if !strings.Contains(logs, l+"\n") {
				t.Fatalf("logs lack the line %q:\n%s", l, logs)
			}
		}
	}
}

func TestPapermillCorpus(t *testing.T) {
	corpus := testenv.Corpus(t)
	work := t.TempDir()
	for _, e := range must(os.ReadDir(corpus)) {
		testenv.CopyFile(t, filepath.Join(corpus, e.Name()), work)
	}
	checkDir := filepath.Join(work, "with-check")
	os.MkdirAll(checkDir, 0o755)
	os.WriteFile(filepath.Join(checkDir, "check.txt"), []byte("x"), 0o644)
	_, svc := setup(t, work)

	rows := []corpusRow{
		{name: "simple_execute", req: jobs.StartRequest{Path: "simple_execute.ipynb", Options: runopts.Options{Parameters: map[string]any{"msg": "Hello"}}}, status: workflows.StatusSucceeded,
			check: func(t *testing.T, st jobs.Status, logs string, out *notebook.Notebook) {
				logsHave("Hello")(t, st, logs, out)
				if !out.Cells[0].HasTag("parameters") || !out.Cells[1].HasTag(notebook.TagInjectedParameters) || !strings.Contains(out.Cells[1].Source, `msg = "Hello"`) {
					t.Fatalf("injected cell: %q tags %v", out.Cells[1].Source, out.Cells[1].Tags)
				}
				if out.Metadata.Papermill.Parameters["msg"] != "Hello" {
					t.Fatalf("metadata.papermill.parameters = %v", out.Metadata.Papermill.Parameters)
				}
			}},
		{name: "simple_execute_quotes", req: jobs.StartRequest{Path: "simple_execute.ipynb", Options: runopts.Options{Parameters: map[string]any{"msg": `"Hello"`}}}, status: workflows.StatusSucceeded, check: logsHave(`"Hello"`)},
		{name: "simple_execute_backslashes", req: jobs.StartRequest{Path: "simple_execute.ipynb", Options: runopts.Options{Parameters: map[string]any{"msg": `do\ not\ crash`}}}, status: workflows.StatusSucceeded, check: logsHave(`do\ not\ crash`)},
		{name: "complex_parameters_fails", req: jobs.StartRequest{Path: "complex_parameters.ipynb"}, status: workflows.StatusFailed, check: failedAt(0, "SyntaxError")},
		{name: "no_parameters", req: jobs.StartRequest{Path: "no_parameters.ipynb", Options: runopts.Options{Parameters: map[string]any{"msg": "Hello"}}}, status: workflows.StatusSucceeded,
			check: func(t *testing.T, st jobs.Status, logs string, out *notebook.Notebook) {
				if !out.Cells[0].HasTag(notebook.TagInjectedParameters) {
					t.Fatalf("the injected cell must go first: tags %v", out.Cells[0].Tags)
				}
				if !strings.Contains(strings.Join(st.Warnings, "\n")+logs, "does not contain a cell with tag 'parameters'") {
					t.Fatalf("no warning about the missing parameters cell: %v", st.Warnings)
				}
			}},
		{name: "nb_version_4.4", req: jobs.StartRequest{Path: "nb_version_4.4.ipynb", Options: runopts.Options{Parameters: map[string]any{"var": 2.0}}}, status: workflows.StatusSucceeded, check: logsHave("2")},
		{name: "report_mode_test", req: jobs.StartRequest{Path: "report_mode_test.ipynb", Options: runopts.Options{Parameters: map[string]any{"a": 2.0, "b": 3.0}}}, status: workflows.StatusSucceeded, check: logsHave("5")},
		{name: "result_no_exec", req: jobs.StartRequest{Path: "result_no_exec.ipynb", Options: runopts.Options{Parameters: map[string]any{"foo": 2.0, "bar": "x"}}}, status: workflows.StatusSucceeded},
		{name: "test_notebooknode_io", req: jobs.StartRequest{Path: "test_notebooknode_io.ipynb"}, status: workflows.StatusSucceeded, check: logsHave("Hello World")},
		{name: "blank-vscode", req: jobs.StartRequest{Path: "blank-vscode.ipynb"}, status: workflows.StatusSucceeded,
			check: func(t *testing.T, st jobs.Status, logs string, out *notebook.Notebook) {
				if st.Kernel != "python3" || !strings.Contains(logs+strings.Join(st.Warnings, "\n"), "python3") {
					t.Fatalf("kernel %q, warnings %v: the run must say it used the default python3", st.Kernel, st.Warnings)
				}
			}},
		{name: "sysexit0", req: jobs.StartRequest{Path: "sysexit0.ipynb"}, status: workflows.StatusSucceeded,
			check: func(t *testing.T, st jobs.Status, logs string, out *notebook.Notebook) {
				last := out.Cells[len(out.Cells)-1]
				if last.Type == notebook.CellCode && last.ExecutionCount != nil {
					t.Fatalf("the cell after sys.exit(0) ran")
				}
			}},
		{name: "sysexit", req: jobs.StartRequest{Path: "sysexit.ipynb"}, status: workflows.StatusSucceeded},
		{name: "systemexit", req: jobs.StartRequest{Path: "systemexit.ipynb"}, status: workflows.StatusSucceeded},
		{name: "sysexit1", req: jobs.StartRequest{Path: "sysexit1.ipynb"}, status: workflows.StatusFailed,
			check: func(t *testing.T, st jobs.Status, logs string, out *notebook.Notebook) {
				failedAt(1, "SystemExit")(t, st, logs, out)
				if st.Error.EValue != "1" {
					t.Fatalf("evalue %q, want 1", st.Error.EValue)
				}
			}},
		{name: "broken1", req: jobs.StartRequest{Path: "broken1.ipynb"}, status: workflows.StatusFailed, check: failedAt(6, "AssertionError")},
		{name: "broken2", req: jobs.StartRequest{Path: "broken2.ipynb"}, status: workflows.StatusFailed,
			check: func(t *testing.T, st jobs.Status, logs string, out *notebook.Notebook) {
				failedAt(1, "AssertionError")(t, st, logs, out)
				cell := out.Cells[*st.Error.OutputCellIndex]
				if len(cell.Outputs) < 2 || cell.Outputs[0].OutputType != "display_data" || cell.Outputs[len(cell.Outputs)-1].OutputType != "error" {
					t.Fatalf("outputs of the failing cell: want display_data kept before the error, got %d outputs", len(cell.Outputs))
				}
			}},
		{name: "broken", req: jobs.StartRequest{Path: "broken.ipynb"}, status: workflows.StatusFailed, check: failedAt(0, "SyntaxError")},
		{name: "line_magic_error", req: jobs.StartRequest{Path: "line_magic_error.ipynb"}, status: workflows.StatusFailed, check: failedAt(0, "UsageError")},
		{name: "test_logging", req: jobs.StartRequest{Path: "test_logging.ipynb"}, status: workflows.StatusFailed,
			check: func(t *testing.T, st jobs.Status, logs string, out *notebook.Notebook) {
				failedAt(2, "ModuleNotFoundError")(t, st, logs, out)
				i, j := strings.Index(logs, "test text"), strings.Index(logs, "hello world")
				if i < 0 || j < 0 || i > j {
					t.Fatalf("want the log record, then the print, in order:\n%s", logs)
				}
			}},
		{name: "keyboard_interrupt_cancel", req: jobs.StartRequest{Path: "keyboard_interrupt.ipynb"}, status: workflows.StatusCanceled, cancelAfter: 2 * time.Second},
		{name: "keyboard_interrupt_timeout", req: jobs.StartRequest{Path: "keyboard_interrupt.ipynb", Options: runopts.Options{TimeoutSeconds: 3}}, status: workflows.StatusTimedOut},
		{name: "test_autosave_missing_kernel", req: jobs.StartRequest{Path: "test_autosave.ipynb"}, status: workflows.StatusFailed,
			check: func(t *testing.T, st jobs.Status, logs string, out *notebook.Notebook) {
				if st.Error.Type != failure.TypeNoSuchKernel || !strings.Contains(st.Error.Message, "python") || !strings.Contains(st.Error.Message, "python3") || st.Attempt != 1 {
					t.Fatalf("got %+v on attempt %d, want a non-retried NoSuchKernel naming python and the available python3", st.Error, st.Attempt)
				}
				if st.Progress.CellsDone != 0 {
					t.Fatalf("%d cells ran", st.Progress.CellsDone)
				}
			}},
		{name: "test_autosave_python3", req: jobs.StartRequest{Path: "test_autosave.ipynb", Options: runopts.Options{Kernel: "python3"}}, status: workflows.StatusSucceeded,
			check: func(t *testing.T, st jobs.Status, logs string, out *notebook.Notebook) {
				var want []string
				for i := 0; i < 25; i++ {
					want = append(want, strconv.Itoa(i))
				}
				logsHave(want...)(t, st, logs, out)
			}},
		{name: "notimplemented_translator", req: jobs.StartRequest{Path: "notimplemented_translator.ipynb", Options: runopts.Options{Parameters: map[string]any{"msg": "x"}}}, status: workflows.StatusFailed,
			check: func(t *testing.T, st jobs.Status, logs string, out *notebook.Notebook) {
				if st.Error.Type != failure.TypeNoTranslator && st.Error.Type != failure.TypeNoSuchKernel || st.Attempt != 1 {
					t.Fatalf("got %+v on attempt %d, want a non-retried translator or kernel error", st.Error, st.Attempt)
				}
			}},
		{name: "read_check", req: jobs.StartRequest{Path: "read_check.ipynb", Options: runopts.Options{Cwd: checkDir}}, status: workflows.StatusSucceeded, check: logsHave("NB_CWD " + checkDir)},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			t.Parallel()
			env, kv := marker()
			row.req.Env = env
			run := start(t, svc, row.req)
			if row.cancelAfter > 0 {
				waitRunning(t, svc, run.JobID, -1)
				time.Sleep(row.cancelAfter)
				if _, err := svc.Cancel(context.Background(), run.JobID, "corpus row"); err != nil {
					t.Fatal(err)
				}
			}
			st := waitEnd(t, svc, run.JobID, 3*time.Minute)
			if st.Status != row.status {
				t.Fatalf("status %s (%+v), want %s", st.Status, st.Error, row.status)
			}
			if row.status != workflows.StatusSucceeded && st.Error == nil {
				t.Fatalf("a %s run must say why", st.Status)
			}
			assertNoProcesses(t, kv)
			if row.check == nil {
				return
			}
			out, err := notebook.Load(st.OutputPath)
			if err != nil && st.Status == workflows.StatusSucceeded {
				t.Fatalf("output notebook: %v", err)
			}
			row.check(t, st, logText(t, svc, run.JobID), out)
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
