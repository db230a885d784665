package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"millrace/internal/jobs"
	"millrace/internal/nbhtml"
	"millrace/internal/rundir"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// TestOutputHTMLOfTheExamplePipeline runs the README's example pipeline
// as it is (a copy in the test's root, so its work folder stays there),
// then writes the train node's page with `millrace output --html -o`: the
// loss figure is in it, inline.
func TestOutputHTMLOfTheExamplePipeline(t *testing.T) {
	e := setup(t)
	examples := filepath.Join(testenv.RepoRoot(), "examples")
	file := testenv.CopyFile(t, filepath.Join(examples, "pipeline.yaml"), e.root)
	if err := os.Mkdir(filepath.Join(e.root, "pipeline"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"preprocess.ipynb", "train.ipynb", "eval.ipynb", "lineplot.py"} {
		testenv.CopyFile(t, filepath.Join(examples, "pipeline", f), filepath.Join(e.root, "pipeline"))
	}
	r := e.millrace(t, "batch", file, "--json")
	var st jobs.BatchStatus
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.Status != workflows.StatusSucceeded {
		t.Fatalf("the example pipeline: %v\n%s", err, r)
	}
	var train string
	for _, n := range st.Nodes {
		if n.ID == "train" {
			train = n.JobID
		}
	}

	page := filepath.Join(t.TempDir(), "train.html")
	r = e.millrace(t, "output", train, "--html", "-o", page)
	if r.code != 0 || !strings.Contains(r.stderr, "train.html") {
		t.Fatalf("output --html -o:\n%s", r)
	}
	b, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(page); fi.Mode().Perm() != 0o600 {
		t.Errorf("page mode %v, want 0600", fi.Mode().Perm())
	}
	html := string(b)
	// IPython breaks base64 into lines; a browser skips the breaks.
	if !regexp.MustCompile(`<img src="data:image/png;base64,[A-Za-z0-9+/=\s]{500,}"`).MatchString(html) {
		t.Error("the page has no inline PNG figure")
	}
	for _, want := range []string{"loss per epoch", "epoch 12/12", "<title>train.ipynb · " + train + "</title>", nbhtml.Policy} {
		if !strings.Contains(html, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	// The same page again, to stdout, from the run's cache.
	cache := filepath.Join(rundir.JobDir(e.cfg.DataDir, train), nbhtml.CacheName)
	before, err := os.Stat(cache)
	if err != nil {
		t.Fatalf("no cached page beside the output notebook: %v", err)
	}
	r = e.millrace(t, "output", train, "--html")
	if r.code != 0 || r.stdout != html {
		t.Fatalf("output --html to stdout: exit %d, same page %v\n%s", r.code, r.stdout == html, r.stderr)
	}
	if after, _ := os.Stat(cache); !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
		t.Error("the cached page was rebuilt for an unchanged notebook")
	}

	r = e.millrace(t, "output", train, "--html", "--from", "2")
	if r.code != 2 || !strings.Contains(r.stderr, "--from does not apply to --html") {
		t.Fatalf("--html --from:\n%s", r)
	}
	r = e.millrace(t, "output", train, "-o", page)
	if r.code != 2 || !strings.Contains(r.stderr, "add --html") {
		t.Fatalf("-o without --html:\n%s", r)
	}
}
