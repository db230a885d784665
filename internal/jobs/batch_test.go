package jobs_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"millrace/internal/jobs"
	"millrace/internal/runopts"
	"millrace/internal/testenv"
	"millrace/workflows"
)

func batchSetup(t *testing.T) (*jobs.Service, string) {
	t.Helper()
	dir := t.TempDir()
	testenv.CopyFile(t, "testdata/stage.ipynb", dir)
	cfg := server.Config(t)
	server.StartWorker(t, cfg)
	return server.Service(t, cfg, dir), dir
}

func stage(id string, sleep float64, deps ...string) jobs.BatchNodeRequest {
	return jobs.BatchNodeRequest{
		ID:        id,
		Path:      "stage.ipynb",
		DependsOn: deps,
		Options:   runopts.Options{MaxAttempts: 1, Parameters: map[string]any{"name": id, "sleep": sleep}},
	}
}

func waitBatch(t *testing.T, svc *jobs.Service, id string) jobs.BatchStatus {
	t.Helper()
	var st jobs.BatchStatus
	testenv.Eventually(t, 4*time.Minute, "the batch to end", func() bool {
		var err error
		st, err = svc.BatchStatus(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		return st.Ended()
	})
	return st
}

func nodeStatuses(st jobs.BatchStatus) map[string]string {
	out := map[string]string{}
	for _, n := range st.Nodes {
		out[n.ID] = n.Status
	}
	return out
}

type stageRecord struct {
	Start, End float64
	Inputs     []string
}

func readStage(t *testing.T, dir, name string) stageRecord {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name+".json"))
	if err != nil {
		t.Fatalf("stage %s left no record: %v", name, err)
	}
	var r stageRecord
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestBatchDiamond runs a -> (b, c) -> d on the real server: b and c
// overlap, and d receives both upstream output notebooks.
func TestBatchDiamond(t *testing.T) {
	svc, dir := batchSetup(t)
	a := stage("a", 0.2)
	b := stage("b", 3, "a")
	b.Parameters["inputs"] = []any{"${a.output_path}"}
	c := stage("c", 3, "a")
	c.Parameters["inputs"] = []any{"${a.output_path}"}
	d := stage("d", 0.2, "b", "c")
	d.Parameters["inputs"] = []any{"${b.output_path}", "${c.output_path}", "sleep of b was ${b.parameters.sleep}"}
	started, err := svc.StartBatch(context.Background(), jobs.BatchRequest{Name: "diamond", Nodes: []jobs.BatchNodeRequest{a, b, c, d}, MaxParallel: 2, Labels: []string{"diamond"}})
	if err != nil {
		t.Fatal(err)
	}
	st := waitBatch(t, svc, started.BatchID)
	if st.Status != workflows.StatusSucceeded {
		t.Fatalf("batch %s: %v", st.Status, nodeStatuses(st))
	}
	rb, rc, rd := readStage(t, dir, "b"), readStage(t, dir, "c"), readStage(t, dir, "d")
	if !(rb.Start < rc.End && rc.Start < rb.End) {
		t.Fatalf("b [%f, %f] and c [%f, %f] did not overlap", rb.Start, rb.End, rc.Start, rc.End)
	}
	outputs := map[string]string{}
	for _, n := range started.Nodes {
		outputs[n.ID] = n.OutputPath
	}
	want := []string{outputs["b"], outputs["c"], "sleep of b was 3"}
	if strings.Join(rd.Inputs, "|") != strings.Join(want, "|") {
		t.Fatalf("d got inputs %q, want %q", rd.Inputs, want)
	}
	for _, p := range want[:2] {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("upstream output %s: %v", p, err)
		}
	}
	// Every node is an ordinary job, listed with its batch id.
	list, err := svc.List(context.Background(), jobs.ListRequest{BatchID: started.BatchID})
	if err != nil || len(list.Jobs) != 4 {
		t.Fatalf("list by batch: %d jobs %v", len(list.Jobs), err)
	}
	js, err := svc.Status(context.Background(), started.Nodes[3].JobID)
	if err != nil || js.Status != workflows.StatusSucceeded || js.BatchID != started.BatchID {
		t.Fatalf("node d as a job: %+v %v", js, err)
	}
	if !strings.Contains(st.Mermaid, "n_a --> n_b") || !strings.Contains(st.Mermaid, ":::succeeded") {
		t.Fatalf("mermaid:\n%s", st.Mermaid)
	}
}

