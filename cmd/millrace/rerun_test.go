package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"millrace/internal/jobs"
	"millrace/internal/runopts"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// TestRerunFlags parses millrace rerun's command lines without a server:
// --from-cell and --allow-partial reach the service's options, and
// meaningless combinations are usage errors.
func TestRerunFlags(t *testing.T) {
	c := newCLI(&bytes.Buffer{}, &bytes.Buffer{}, nil)
	for _, tc := range []struct {
		args []string
		want jobs.RerunOptions
	}{
		{[]string{"nb-1"}, jobs.RerunOptions{}},
		{[]string{"nb-1", "--from-cell", "12"}, jobs.RerunOptions{FromCell: 12}},
		{[]string{"--from-cell=3", "--allow-partial", "batch-1"}, jobs.RerunOptions{FromCell: 3, AllowPartial: true}},
	} {
		a, err := parseRerun(c, rerunCommand(), tc.args)
		if err != nil || a.opts != tc.want || a.id != tc.args[0] && !strings.HasPrefix(a.id, "batch-") {
			t.Errorf("%q: %+v %v, want %+v", tc.args, a, err, tc.want)
		}
	}
	for args, want := range map[string]string{
		"nb-1 --from-cell -2":     "--from-cell -2",
		"nb-1 --allow-partial":    "--allow-partial applies to a rerun with --from-cell",
		"nb-1 --from-cell twelve": "invalid value",
		"--from-cell 3":           "missing ID",
		"nb-1 nb-2 --from-cell 3": "unexpected argument",
	} {
		_, err := parseRerun(c, rerunCommand(), strings.Fields(args))
		var u *usageError
		if !errors.As(err, &u) || !strings.Contains(u.msg, want) {
			t.Errorf("%q: %v, want a usage error saying %q", args, err, want)
		}
	}
	var help bytes.Buffer
	if _, err := parseRerun(newCLI(&help, &bytes.Buffer{}, nil), rerunCommand(), []string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	for _, w := range []string{"--from-cell N", "--allow-partial", "millrace rerun nb-... --from-cell 12", "a large N: each node's latest"} {
		if !strings.Contains(help.String(), w) {
			t.Errorf("help does not say %q:\n%s", w, help.String())
		}
	}
}

// TestRerunFromCellCommand: millrace rerun --from-cell on a run that failed
// at cell 2 of a notebook since fixed says where it resumes, watches the
// new job to its success, and the cells before 2 did not run again.
func TestRerunFromCellCommand(t *testing.T) {
	e := setup(t)
	log := filepath.Join(e.root, "cells.log")
	cells := func(bug string) []string {
		return []string{
			testenv.ParametersPrefix + "log = 'cells.log'",
			"x = 1\nopen(log, 'a').write('cell 1\\n')",
			"open(log, 'a').write('cell 2\\n')\n" + bug + "print('RESULT', x + 1)",
		}
	}
	testenv.WriteNotebook(t, e.root, "loop.ipynb", cells("raise ValueError('bug')\n")...)
	started, err := e.svc.Start(context.Background(), jobs.StartRequest{Path: "loop.ipynb", Options: runopts.Options{
		MaxAttempts: 1, Checkpoint: workflows.CheckpointEveryCell, Parameters: map[string]any{"log": log},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := e.svc.WaitEnded(context.Background(), started.JobID, 2*time.Minute, nil); err != nil || st.Status != workflows.StatusFailed {
		t.Fatalf("first run: %s %v", st.Status, err)
	}
	testenv.WriteNotebook(t, e.root, "loop.ipynb", cells("")...)
	r := e.millrace(t, append([]string{"rerun", started.JobID, "--from-cell", "2"}, e.flags()...)...)
	wantCode(t, r, 0)
	if !strings.Contains(r.stderr, "resumes from the checkpoint "+started.JobID+" took after cell 1") {
		t.Errorf("millrace rerun --from-cell does not say where it resumes:\n%s", r)
	}
	if b, _ := os.ReadFile(log); string(b) != "cell 1\ncell 2\ncell 2\n" {
		t.Errorf("cells run: %q", b)
	}
	r = e.millrace(t, append([]string{"rerun", started.JobID, "--from-cell", "7"}, e.flags()...)...)
	if r.code == 0 || !strings.Contains(r.stderr, "from_cell must be 1 to 2") {
		t.Errorf("--from-cell past the notebook:\n%s", r)
	}
}
