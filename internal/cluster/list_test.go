//go:build linux

package cluster_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"millrace/internal/jobs"
	"millrace/internal/runopts"
	"millrace/workflows"
)

// listing checks list_jobs on PostgreSQL visibility: a paging walk over
// more open runs than a page holds, on a task queue no worker polls (so
// they stay PENDING and cost no kernel), newest first; then filters by
// label, status and batch, and counts, over runs that ended SUCCEEDED and
// FAILED on the workers, through the job service and the MCP server; and
// a batch's status with its nodes'.
func listing(t *testing.T, e *env) {
	s := begin(t, "list_jobs: paging, filters and counts, and batch status, on PostgreSQL visibility")
	ctx := context.Background()
	ok := e.notebook(t, "ok.ipynb", "print('ok')")
	failing := e.notebook(t, "fails.ipynb", "raise ValueError('planned failure')")

	// Paging over open runs, on a queue of their own.
	idle := jobs.Service{Client: e.svc.Client, DataConverter: e.svc.DataConverter, Namespace: e.svc.Namespace, TaskQueue: "cluster-idle",
		DataDir: e.svc.DataDir, Roots: e.svc.Roots, NotifyAllow: e.svc.NotifyAllow, AllowEnv: e.svc.AllowEnv}
	const open, limit = 12, 5
	var started []string
	for range open {
		st, err := idle.Start(ctx, jobs.StartRequest{Path: ok})
		if err != nil {
			t.Fatal(err)
		}
		started = append(started, st.JobID)
	}
	s.runs(open)
	// Visibility is eventually consistent: a run is listed a moment
	// after its start returns.
	lag := e.waitListed(t, &idle, jobs.ListRequest{}, workflows.StatusRunning, open)
	var listed []jobs.JobSummary
	pages, token := 0, ""
	var pageTime time.Duration
	for pages <= open {
		began := time.Now()
		l, err := idle.List(ctx, jobs.ListRequest{Limit: limit, PageToken: token})
		pageTime += time.Since(began)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(l.Jobs) > limit {
			t.Errorf("page %d holds %d jobs, more than the limit %d", pages, len(l.Jobs), limit)
		}
		if got := l.Counts[workflows.StatusRunning]; got != open {
			t.Errorf("page %d counts %d open jobs, want %d", pages, got, open)
		}
		listed = append(listed, l.Jobs...)
		if token = l.NextPageToken; token == "" {
			break
		}
	}
	var ids []string
	for i, j := range listed {
		ids = append(ids, j.JobID)
		if j.Status != workflows.StatusPending {
			t.Errorf("%s is %s, want PENDING (no worker polls its queue)", j.JobID, j.Status)
		}
		if i > 0 && j.CreatedAt.After(listed[i-1].CreatedAt) {
			t.Errorf("%s (created %s) is listed after %s (created %s): want newest first", j.JobID, j.CreatedAt, listed[i-1].JobID, listed[i-1].CreatedAt)
		}
	}
	want := slices.Clone(started)
	slices.Reverse(want)
	if !slices.Equal(ids, want) {
		t.Errorf("the walk listed %v, want every started run once, newest first: %v", ids, want)
	} else {
		for range open {
			s.ok()
		}
	}
	if wantPages := (open + limit - 1) / limit; pages != wantPages {
		t.Errorf("walked %d pages of %d, want %d", pages, limit, wantPages)
	}
	pending, err := idle.List(ctx, jobs.ListRequest{Status: workflows.StatusPending})
	if err != nil {
		t.Fatal(err)
	}
	if len(pending.Jobs) != open {
		t.Errorf("status PENDING lists %d jobs, want %d", len(pending.Jobs), open)
	}
	s.figure("%d open runs all listed %s after the last start; walked in %d pages of %d, newest first, %.0f ms a page (with counts)", open, secs(lag), pages, limit, float64(pageTime.Milliseconds())/float64(pages))

	// Ended runs on the workers: two succeed, one fails.
	label := "list-" + uuid.NewString()[:8]
	job := runopts.Job{Labels: []string{label}}
	var okIDs []string
	for range 2 {
		okIDs = append(okIDs, e.start(t, jobs.StartRequest{Path: ok, Job: job}))
	}
	failID := e.start(t, jobs.StartRequest{Path: failing, Job: job})
	batchLabel := label + "-batch"
	b, err := e.svc.StartBatch(ctx, jobs.BatchRequest{Name: "pair", Labels: []string{batchLabel}, Nodes: []jobs.BatchNodeRequest{
		{ID: "first", Path: ok}, {ID: "second", Path: ok, DependsOn: []string{"first"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	s.runs(3 + len(b.Nodes))
	for _, id := range append(slices.Clone(okIDs), failID) {
		st, ended := e.waitEnded(t, id, 2*time.Minute)
		if !ended {
			s.lost()
		}
		if wantSt := map[bool]string{true: workflows.StatusFailed, false: workflows.StatusSucceeded}[id == failID]; st.Status != wantSt {
			t.Errorf("%s ended %s, want %s", id, st.Status, wantSt)
		}
	}
	bs := waitBatch(t, e, b.BatchID)
	if bs.Status != workflows.StatusSucceeded || len(bs.Nodes) != 2 {
		t.Errorf("batch %s: %s with %d nodes, want SUCCEEDED with 2", b.BatchID, bs.Status, len(bs.Nodes))
	}
	for _, n := range bs.Nodes {
		if n.Status != workflows.StatusSucceeded || n.JobID == "" {
			t.Errorf("batch node %s: %s (job %q), want SUCCEEDED with its job", n.ID, n.Status, n.JobID)
		}
	}

	// Filters and counts, through the job service, once visibility has
	// caught up with the ends.
	e.waitListed(t, e.svc, jobs.ListRequest{Label: label}, workflows.StatusFailed, 1)
	e.waitListed(t, e.svc, jobs.ListRequest{Label: label}, workflows.StatusSucceeded, 2)
	e.waitListed(t, e.svc, jobs.ListRequest{BatchID: b.BatchID}, workflows.StatusSucceeded, 2)
	l, err := e.svc.List(ctx, jobs.ListRequest{Label: label})
	if err != nil {
		t.Fatal(err)
	}
	if l.Counts[workflows.StatusSucceeded] != 2 || l.Counts[workflows.StatusFailed] != 1 || len(l.Jobs) != 3 {
		t.Errorf("label %s: %d jobs, counts %v; want 3 jobs, 2 SUCCEEDED and 1 FAILED", label, len(l.Jobs), l.Counts)
	}
	failed, err := e.svc.List(ctx, jobs.ListRequest{Label: label, Status: workflows.StatusFailed})
	if err != nil {
		t.Fatal(err)
	}
	if len(failed.Jobs) != 1 || failed.Jobs[0].JobID != failID {
		t.Errorf("label %s, status FAILED: %+v, want only %s", label, failed.Jobs, failID)
	}

	// The same through the MCP server on its host: a walk of one job a
	// page, a status filter, a batch's runs and its status.
	var walked []string
	mcpPages := 0
	args := map[string]any{"label": label, "limit": 1}
	for mcpPages <= 3 {
		page := call[jobs.List](t, e.mcp, "list_jobs", args)
		mcpPages++
		for _, j := range page.Jobs {
			walked = append(walked, j.JobID)
		}
		if page.NextPageToken == "" {
			break
		}
		args["page_token"] = page.NextPageToken
	}
	wantWalk := append(slices.Clone(okIDs), failID)
	if slices.Sort(walked); !slices.Equal(walked, sorted(wantWalk)) {
		t.Errorf("list_jobs walk over label %s: %v, want %v", label, walked, wantWalk)
	}
	succeeded := call[jobs.List](t, e.mcp, "list_jobs", map[string]any{"label": label, "status": "SUCCEEDED"})
	var got []string
	for _, j := range succeeded.Jobs {
		got = append(got, j.JobID)
	}
	if slices.Sort(got); !slices.Equal(got, sorted(okIDs)) || succeeded.Counts["FAILED"] != 1 {
		t.Errorf("list_jobs label %s status SUCCEEDED: %v with counts %v, want %v and FAILED 1", label, got, succeeded.Counts, okIDs)
	}
	nodes := call[jobs.List](t, e.mcp, "list_jobs", map[string]any{"batch_id": b.BatchID})
	if len(nodes.Jobs) != 2 || nodes.Counts["SUCCEEDED"] != 2 {
		t.Errorf("list_jobs batch_id %s: %d jobs, counts %v; want its 2 nodes SUCCEEDED", b.BatchID, len(nodes.Jobs), nodes.Counts)
	}
	mbs := call[jobs.BatchStatus](t, e.mcp, "get_batch_status", map[string]any{"batch_id": b.BatchID})
	if fmt.Sprint(nodeStatuses(mbs)) != "map[first:SUCCEEDED second:SUCCEEDED]" {
		t.Errorf("get_batch_status %s: nodes %v, want both SUCCEEDED", b.BatchID, nodeStatuses(mbs))
	}
	if !t.Failed() {
		for range 3 + len(b.Nodes) {
			s.ok()
		}
	}
	s.figure("label, status and batch filters and per-status counts agree through the job service and MCP (walk of %d pages of 1)", mcpPages)
}

// waitListed waits until a listing counts n jobs of status (visibility
// is eventually consistent) and returns how long that took.
func (e *env) waitListed(t *testing.T, svc *jobs.Service, req jobs.ListRequest, status string, n int) time.Duration {
	t.Helper()
	began := time.Now()
	var counts map[string]int
	for deadline := began.Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		req.Limit = 1
		l, err := svc.List(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if counts = l.Counts; counts[status] == n {
			return time.Since(began)
		}
		if time.Now().After(deadline) {
			t.Fatalf("listing %+v counts %v after 30 s, want %s %d", req, counts, status, n)
		}
	}
}

func waitBatch(t *testing.T, e *env, id string) jobs.BatchStatus {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st, err := e.svc.BatchStatus(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if st.Ended() || time.Now().After(deadline) {
			return st
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func nodeStatuses(b jobs.BatchStatus) map[string]string {
	out := map[string]string{}
	for _, n := range b.Nodes {
		out[n.ID] = n.Status
	}
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