// TestBatchFailureSkipsDependentsThenRerun fails a middle node: its
// dependents are skipped, an independent branch finishes; a rerun with the
// node fixed runs only what did not succeed.
func TestBatchFailureSkipsDependentsThenRerun(t *testing.T) {
	svc, dir := batchSetup(t)
	flag := filepath.Join(dir, "fail-middle")
	os.WriteFile(flag, []byte("1"), 0o644)
	a := stage("a", 0.1)
	mid := stage("mid", 0.1, "a")
	// The middle node fails while the flag file exists.
	mid.Parameters["fail_if"] = flag
	last := stage("last", 0.1, "mid")
	other := stage("other", 0.1)
	req := jobs.BatchRequest{Name: "chain", Nodes: []jobs.BatchNodeRequest{a, mid, last, other}}
	started, err := svc.StartBatch(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	st := waitBatch(t, svc, started.BatchID)
	got := nodeStatuses(st)
	if st.Status != workflows.StatusFailed || got["a"] != workflows.StatusSucceeded || got["mid"] != workflows.StatusFailed ||
		got["last"] != workflows.NodeSkipped || got["other"] != workflows.StatusSucceeded {
		t.Fatalf("batch %s nodes %v", st.Status, got)
	}
	aRecord := readStage(t, dir, "a")
	server.ReplayHistory(t, started.BatchID, "batch_node_failed")

	// Rerun: the request is replayed as it was; the cause of the failure
	// is fixed the way a user would, outside the batch.
	os.Remove(flag)
	if _, err := svc.RerunBatch(context.Background(), started.BatchID); err != nil {
		t.Fatal(err)
	}
	st2 := waitBatch(t, svc, started.BatchID)
	if st2.Round != 2 {
		t.Fatalf("round %d, want 2", st2.Round)
	}
	got = nodeStatuses(st2)
	for _, n := range st2.Nodes {
		if (n.ID == "a" || n.ID == "other") != n.Reused {
			t.Fatalf("node %s reused=%v", n.ID, n.Reused)
		}
	}
	if st2.Status != workflows.StatusSucceeded || got["mid"] != workflows.StatusSucceeded || got["last"] != workflows.StatusSucceeded {
		t.Fatalf("rerun: %s %v", st2.Status, got)
	}
	server.ReplayHistory(t, started.BatchID, "batch_rerun")
	if _, err := svc.RerunBatch(context.Background(), started.BatchID); !jobs.IsUserError(err) {
		t.Fatalf("rerun of a batch where everything succeeded: %v, want a user error", err)
	}
	if r := readStage(t, dir, "a"); r.Start != aRecord.Start {
		t.Fatal("node a ran again in the rerun")
	}
}

func TestBatchCancelLeavesNoProcess(t *testing.T) {
	svc, _ := batchSetup(t)
	long := stage("long", 60)
	long2 := stage("long2", 60)
	req := jobs.BatchRequest{Nodes: []jobs.BatchNodeRequest{long, long2, stage("after", 0.1, "long")}}
	started, err := svc.StartBatch(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, time.Minute, "both long nodes to run", func() bool {
		st, err := svc.BatchStatus(context.Background(), started.BatchID)
		if err != nil {
			t.Fatal(err)
		}
		running := 0
		for _, n := range st.Nodes {
			if n.Status == workflows.StatusRunning && n.Progress != nil && n.Progress.CurrentCell >= 2 {
				running++
			}
		}
		return running == 2
	})
	st, err := svc.CancelBatch(context.Background(), started.BatchID, "test")
	if err != nil {
		t.Fatal(err)
	}
	got := nodeStatuses(st)
	if st.Status != workflows.StatusCanceled || got["long"] != workflows.StatusCanceled || got["long2"] != workflows.StatusCanceled || got["after"] != workflows.NodeSkipped {
		t.Fatalf("after cancel: %s %v", st.Status, got)
	}
	for _, n := range started.Nodes[:2] {
		if procs := testenv.ProcessesWithEnv("MILLRACE_ATTEMPT_ID=" + n.JobID + ".1"); len(procs) > 0 {
			t.Fatalf("processes of %s left: %v", n.ID, procs)
		}
	}
	server.ReplayHistory(t, started.BatchID, "batch_canceled")
}

func TestBatchValidation(t *testing.T) {
	svc, _ := batchSetup(t)
	ok := func(id string, deps ...string) jobs.BatchNodeRequest { return stage(id, 0, deps...) }
	bad := func(n jobs.BatchNodeRequest, f func(*jobs.BatchNodeRequest)) jobs.BatchNodeRequest { f(&n); return n }
	many := make([]jobs.BatchNodeRequest, workflows.MaxBatchNodes+1)
	for i := range many {
		many[i] = ok("n" + strings.Repeat("x", i%3) + string(rune('a'+i%26)) + uuid.NewString()[:8])
	}
	cases := []struct {
		name  string
		nodes []jobs.BatchNodeRequest
		want  string
	}{
		{"empty", nil, "at least one node"},
		{"cycle", []jobs.BatchNodeRequest{ok("a", "c"), ok("b", "a"), ok("c", "b")}, "cycle: a -> c -> b -> a"},
		{"unknown dependency", []jobs.BatchNodeRequest{ok("a", "ghost")}, `depends on "ghost"`},
		{"duplicate id", []jobs.BatchNodeRequest{ok("a"), ok("a")}, `duplicate node id "a"`},
		{"empty id", []jobs.BatchNodeRequest{ok("")}, "has no id"},
		{"self dependency", []jobs.BatchNodeRequest{ok("a", "a")}, "depends on itself"},
		{"missing notebook", []jobs.BatchNodeRequest{bad(ok("a"), func(n *jobs.BatchNodeRequest) { n.Path = "nope.ipynb" })}, "node a: notebook: nope.ipynb does not exist"},
		{"bad parameter", []jobs.BatchNodeRequest{bad(ok("a"), func(n *jobs.BatchNodeRequest) { n.Parameters["sleep"] = "long" })}, "node a:"},
		{"unknown parameter", []jobs.BatchNodeRequest{bad(ok("a"), func(n *jobs.BatchNodeRequest) { n.Parameters["bogus"] = 1.0 })}, `unknown parameter "bogus"`},
		{"reference to a non-dependency", []jobs.BatchNodeRequest{ok("a"), bad(ok("b"), func(n *jobs.BatchNodeRequest) { n.Parameters["inputs"] = []any{"${a.output_path}"} })}, "not among this node's dependencies"},
		{"too many nodes", many, "at most 500"},
	}
	for _, c := range cases {
		_, err := svc.StartBatch(context.Background(), jobs.BatchRequest{Nodes: c.nodes})
		if !jobs.IsUserError(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want a user error containing %q", c.name, err, c.want)
		}
	}
	// Nothing was started by any of them.
	list, err := svc.List(context.Background(), jobs.ListRequest{})
	if err != nil || len(list.Jobs) != 0 {
		t.Fatalf("invalid batches started %d jobs (%v)", len(list.Jobs), err)
	}
}

// TestExamplePipeline runs examples/pipeline.yaml, the README's main job,
// through the batch file loader.
func TestExamplePipeline(t *testing.T) {
	root := testenv.RepoRoot()
	cfg := server.Config(t)
	// The work tree may lie outside the worker's default roots (home and
	// the temporary folder).
	cfg.Roots = []string{root}
	server.StartWorker(t, cfg)
	svc := server.Service(t, cfg, root)
	req, err := jobs.LoadBatchFile(filepath.Join(root, "examples", "pipeline.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	for i := range req.Nodes {
		req.Nodes[i].Parameters["work_dir"] = work // keep the work tree clean
	}
	req.Nodes[1].Parameters["work_dir"] = "${preprocess.parameters.work_dir}"
	started, err := svc.StartBatch(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	st := waitBatch(t, svc, started.BatchID)
	if st.Status != workflows.StatusSucceeded {
		t.Fatalf("pipeline %s: %v", st.Status, nodeStatuses(st))
	}
	if _, err := os.Stat(filepath.Join(work, "metrics.json")); err != nil {
		t.Fatalf("eval wrote no metrics: %v", err)
	}
	// train plots its loss: a PNG figure, which its page shows.
	out, err := svc.Output(context.Background(), jobs.OutputRequest{JobID: st.Nodes[1].JobID})
	if err != nil {
		t.Fatal(err)
	}
	figures := 0
	for _, c := range out.Cells {
		for _, a := range c.Attachments {
			if a.MimeType == "image/png" {
				figures++
			}
		}
	}
	if figures != 1 {
		t.Errorf("train shows %d PNG figures, want its loss curve", figures)
	}
}

func TestLoadBatchFileErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, uuid.NewString()+".yaml")
		os.WriteFile(p, []byte(s), 0o644)
		return p
	}
	for _, c := range []struct{ yaml, want string }{
		{"nodes:\n  - id: a\n    path: a.ipynb\n    dependson: [b]\n", "field dependson not found"},
		{"nodes: [", "batch file"},
		{"nodes:\n  - id: a\n    path: a.ipynb\n    parameters: {n: 2, x: 2.0}\n", ""},
	} {
		req, err := jobs.LoadBatchFile(write(c.yaml))
		if c.want == "" {
			if err != nil || req.Nodes[0].Path != filepath.Join(dir, "a.ipynb") || req.Nodes[0].Parameters["x"].(json.Number).String() != "2.0" {
				t.Fatalf("valid file: %+v %v", req, err)
			}
			continue
		}
		if !jobs.IsUserError(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want an error containing %q", err, c.want)
		}
	}
	if _, err := jobs.LoadBatchFile(filepath.Join(dir, "missing.yaml")); !jobs.IsUserError(err) {
		t.Fatalf("missing file: %v", err)
	}
}
