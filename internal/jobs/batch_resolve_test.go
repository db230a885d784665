package jobs

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"millrace/internal/paths"
	"millrace/internal/runopts"
	"millrace/workflows"
)

// TestRerunResolvesReferencesThroughReusedNodes: in a rerun, a node that
// refers to a parameter of a reused node whose own value is a reference
// gets the value, as in the first round, not the reference's text (which
// would also make a resume refuse the node for other parameters).
func TestRerunResolvesReferencesThroughReusedNodes(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile("testdata/stage.ipynb")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "stage.ipynb"), b, 0o644)
	roots, err := paths.NewRoots([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	s := &Service{DataDir: t.TempDir(), Roots: roots}
	node := func(id string, params map[string]any, deps ...string) BatchNodeRequest {
		return BatchNodeRequest{ID: id, Path: "stage.ipynb", DependsOn: deps, Options: runopts.Options{Parameters: params}}
	}
	req := BatchRequest{Nodes: []BatchNodeRequest{
		node("a", map[string]any{"name": "a", "sleep": 0.1}),
		node("b", map[string]any{"name": "b", "sleep": "${a.parameters.sleep}"}, "a"),
		node("c", map[string]any{"name": "c", "sleep": "${b.parameters.sleep}"}, "b"),
	}}
	const id = workflows.BatchIDPrefix + "t"
	first, err := s.resolveBatch(id, req, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	reuse := map[string]workflows.NodeState{}
	for _, n := range first.Nodes[:2] {
		reuse[n.ID] = workflows.NodeState{ID: n.ID, JobID: n.JobID, Notebook: n.Run.Notebook, Output: n.Run.Output}
	}
	second, err := s.resolveBatch(id, req, 2, reuse)
	if err != nil {
		t.Fatal(err)
	}
	var p1, p2 map[string]any
	json.Unmarshal(first.Nodes[2].Run.Parameters, &p1)
	json.Unmarshal(second.Nodes[2].Run.Parameters, &p2)
	if p1["sleep"] != 0.1 || p2["sleep"] != 0.1 {
		t.Fatalf("c's sleep: round 1 %v, round 2 %v; want 0.1 both", p1["sleep"], p2["sleep"])
	}
}
