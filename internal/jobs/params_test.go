package jobs_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"millrace/internal/jobs"
	"millrace/internal/notebook"
	"millrace/internal/runopts"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// paramsService is a job service on a folder holding typed_parameters.ipynb,
// with a worker.
func paramsService(t *testing.T) *jobs.Service {
	t.Helper()
	dir := t.TempDir()
	testenv.CopyFile(t, testenv.Testdata("typed_parameters.ipynb"), dir)
	cfg := server.Config(t)
	server.StartWorker(t, cfg)
	return server.Service(t, cfg, dir)
}

// typeLines runs the notebook to its end and returns what it printed about
// each parameter: "TYPE name type repr" lines by name.
func typeLines(t *testing.T, svc *jobs.Service, jobID string) (jobs.Status, map[string]string) {
	t.Helper()
	var st jobs.Status
	testenv.Eventually(t, 3*time.Minute, "job "+jobID+" to end", func() bool {
		var err error
		st, err = svc.Status(context.Background(), jobID)
		if err != nil {
			t.Fatal(err)
		}
		return st.Ended()
	})
	if st.Status != workflows.StatusSucceeded {
		t.Fatalf("job %s: %s %+v", jobID, st.Status, st.Error)
	}
	page, err := svc.Logs(context.Background(), jobs.LogsRequest{JobID: jobID, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, l := range page.Lines {
		if f := strings.Fields(l.Text); len(f) >= 3 && f[0] == "TYPE" {
			out[f[1]] = strings.Join(f[2:], " ")
		}
	}
	return st, out
}

// TestParametersLikePapermill runs the calls papermill runs correctly and
// refuses the ones that would certainly fail, on the real server and a
// real kernel.
func TestParametersLikePapermill(t *testing.T) {
	svc := paramsService(t)
	ctx := context.Background()
	start := func(req jobs.StartRequest) (jobs.Started, error) {
		req.Path = "typed_parameters.ipynb"
		return svc.Start(ctx, req)
	}

	// None for a type inferred from a default, and for an Optional
	// annotation; a whole number for a float default arrives as a float.
	loose, err := start(jobs.StartRequest{Options: runopts.Options{Parameters: map[string]any{"nothing": nil, "seed": nil, "lr": int64(1)}}})
	if err != nil {
		t.Fatalf("None for nothing and seed, 1 for lr: %v", err)
	}
	// A string for an annotated int, with type checks off.
	unchecked, err := start(jobs.StartRequest{Options: runopts.Options{Parameters: map[string]any{"epochs": "five"}, NoTypeCheck: true}})
	if err != nil {
		t.Fatalf("a string for epochs with type checks off: %v", err)
	}
	const warning = `parameter "epochs" expects int (declared int), got string "five"; passed unchecked (type checks are off)`
	if len(unchecked.Warnings) != 1 || unchecked.Warnings[0] != warning {
		t.Errorf("started warnings = %q, want %q", unchecked.Warnings, warning)
	}

	// Refused, with the reason: None for an annotated int, a string for a
	// number (annotated or not).
	for _, c := range []struct {
		values map[string]any
		want   string
	}{
		{map[string]any{"epochs": nil}, `parameter "epochs" expects int (declared int), got null`},
		{map[string]any{"epochs": "five"}, `parameter "epochs" expects int (declared int), got string "five"`},
		{map[string]any{"nothing": "5"}, `parameter "nothing" expects int or None (default 0), got string "5"`},
		{map[string]any{"lr": "0.5"}, `parameter "lr" expects float or None (default 0.1), got string "0.5"`},
	} {
		_, err := start(jobs.StartRequest{Options: runopts.Options{Parameters: c.values}})
		if !jobs.IsUserError(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want a user error containing %q", c.values, err, c.want)
		}
	}

	st, types := typeLines(t, svc, loose.JobID)
	for name, want := range map[string]string{"nothing": "NoneType None", "seed": "NoneType None", "lr": "float 1.0", "epochs": "int 3"} {
		if types[name] != want {
			t.Errorf("%s: the kernel has %q, want %q", name, types[name], want)
		}
	}
	out, err := notebook.Load(st.OutputPath)
	if err != nil {
		t.Fatal(err)
	}
	if src := out.Cells[1].Source; !strings.Contains(src, "\nlr = 1.0\n") || !strings.Contains(src, "\nnothing = None\n") {
		t.Errorf("injected cell:\n%s", src)
	}

	st, types = typeLines(t, svc, unchecked.JobID)
	if types["epochs"] != "str 'five'" {
		t.Errorf("epochs: the kernel has %q, want the string passed unchecked", types["epochs"])
	}
	if len(st.Warnings) == 0 || st.Warnings[0] != warning {
		t.Errorf("status warnings = %q, want %q first", st.Warnings, warning)
	}
}

// TestBatchReportsEveryProblem: one batch with a cycle, a missing
// notebook, an unknown dependency, an unknown parameter and a type error
// gets one error naming each, and starts nothing.
func TestBatchReportsEveryProblem(t *testing.T) {
	svc := paramsService(t)
	node := func(id string, deps ...string) jobs.BatchNodeRequest {
		return jobs.BatchNodeRequest{ID: id, Path: "typed_parameters.ipynb", DependsOn: deps, Options: runopts.Options{MaxAttempts: 1}}
	}
	cycleA, cycleB := node("a", "b"), node("b", "a")
	missing := node("c")
	missing.Path = "missing.ipynb"
	ghost := node("d", "ghost")
	unknown := node("e")
	unknown.Parameters = map[string]any{"bogus": 1}
	typed := node("f")
	typed.Parameters = map[string]any{"epochs": "five"}
	req := jobs.BatchRequest{Nodes: []jobs.BatchNodeRequest{cycleA, cycleB, missing, ghost, unknown, typed}}

	_, err := svc.StartBatch(context.Background(), req)
	if !jobs.IsUserError(err) {
		t.Fatalf("got %v, want a user error", err)
	}
	for _, want := range []string{
		`node d depends on "ghost", which is not a node of this batch`,
		"the dependencies form a cycle: a -> b -> a",
		"node c: notebook: missing.ipynb does not exist",
		`node e: unknown parameter "bogus"`,
		`node f: parameter "epochs" expects int (declared int), got string "five"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if err2 := svc.ValidateBatch(req); err2 == nil || err2.Error() != err.Error() {
		t.Errorf("ValidateBatch = %v, want the same error as StartBatch", err2)
	}
	// The cycle alone is reported with the nodes' own problems too.
	_, err = svc.StartBatch(context.Background(), jobs.BatchRequest{Nodes: []jobs.BatchNodeRequest{cycleA, cycleB, missing}})
	if err == nil || !strings.Contains(err.Error(), "cycle") || !strings.Contains(err.Error(), "node c: notebook") {
		t.Errorf("cycle and missing notebook: %v", err)
	}
	list, err := svc.List(context.Background(), jobs.ListRequest{})
	if err != nil || len(list.Jobs) != 0 {
		t.Fatalf("invalid batches started %d jobs (%v)", len(list.Jobs), err)
	}

	// The escape hatch, per node and for the whole batch: the type error
	// becomes the node's warning and the batch runs.
	for _, whole := range []bool{false, true} {
		f := typed
		f.NoTypeCheck = !whole
		started, err := svc.StartBatch(context.Background(), jobs.BatchRequest{Nodes: []jobs.BatchNodeRequest{f}, NoTypeCheck: whole})
		if err != nil {
			t.Fatalf("no_type_check (batch-wide %v): %v", whole, err)
		}
		if w := started.Nodes[0].Warnings; len(w) != 1 || !strings.Contains(w[0], `"epochs" expects int`) || !strings.Contains(w[0], "passed unchecked") {
			t.Errorf("node warnings = %q", w)
		}
		if st := waitBatch(t, svc, started.BatchID); st.Status != workflows.StatusSucceeded {
			t.Errorf("batch with type checks off: %s %v", st.Status, nodeStatuses(st))
		}
	}
}
