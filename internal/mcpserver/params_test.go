package mcpserver_test

import (
	"strings"
	"testing"

	"millrace/internal/jobs"
	"millrace/internal/mcpserver"
	"millrace/internal/notebook"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// kernelTypes reads what typed_parameters.ipynb printed about each
// parameter ("TYPE name type repr") through get_job_logs.
func kernelTypes(t *testing.T, e *env, jobID string) map[string]string {
	t.Helper()
	logs, _ := call[jobs.Logs](t, e.client, "get_job_logs", map[string]any{"job_id": jobID})
	out := map[string]string{}
	for _, l := range logs.Lines {
		if f := strings.Fields(l.Text); len(f) >= 3 && f[0] == "TYPE" {
			out[f[1]] = strings.Join(f[2:], " ")
		}
	}
	return out
}

// TestParametersLikePapermillOverMCP: JSON null for a type inferred from a
// default or an Optional annotation runs, an int for a float arrives as a
// float, a string for an int is refused, then runs with no_type_check and
// a warning.
func TestParametersLikePapermillOverMCP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.Testdata("typed_parameters.ipynb"))
	const nb = "typed_parameters.ipynb"

	started, _ := call[mcpserver.StartNotebookResult](t, e.client, "start_notebook", map[string]any{
		"path": nb, "parameters": map[string]any{"nothing": nil, "seed": nil, "lr": 1}, "wait_seconds": 50})
	if !started.Ended || started.Job.Status != workflows.StatusSucceeded {
		t.Fatalf("null and an int for a float: %+v", started)
	}
	types := kernelTypes(t, e, started.JobID)
	for name, want := range map[string]string{"nothing": "NoneType None", "seed": "NoneType None", "lr": "float 1.0"} {
		if types[name] != want {
			t.Errorf("%s: the kernel has %q, want %q", name, types[name], want)
		}
	}
	out, err := notebook.Load(started.OutputPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.Cells[1].Source, "\nlr = 1.0\n") {
		t.Errorf("injected cell:\n%s", out.Cells[1].Source)
	}

	if msg := callError(t, e.client, "start_notebook", map[string]any{"path": nb, "parameters": map[string]any{"epochs": nil}}); !strings.Contains(msg, `parameter "epochs" expects int (declared int), got null`) {
		t.Errorf("null for an annotated int: %q", msg)
	}
	msg := callError(t, e.client, "start_notebook", map[string]any{"path": nb, "parameters": map[string]any{"epochs": "five"}})
	if !strings.Contains(msg, `parameter "epochs" expects int (declared int), got string "five"`) {
		t.Errorf("a string for an int: %q", msg)
	}

	loose, text := call[mcpserver.StartNotebookResult](t, e.client, "start_notebook", map[string]any{
		"path": nb, "parameters": map[string]any{"epochs": "five"}, "no_type_check": true, "wait_seconds": 50})
	const warning = `parameter "epochs" expects int (declared int), got string "five"; passed unchecked (type checks are off)`
	if len(loose.Warnings) != 1 || loose.Warnings[0] != warning || !strings.Contains(text, "warning: "+warning) {
		t.Errorf("no_type_check: warnings %q, text %q", loose.Warnings, text)
	}
	st := waitEnded(t, e.client, loose.JobID)
	if st.Status != workflows.StatusSucceeded || len(st.Warnings) == 0 || st.Warnings[0] != warning {
		t.Errorf("status %s, warnings %q", st.Status, st.Warnings)
	}
	if got := kernelTypes(t, e, loose.JobID)["epochs"]; got != "str 'five'" {
		t.Errorf("epochs: the kernel has %q, want the string passed unchecked", got)
	}
}

// TestStartBatchReportsEveryProblem: start_batch names every problem of a
// batch in one tool error, and no_type_check lets a type error through.
func TestStartBatchReportsEveryProblem(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.Testdata("typed_parameters.ipynb"))
	node := func(id string, extra map[string]any) map[string]any {
		n := map[string]any{"id": id, "path": "typed_parameters.ipynb"}
		for k, v := range extra {
			n[k] = v
		}
		return n
	}
	msg := callError(t, e.client, "start_batch", map[string]any{"nodes": []any{
		node("a", map[string]any{"depends_on": []string{"b"}}),
		node("b", map[string]any{"depends_on": []string{"a"}}),
		node("c", map[string]any{"path": "missing.ipynb"}),
		node("d", map[string]any{"depends_on": []string{"ghost"}}),
		node("e", map[string]any{"parameters": map[string]any{"bogus": 1}}),
		node("f", map[string]any{"parameters": map[string]any{"epochs": "five"}}),
	}})
	for _, want := range []string{"cycle: a -> b -> a", "node c: notebook: missing.ipynb does not exist", `depends on "ghost"`, `node e: unknown parameter "bogus"`, `node f: parameter "epochs" expects int`} {
		if !strings.Contains(msg, want) {
			t.Errorf("start_batch error lacks %q:\n%s", want, msg)
		}
	}
	started, text := call[jobs.BatchStarted](t, e.client, "start_batch", map[string]any{"no_type_check": true, "nodes": []any{
		node("f", map[string]any{"parameters": map[string]any{"epochs": "five"}}),
	}})
	if w := started.Nodes[0].Warnings; len(w) != 1 || !strings.Contains(w[0], "passed unchecked") || !strings.Contains(text, "warning: node f:") {
		t.Errorf("no_type_check: node warnings %q, text %q", w, text)
	}
}
