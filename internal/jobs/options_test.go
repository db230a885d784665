package jobs_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"gopkg.in/yaml.v3"

	"millrace/internal/jobs"
	"millrace/internal/runopts"
	"millrace/internal/runopts/runoptstest"
	"millrace/workflows"
)

// optionsSetup is a job service whose worker, notify allow-list and root
// accept every option of a runoptstest world.
func optionsSetup(t *testing.T) (*jobs.Service, runoptstest.World) {
	t.Helper()
	w := runoptstest.NewWorld(t)
	cfg := server.Config(t)
	cfg.NotifyAllow = []string{runoptstest.NotifyHost}
	server.StartWorker(t, cfg)
	return server.Service(t, cfg, w.Root), w
}

// TestEveryRunOptionChangesTheRunInput fills every option of a start
// request (found by reflection, so a new option is included) and takes
// each one back to its zero value in turn: each must change the workflow
// input that RunInput makes, or make the request invalid (no_type_check,
// allow_extra_parameters). An option RunInput does not map fails here.
func TestEveryRunOptionChangesTheRunInput(t *testing.T) {
	svc, w := optionsSetup(t)
	req := jobs.StartRequest{Path: w.Notebook}
	runoptstest.Fill(t, &req, w.Valid(true))
	full, err := svc.RunInput(workflows.RunIDPrefix+"options", req)
	if err != nil {
		t.Fatalf("the filled request is invalid: %v", err)
	}
	for _, name := range runopts.Names(&req) {
		without := req
		runoptstest.Zero(&without, name)
		in, err := svc.RunInput(workflows.RunIDPrefix+"options", without)
		if err == nil && reflect.DeepEqual(in, full) {
			t.Errorf("option %s: the run input is the same without it; map it in jobs.Service.RunInput", name)
		}
	}
}

// TestBatchFileCarriesEveryOption writes a batch file whose one node sets
// every node option (runopts.Options, filled by reflection), starts it
// from the file and reads back the input the node's workflow started
// with: it must be the input RunInput makes from those options, with the
// batch's labels and priority. The node is then canceled and the batch
// rerun: round 2's node must start with the same input.
//
// Not in a node, by design (runopts.Job, runopts.Direct): labels and
// priority are the batch's, for every node (checked here); notify_url at
// the top of a file reports the batch, not a node; env and
// allow_extra_parameters are not batch keys.
func TestBatchFileCarriesEveryOption(t *testing.T) {
	svc, w := optionsSetup(t)
	ctx := context.Background()
	node := jobs.BatchNodeRequest{ID: "every", Path: w.Notebook}
	runoptstest.Fill(t, &node, w.Valid(false))
	batch := jobs.BatchRequest{Name: "options", Labels: []string{"batch-label"}, Priority: "high", Nodes: []jobs.BatchNodeRequest{node}}
	data, err := yaml.Marshal(batch)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(w.Root, "batch.yaml")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	loaded, err := jobs.LoadBatchFile(file)
	if err != nil {
		t.Fatalf("load %s:\n%s\n%v", file, data, err)
	}
	started, err := svc.StartBatch(ctx, loaded)
	if err != nil {
		t.Fatal(err)
	}
	jobID := started.Nodes[0].JobID
	got := runoptstest.StartedInput(t, svc, jobID)
	want, err := svc.RunInput(jobID, jobs.StartRequest{
		Path: node.Path, Options: node.Options, Job: runopts.Job{Labels: batch.Labels, Priority: batch.Priority},
		BatchID: started.BatchID, NodeID: node.ID,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("the node's workflow input is not what its options make:\n got %+v\nwant %+v\nbatch file:\n%s", got, want, data)
	}

	if _, err := svc.CancelBatch(ctx, started.BatchID, "rerun it"); err != nil {
		t.Fatal(err)
	}
	again, err := svc.RerunBatch(ctx, started.BatchID)
	if err != nil {
		t.Fatal(err)
	}
	if again.Nodes[0].Reused || again.Nodes[0].JobID == jobID {
		t.Fatalf("the rerun did not run the node again: %+v", again.Nodes[0])
	}
	if rerun := runoptstest.StartedInput(t, svc, again.Nodes[0].JobID); !reflect.DeepEqual(rerun, want) {
		t.Errorf("the rerun node's input differs from the first round's:\n got %+v\nwant %+v", rerun, want)
	}
	if _, err := svc.CancelBatch(ctx, started.BatchID, "done"); err != nil && !jobs.IsUserError(err) {
		t.Error(err)
	}
}
