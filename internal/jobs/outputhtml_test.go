package jobs_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"millrace/internal/jobs"
	"millrace/internal/runopts"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// TestOutputHTMLFollowsARunningJob renders a job's page while it runs
// (the cells so far) and after it ended: the saved notebook changed, so
// the page is rendered again, then served from the cache.
func TestOutputHTMLFollowsARunningJob(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	testenv.CopyFile(t, "testdata/stage.ipynb", dir)
	cfg := server.Config(t)
	server.StartWorker(t, cfg)
	svc := server.Service(t, cfg, dir)
	started, err := svc.Start(ctx, jobs.StartRequest{Path: "stage.ipynb", Options: runopts.Options{Parameters: map[string]any{"name": "paged", "sleep": 6}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.OutputHTML(ctx, "nb-no-such-job"); !jobs.IsUserError(err) {
		t.Errorf("unknown job: %v, want a user error", err)
	}
	var page jobs.OutputPage
	testenv.Eventually(t, time.Minute, "the first cell's output in the page", func() bool {
		page, err = svc.OutputHTML(ctx, started.JobID)
		return err == nil && strings.Contains(string(page.HTML), "STAGE paged INPUTS")
	})
	if page.Status != workflows.StatusRunning || strings.Contains(string(page.HTML), "STAGE paged DONE") {
		t.Fatalf("page while running: status %s, done %v", page.Status, strings.Contains(string(page.HTML), "STAGE paged DONE"))
	}
	if st, err := svc.WaitEnded(ctx, started.JobID, 2*time.Minute, nil); err != nil || st.Status != workflows.StatusSucceeded {
		t.Fatalf("run: %s %s %v", st.Status, st.Message, err)
	}
	final, err := svc.OutputHTML(ctx, started.JobID)
	if err != nil || final.Cached || !strings.Contains(string(final.HTML), "STAGE paged DONE") {
		t.Fatalf("page after the end: cached %v, %v; want a new page with the last cell", final.Cached, err)
	}
	again, err := svc.OutputHTML(ctx, started.JobID)
	if err != nil || !again.Cached || string(again.HTML) != string(final.HTML) {
		t.Fatalf("page again: cached %v, %v; want the cached page", again.Cached, err)
	}
}
