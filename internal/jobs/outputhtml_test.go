package jobs_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"millrace/internal/jobs"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// TestOutputHTMLFollowsARunningJob renders a job's page while it runs
// (the cells so far; the job waits for the test in its second cell) and
// after it ended: the saved notebook changed, so the page is rendered
// again, then served from the cache. Each cell prints what its source does
// not spell out: the page shows sources too.
func TestOutputHTMLFollowsARunningJob(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	gate := filepath.Join(dir, "go-on")
	testenv.WriteNotebook(t, dir, "paged.ipynb",
		`print("first-cell-" + "output")`,
		fmt.Sprintf("import os, time\nwhile not os.path.exists(%q):\n    time.sleep(0.05)", gate),
		`print("last-cell-" + "output")`)
	cfg := server.Config(t)
	server.StartWorker(t, cfg)
	svc := server.Service(t, cfg, dir)
	started, err := svc.Start(ctx, jobs.StartRequest{Path: "paged.ipynb"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.OutputHTML(ctx, "nb-no-such-job"); !jobs.IsUserError(err) {
		t.Errorf("unknown job: %v, want a user error", err)
	}
	// Wait on the cheap read; render once the first cell's output is saved.
	testenv.Eventually(t, time.Minute, "the first cell's output", func() bool {
		out, err := svc.Output(ctx, jobs.OutputRequest{JobID: started.JobID})
		return err == nil && len(out.Cells) > 0 && strings.Contains(out.Cells[0].Text, "first-cell-output")
	})
	page, err := svc.OutputHTML(ctx, started.JobID)
	if err != nil || !strings.Contains(string(page.HTML), "first-cell-output") {
		t.Fatalf("page while running: %v; want the first cell's output", err)
	}
	if page.Status != workflows.StatusRunning || strings.Contains(string(page.HTML), "last-cell-output") {
		t.Fatalf("page while running: status %s, last cell in it %v", page.Status, strings.Contains(string(page.HTML), "last-cell-output"))
	}
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if st, err := svc.WaitEnded(ctx, started.JobID, 2*time.Minute, nil); err != nil || st.Status != workflows.StatusSucceeded {
		t.Fatalf("run: %s %s %v", st.Status, st.Message, err)
	}
	final, err := svc.OutputHTML(ctx, started.JobID)
	if err != nil || final.Cached || !strings.Contains(string(final.HTML), "last-cell-output") {
		t.Fatalf("page after the end: cached %v, %v; want a new page with the last cell", final.Cached, err)
	}
	again, err := svc.OutputHTML(ctx, started.JobID)
	if err != nil || !again.Cached || string(again.HTML) != string(final.HTML) {
		t.Fatalf("page again: cached %v, %v; want the cached page", again.Cached, err)
	}
}
