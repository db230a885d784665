package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"millrace/internal/jobs"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// writeBatch writes a batch file of stage nodes into the test's root.
func (e *env) writeBatch(t *testing.T, yaml string) string {
	t.Helper()
	e.notebook(t, filepath.Join(testenv.RepoRoot(), "internal", "jobs", "testdata", "stage.ipynb"))
	p := filepath.Join(e.root, "batch.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBatchRunsTheFileAndRerunFinishesIt(t *testing.T) {
	e := setup(t)
	flag := filepath.Join(e.root, "broken")
	os.WriteFile(flag, []byte("x"), 0o644)
	file := e.writeBatch(t, `name: cli-batch
max_parallel: 2
nodes:
  - id: first
    path: stage.ipynb
    parameters: {name: first, sleep: 0.1}
  - id: second
    path: stage.ipynb
    depends_on: [first]
    parameters: {name: second, sleep: 0.1, fail_if: `+flag+`, inputs: ["${first.output_path}"]}
  - id: third
    path: stage.ipynb
    depends_on: [second]
    parameters: {name: third, sleep: 0.1}
`)
	r := e.millrace(t, "batch", file)
	if r.code != 1 || !strings.Contains(r.stdout, "FAILED") || !strings.Contains(r.stdout, "SKIPPED") {
		t.Fatalf("want exit 1 with second FAILED and third SKIPPED:\n%s", r)
	}
	// Plain lines, not a redrawn table, when stderr is not a terminal.
	if !strings.Contains(r.stderr, "first") || strings.Contains(r.stderr, "\x1b[") {
		t.Fatalf("plain progress lines expected on a pipe:\n%s", r.stderr)
	}
	batchID := strings.Fields(lastLine(r.stdout))[2]
	if !strings.HasPrefix(batchID, workflows.BatchIDPrefix) {
		t.Fatalf("last line %q does not name the batch", lastLine(r.stdout))
	}

	os.Remove(flag)
	r = e.millrace(t, "rerun", batchID, "--json")
	if r.code != 0 {
		t.Fatalf("rerun:\n%s", r)
	}
	var st jobs.BatchStatus
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("rerun --json: %v\n%s", err, r.stdout)
	}
	if st.Status != workflows.StatusSucceeded || st.Round != 2 || !st.Nodes[0].Reused || st.Nodes[1].Reused {
		t.Fatalf("rerun: %+v", st)
	}
	// The batch's nodes are jobs, listed by batch.
	r = e.millrace(t, "jobs", "--batch", batchID, "--json")
	var list jobs.List
	// first, second (failed), then second and third in round 2: third never
	// started in round 1.
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Jobs) != 4 {
		t.Fatalf("jobs --batch: %d jobs (%v)\n%s", len(list.Jobs), err, r)
	}
}

func TestBatchCancelAndBadFiles(t *testing.T) {
	e := setup(t)
	file := e.writeBatch(t, `nodes:
  - id: long
    path: stage.ipynb
    parameters: {sleep: 60}
`)
	r := e.millrace(t, "batch", file, "--detach")
	if r.code != 0 {
		t.Fatalf("batch --detach:\n%s", r)
	}
	id := strings.TrimSpace(r.stdout)
	r = e.millrace(t, "cancel", id)
	if r.code != 0 || !strings.Contains(r.stdout, "CANCELED") {
		t.Fatalf("cancel %s:\n%s", id, r)
	}
	if r = e.millrace(t, "cancel", id); r.code != 2 || !strings.Contains(r.stderr, "already ended") {
		t.Fatalf("second cancel:\n%s", r)
	}

	cyc := e.writeBatch(t, "nodes:\n  - {id: a, path: stage.ipynb, depends_on: [b]}\n  - {id: b, path: stage.ipynb, depends_on: [a]}\n")
	if r = e.millrace(t, "batch", cyc); r.code != 2 || !strings.Contains(r.stderr, "cycle") {
		t.Fatalf("cycle:\n%s", r)
	}
	typo := e.writeBatch(t, "nodes:\n  - {id: a, path: stage.ipynb, dependson: [b]}\n")
	if r = e.millrace(t, "batch", typo); r.code != 2 || !strings.Contains(r.stderr, "dependson") {
		t.Fatalf("unknown key:\n%s", r)
	}
}
