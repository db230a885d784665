package workflows

import "testing"

func TestValidRunID(t *testing.T) {
	const u = "0f8fad5b-d9cb-469f-a165-70867728950e"
	for id, want := range map[string]bool{
		"nb-" + u: true, "nb-" + u + ".prep.1": true, "nb-" + u + ".a-b_c.12": true,
		"nb-" + u + ".": false, "nb-" + u + ".x": false, "nb-" + u + ".x.": false, "nb-" + u + ".x.1a": false,
		"nb-" + u + "/../x": false, "nb-../../etc": false, "batch-" + u: false, "nb-" + u[:35]: false,
		"nb-0F8FAD5B-D9CB-469F-A165-70867728950E": false, "nb-" + u + ".x/y.1": false, "": false,
	} {
		if got := ValidRunID(id); got != want {
			t.Errorf("ValidRunID(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestPathScope(t *testing.T) {
	a := RunScope(RunInput{Notebook: "/r/p/a.ipynb", Output: "/r/out/a.ipynb", Cwd: "/r/p"})
	b := RunScope(RunInput{Notebook: "/r/q/b.ipynb", Output: "/data/runs/x/output.ipynb", DefaultOutput: true, Cwd: "/r/q/sub"})
	if a != (PathScope{NotebookDir: "/r/p", OutputDir: "/r/out", Cwd: "/r/p"}) || b.OutputDir != "" {
		t.Errorf("RunScope = %+v, %+v", a, b)
	}
	if got, want := a.Join(b), (PathScope{NotebookDir: "/r", OutputDir: "/r/out", Cwd: "/r"}); got != want {
		t.Errorf("Join = %+v, want %+v", got, want)
	}
	for _, c := range [][3]string{{"/ab/x", "/a/yy", "/"}, {"/a/b", "/a/b/c", "/a/b"}, {"/a", "/b", "/"}, {"", "/x", "/x"}} {
		if got := commonDir(c[0], c[1]); got != c[2] {
			t.Errorf("commonDir(%q, %q) = %q, want %q", c[0], c[1], got, c[2])
		}
	}
}
