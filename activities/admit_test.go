package activities

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"millrace/internal/paths"
	"millrace/internal/rundir"
	"millrace/workflows"
)

// TestAdmitResolvesBeneathBothRoots: the worker opens a run's files beneath
// its own roots and the run's, at the moment it admits the run.
func TestAdmitResolvesBeneathBothRoots(t *testing.T) {
	base := t.TempDir()
	wide, err := paths.NewRoots([]string{base})
	if err != nil {
		t.Fatal(err)
	}
	root, outside := filepath.Join(base, "root"), filepath.Join(base, "outside")
	for _, d := range []string{filepath.Join(root, "work"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	nb := filepath.Join(root, "nb.ipynb")
	if err := os.WriteFile(nb, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	a := &Activities{DataDir: filepath.Join(base, "data"), Roots: wide}
	const id = "nb-0f8fad5b-d9cb-469f-a165-70867728950e"
	in := workflows.RunInput{Notebook: nb, Cwd: filepath.Join(root, "work"), Output: filepath.Join(root, "out", "o.ipynb"), Roots: []string{root}}

	ad, err := a.admit(id, in, in.Output)
	if err != nil {
		t.Fatalf("admit = %v", err)
	}
	ad.Close()
	if st, err := os.Stat(filepath.Join(root, "out")); err != nil || !st.IsDir() {
		t.Errorf("the output folder was not created: %v", err)
	}
	def := rundir.DefaultOutput(a.DataDir, id)
	if ad, err := a.admit(id, in, def); err != nil {
		t.Errorf("admit with the default output = %v", err)
	} else {
		ad.Close()
	}

	// The worker's roots hold the outside folder; the run's do not.
	refused := func(what string, in workflows.RunInput, output, want string) {
		t.Helper()
		_, err := a.admit(id, in, output)
		var r *refusal
		if !errors.As(err, &r) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: admit = %v; want a refusal saying %q", what, err, want)
		}
		if want == "symlink" && err != nil && strings.Contains(err.Error(), outside) {
			t.Errorf("%s: the refusal names the symlink's target: %v", what, err)
		}
	}
	os.RemoveAll(filepath.Join(root, "out"))
	if err := os.Symlink(outside, filepath.Join(root, "out")); err != nil {
		t.Fatal(err)
	}
	refused("output folder swapped for a symlink", in, in.Output, "symlink")
	if err := os.Symlink(outside, filepath.Join(root, "work2")); err != nil {
		t.Fatal(err)
	}
	cwd := in
	cwd.Cwd = filepath.Join(root, "work2")
	refused("cwd swapped for a symlink", cwd, filepath.Join(root, "x.ipynb"), "symlink")
	out := in
	out.Notebook = filepath.Join(outside, "nb.ipynb")
	refused("notebook outside the run's roots", out, filepath.Join(root, "x.ipynb"), "outside")
	env := in
	env.Env = map[string]string{"LD_PRELOAD": "/x.so"}
	refused("loader env", env, filepath.Join(root, "x.ipynb"), "LD_PRELOAD")
	forged := in
	forged.Roots = []string{filepath.Join(base, "missing")}
	refused("a run root that does not exist", forged, filepath.Join(root, "x.ipynb"), "roots the run was started with")
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("admit created %v outside", entries)
	}
	if err := checkJobID("nb-../../x"); err == nil {
		t.Error("checkJobID accepted a path")
	}
}
