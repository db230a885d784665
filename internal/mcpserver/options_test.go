package mcpserver_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"millrace/internal/jobs"
	"millrace/internal/mcpserver"
	"millrace/internal/runopts/runoptstest"
)

// TestStartNotebookCarriesEveryOption calls start_notebook with every
// option its arguments embed set (runopts.Options and runopts.Job, filled
// by reflection, so a new option is included), reads back the input the
// run's workflow started with, and wants the input RunInput makes from
// those options. rerun_job must then start the same input again.
//
// Not taken by start_notebook, by design: runopts.Direct (env and
// allow_extra_parameters), which the tool has never offered; it refuses
// them as unknown arguments (checked here).
func TestStartNotebookCarriesEveryOption(t *testing.T) {
	w := runoptstest.NewWorld(t)
	cfg := server.Config(t)
	cfg.NotifyAllow = []string{runoptstest.NotifyHost}
	server.StartWorker(t, cfg)
	svc := server.Service(t, cfg, w.Root)
	c := connect(t, svc)

	args := mcpserver.StartNotebookArgs{Path: w.Notebook}
	runoptstest.Fill(t, &args, w.Valid(false))
	raw, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	var call map[string]any
	if err := json.Unmarshal(raw, &call); err != nil {
		t.Fatal(err)
	}
	started, _ := callMeta[mcpserver.StartNotebookResult](t, c, "start_notebook", call, nil)
	got := runoptstest.StartedInput(t, svc, started.JobID)
	want, err := svc.RunInput(started.JobID, jobs.StartRequest{Path: args.Path, Options: args.Options, Job: args.Job})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("start_notebook %s\nstarted a workflow with\n got %+v\nwant %+v", raw, got, want)
	}

	rerun, _ := callMeta[mcpserver.RerunResult](t, c, "rerun_job", map[string]any{"job_id": started.JobID}, nil)
	if again := runoptstest.StartedInput(t, svc, rerun.JobID); rerun.JobID == started.JobID || !reflect.DeepEqual(again, want) {
		t.Errorf("rerun_job %s started %s with\n got %+v\nwant %+v", started.JobID, rerun.JobID, again, want)
	}

	for _, name := range []string{"env", "allow_extra_parameters"} {
		msg := callError(t, c, "start_notebook", map[string]any{"path": w.Notebook, name: nil})
		if !strings.Contains(msg, `unknown argument "`+name+`"`) {
			t.Errorf("start_notebook with %s: %q, want it refused as an unknown argument", name, msg)
		}
	}
	for _, id := range []string{started.JobID, rerun.JobID} {
		if _, err := svc.Cancel(context.Background(), id, "done"); err != nil && !jobs.IsUserError(err) {
			t.Error(err)
		}
	}
}
