package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"millrace/internal/jobs"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// lastLine is the last non-blank line of text.
func lastLine(text string) string {
	lines := strings.Split(strings.TrimRight(text, "\n "), "\n")
	return lines[len(lines)-1]
}

func TestRunTypesParametersAsPapermillAndReadCommandsShowTheJob(t *testing.T) {
	e := setup(t)
	nb := e.notebook(t, typesNotebook)
	params := filepath.Join(e.root, "params.yaml")
	// PyYAML (papermill's loader) reads yes as True and 1e3 as a string.
	if err := os.WriteFile(params, []byte("lst: [1, two, 2.5]\nyes_flag: yes\ne: 1e3\ns: from the file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.millrace(t, "run", nb, "-f", params,
		"-p", "i=5", "-p", "f=2.5", "-p", "b=True", "-p", "n=None", "-p", "s=hello", "-p", "w=2.0", "-p", "t", "007",
		"-r", "r=5", "--label", "cli-typed")
	wantCode(t, r, 0)
	for _, want := range []string{
		"TYPE i int 5", "TYPE f float 2.5", "TYPE b bool True", "TYPE n NoneType None", "TYPE s str 'hello'",
		"TYPE w float 2.0", "TYPE t int 7", "TYPE r str '5'", "TYPE lst list [1, 'two', 2.5]",
		"TYPE yes_flag bool True", "TYPE e str '1e3'",
	} {
		if !strings.Contains(r.stdout, want+"\n") {
			t.Errorf("the kernel did not print %q; %s", want, r)
		}
	}
	if last := lastLine(r.stderr); !strings.Contains(last, "SUCCEEDED") {
		t.Errorf("last line %q does not report success", last)
	}
	id := jobID(t, r.stderr)

	// status --json
	r = e.millrace(t, "status", id, "--json")
	wantCode(t, r, 0)
	var st jobs.Status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	if st.JobID != id || st.Status != workflows.StatusSucceeded || st.Progress.Percent != 100 || len(st.Labels) != 1 {
		t.Errorf("status --json: %+v", st)
	}

	// The output notebook records the values as papermill does: 2.0 stays
	// a float, 007 is the int 7, -r keeps a string.
	raw, err := os.ReadFile(st.OutputPath)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Metadata struct {
			Papermill struct {
				Parameters map[string]any `json:"parameters"`
			} `json:"papermill"`
		} `json:"metadata"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(out.Metadata.Papermill.Parameters)
	want := `{"b":true,"e":"1e3","f":2.5,"i":5,"lst":[1,"two",2.5],"n":null,"r":"5","s":"hello","t":7,"w":2.0,"yes_flag":true}`
	if string(got) != want {
		t.Errorf("metadata.papermill.parameters:\n got %s\nwant %s", got, want)
	}

	// output, as JSON and as text
	r = e.millrace(t, "output", id, "--json")
	wantCode(t, r, 0)
	var o jobs.Output
	if err := json.Unmarshal([]byte(r.stdout), &o); err != nil {
		t.Fatalf("output --json: %v\n%s", err, r.stdout)
	}
	if o.Status != workflows.StatusSucceeded || o.Parameters["b"] != true || len(o.Cells) == 0 || !strings.Contains(o.Cells[len(o.Cells)-1].Text, "TYPE w float 2.0") {
		t.Errorf("output --json: %+v", o)
	}
	r = e.millrace(t, "output", id)
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "parameters: b=True") || !strings.Contains(r.stdout, "TYPE lst list") {
		t.Errorf("output: %s", r)
	}

	// logs, whole and tail, text and JSON
	r = e.millrace(t, "logs", id, "--json")
	wantCode(t, r, 0)
	var logs jobs.Logs
	if err := json.Unmarshal([]byte(r.stdout), &logs); err != nil {
		t.Fatalf("logs --json: %v\n%s", err, r.stdout)
	}
	if !logs.Done || len(logs.Lines) < 11 || logs.NextCursor == "" {
		t.Errorf("logs --json: done %v, %d lines", logs.Done, len(logs.Lines))
	}
	r = e.millrace(t, "logs", id, "--tail", "1", "--stream", "stdout")
	wantCode(t, r, 0)
	if r.stdout != "TYPE e str '1e3'\n" {
		t.Errorf("logs --tail 1: %s", r)
	}
	r = e.millrace(t, "logs", id, "--cursor", logs.NextCursor)
	wantCode(t, r, 0)
	if r.stdout != "" {
		t.Errorf("logs after the last cursor printed %q", r.stdout)
	}

	// jobs, filtered, as JSON and as a table
	var list jobs.List
	testenv.Eventually(t, 30*time.Second, "the job in the listing", func() bool {
		r = e.millrace(t, "jobs", "--label", "cli-typed", "--json")
		list = jobs.List{}
		return r.code == 0 && json.Unmarshal([]byte(r.stdout), &list) == nil && len(list.Jobs) == 1
	})
	if j := list.Jobs[0]; j.JobID != id || j.Status != workflows.StatusSucceeded || list.Counts[workflows.StatusSucceeded] != 1 {
		t.Errorf("jobs --json: %+v", list)
	}
	r = e.millrace(t, "jobs", "--label", "cli-typed", "--status", "succeeded", "--notebook", nb, "--limit", "5")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, id) || !strings.Contains(r.stdout, "SUCCEEDED") || !strings.Contains(r.stdout, "types.ipynb") {
		t.Errorf("jobs: %s", r)
	}
	for _, filter := range [][]string{{"--status", "FAILED"}, {"--batch", workflows.BatchIDPrefix + "none"}} {
		r = e.millrace(t, append([]string{"jobs", "--label", "cli-typed", "--json"}, filter...)...)
		wantCode(t, r, 0)
		if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Jobs) != 0 {
			t.Errorf("jobs %v: %v %s", filter, err, r)
		}
	}
}

func TestRunFailurePrintsTheCellTheErrorAndTheTraceback(t *testing.T) {
	e := setup(t)
	nb := e.notebook(t, testenv.Testdata("fails_later.ipynb"))
	r := e.millrace(t, "run", nb)
	wantCode(t, r, 1)
	for _, want := range []string{"in cell 4 of the notebook", "assert 1 + 1 == 3", "AssertionError", "traceback", "output notebook:"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q: %s", want, r)
		}
	}
	if last := lastLine(r.stderr); !strings.Contains(last, "FAILED") {
		t.Errorf("last line %q does not report the failure", last)
	}
	id := jobID(t, r.stderr)

	r = e.millrace(t, "status", id, "--json")
	wantCode(t, r, 0)
	var st jobs.Status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatal(err)
	}
	if st.Status != workflows.StatusFailed || st.Error == nil || st.Error.EName != "AssertionError" || st.Error.CellIndex == nil || *st.Error.CellIndex != 4 {
		t.Errorf("status --json: %+v error %+v", st, st.Error)
	}
	r = e.millrace(t, "status", id)
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "FAILED") || !strings.Contains(r.stdout, "AssertionError") {
		t.Errorf("status: %s", r)
	}
	r = e.millrace(t, "output", id)
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "AssertionError") || !strings.Contains(r.stdout, "failed") {
		t.Errorf("output: %s", r)
	}
}

func TestBadUsageAndInputExitTwo(t *testing.T) {
	e := &env{cfg: server.Config(t), root: t.TempDir()} // no worker: nothing may start
	nb := e.notebook(t, typesNotebook)
	outside := testenv.CopyFile(t, typesNotebook, t.TempDir())
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"run"}, "missing NOTEBOOK"},
		{[]string{"run", nb, "-p", "i"}, "write name=value"},
		{[]string{"run", nb, "-p", "nope=1"}, `unknown parameter "nope"`},
		{[]string{"run", nb, "-p", "i=text"}, `parameter "i" expects`},
		{[]string{"run", nb, "-f", filepath.Join(e.root, "missing.yaml")}, "no such file"},
		{[]string{"run", nb, "--on-interrupt", "maybe"}, "use ask, cancel, detach"},
		{[]string{"run", nb, "--timeout", "soon"}, "not a duration"},
		{[]string{"run", nb, "--no-such-flag"}, "flag provided but not defined"},
		{[]string{"run", filepath.Join(e.root, "missing.ipynb")}, "does not exist"},
		{[]string{"run", outside}, "outside"},
		{[]string{"run", nb, "extra"}, `unexpected argument "extra"`},
		{[]string{"run", nb, "--priority", "urgent"}, `priority "urgent": use one of high, low, normal`},
		{[]string{"run", nb, "--memory-limit", "lots"}, "memory_limit"},
		{[]string{"run", nb, "--cpu-limit", "-1"}, "cpu_limit"},
		{[]string{"run", nb, "--notify-url", "http://127.0.0.1:9/hook"}, "MILLRACE_NOTIFY_ALLOW"},
		{[]string{"run", nb, "--notify-url", "http://10.0.0.1/hook", "--notify-allow", "127.0.0.1"}, "not in the allow-list"},
		{[]string{"status", "bogus"}, "is not a job id"},
		{[]string{"status", workflows.RunIDPrefix + "00000000-0000-0000-0000-000000000000"}, "no job"},
		{[]string{"logs", workflows.RunIDPrefix + "00000000-0000-0000-0000-000000000000", "--stream", "stdin"}, "use stdout, stderr or both"},
		{[]string{"jobs", "--status", "DONE"}, `status "DONE"`},
		{[]string{"cancel"}, "missing ID"},
		{[]string{"inspect", outside}, "outside"},
		{[]string{"nosuch"}, `unknown command "nosuch"`},
	}
	for _, c := range cases {
		r := e.millrace(t, c.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, c.want) {
			t.Errorf("millrace %s: want exit 2 and %q, got %s", strings.Join(c.args, " "), c.want, r)
		}
	}
	r := (*env)(nil).millrace(t)
	if r.code != exitUsage || !strings.Contains(r.stderr, "Commands:") {
		t.Errorf("millrace with no command: %s", r)
	}
	// Nothing was started by any of them.
	list, err := server.Service(t, e.cfg, e.root).List(context.Background(), jobs.ListRequest{Notebook: nb})
	if err != nil || len(list.Jobs) != 0 {
		t.Errorf("bad command lines started jobs: %v %+v", err, list.Jobs)
	}
}

func TestDetachThenLogsFollowsToTheEnd(t *testing.T) {
	e := setup(t)
	nb := e.notebook(t, slowNotebook)
	r := e.millrace(t, "run", nb, "-p", "steps=8", "-p", "delay=0.2", "--detach", "--json")
	wantCode(t, r, 0)
	var started jobs.Started
	if err := json.Unmarshal([]byte(r.stdout), &started); err != nil || !strings.HasPrefix(started.JobID, workflows.RunIDPrefix) {
		t.Fatalf("run --detach --json: %v %s", err, r)
	}

	r = e.millrace(t, "logs", started.JobID, "-f")
	wantCode(t, r, 0)
	want := "step 0\nstep 1\nstep 2\nstep 3\nstep 4\nstep 5\nstep 6\nstep 7\nslow done\n"
	if !strings.Contains(r.stdout, want) {
		t.Errorf("logs -f: want %q in %s", want, r)
	}
	// logs -f returned because the run ended.
	st, err := e.svc.Status(context.Background(), started.JobID)
	if err != nil || st.Status != workflows.StatusSucceeded {
		t.Errorf("after logs -f: %v %+v", err, st)
	}

	r = e.millrace(t, "logs", started.JobID, "-f", "--json", "--stream", "stdout")
	wantCode(t, r, 0)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var first struct {
		Attempt int    `json:"attempt"`
		Stream  string `json:"stream"`
		Text    string `json:"text"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || len(lines) != 9 || first.Text != "step 0" || first.Stream != "stdout" || first.Attempt != 1 {
		t.Errorf("logs -f --json: %v %s", err, r)
	}

	// --json without --detach waits and prints the final status only.
	r = e.millrace(t, "run", nb, "-p", "steps=1", "-p", "delay=0", "--json")
	wantCode(t, r, 0)
	var st2 jobs.Status
	if err := json.Unmarshal([]byte(r.stdout), &st2); err != nil || st2.Status != workflows.StatusSucceeded || st2.Progress.Percent != 100 {
		t.Errorf("run --json: %v %s", err, r)
	}

	// Without --json, --detach prints the bare id.
	r = e.millrace(t, "run", nb, "-p", "steps=1", "-p", "delay=0", "--detach")
	wantCode(t, r, 0)
	if !jobIDRE.MatchString(r.stdout) || strings.TrimSpace(r.stdout) != jobIDRE.FindString(r.stdout) {
		t.Errorf("run --detach: %s", r)
	}
}

// interruptRun starts `millrace run` on a slow notebook, waits for its
// output, then interrupts it as Ctrl-C does.
func interruptRun(t *testing.T, e *env, nb string, extra ...string) result {
	t.Helper()
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	var out, errs syncBuffer
	done := make(chan result, 1)
	args := append([]string{"run", nb, "-p", "steps=400", "-p", "delay=0.1"}, extra...)
	go func() { done <- e.run(ctx, &out, &errs, args...) }()
	waitFor(t, 2*time.Minute, out.String, "step 3\n")
	cancel(interrupted{os.Interrupt})
	select {
	case r := <-done:
		return r
	case <-time.After(time.Minute):
		t.Fatalf("run did not return after the interrupt: %s", errs.String())
	}
	return result{}
}

func TestInterruptCancelsOrDetaches(t *testing.T) {
	e := setup(t)
	nb := e.notebook(t, slowNotebook)

	r := interruptRun(t, e, nb, "--on-interrupt", "cancel")
	wantCode(t, r, 1)
	if last := lastLine(r.stderr); !strings.Contains(last, "CANCELED") {
		t.Errorf("--on-interrupt cancel: %s", r)
	}

	// No terminal to ask on: detach, and say so.
	r = interruptRun(t, e, nb)
	wantCode(t, r, 0)
	if !strings.Contains(r.stderr, "no terminal to ask on") || !strings.Contains(r.stderr, "detached") {
		t.Errorf("interrupt without a terminal: %s", r)
	}
	id := jobID(t, r.stderr)
	st, err := e.svc.Status(context.Background(), id)
	if err != nil || st.Ended() {
		t.Fatalf("the detached run should go on: %v %+v", err, st)
	}

	r = e.millrace(t, "cancel", id, "--reason", "the test is done with it")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "CANCELED") {
		t.Errorf("cancel: %s", r)
	}
	r = e.millrace(t, "cancel", id, "--json")
	wantCode(t, r, exitUsage)
	if !strings.Contains(r.stderr, "already ended CANCELED") {
		t.Errorf("second cancel: %s", r)
	}
}
