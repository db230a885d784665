package jobs_test

import (
	"context"
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

// TestPriorityOvertakesQueuedRuns: on a worker with one slot, busy with
// a blocker, three normal runs and one low run wait; a high run started
// after them starts first when the slot frees, then the normal ones (in
// any order among themselves), and the low one last.
func TestPriorityOvertakesQueuedRuns(t *testing.T) {
	dir := t.TempDir()
	testenv.CopyFile(t, "testdata/order.ipynb", dir)
	cfg := server.Config(t)
	cfg.MaxRuns = 1
	server.StartWorker(t, cfg)
	svc := server.Service(t, cfg, dir)
	ctx := context.Background()
	order, release := filepath.Join(dir, "order.txt"), filepath.Join(dir, "release")

	start := func(name, priority string, params map[string]any) jobs.Started {
		t.Helper()
		p := map[string]any{"name": name, "order_file": order}
		for k, v := range params {
			p[k] = v
		}
		s, err := svc.Start(ctx, jobs.StartRequest{Path: "order.ipynb", Options: runopts.Options{Parameters: p, MaxAttempts: 1}, Job: runopts.Job{Priority: priority}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	blocker := start("blocker", "", map[string]any{"wait_for": release})
	testenv.Eventually(t, 2*time.Minute, "the blocker to run", func() bool {
		b, _ := os.ReadFile(order)
		return strings.Contains(string(b), "blocker")
	})
	var all []jobs.Started
	all = append(all, start("low", "low", nil))
	for _, n := range []string{"normal1", "normal2", "normal3"} {
		all = append(all, start(n, "normal", nil))
	}
	all = append(all, start("high", "high", nil))
	// Every waiting run's workflow task has scheduled its activity before
	// the slot frees.
	for _, s := range all {
		testenv.Eventually(t, time.Minute, s.JobID+" to wait for a slot", func() bool {
			st, err := svc.Status(ctx, s.JobID)
			return err == nil && st.Status == workflows.StatusPending && st.Attempt == 1
		})
	}
	if st, _ := svc.Status(ctx, all[4].JobID); st.Priority != "high" {
		t.Errorf("status priority = %q, want high", st.Priority)
	}
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, s := range append(all, blocker) {
		testenv.Eventually(t, 3*time.Minute, s.JobID+" to end", func() bool {
			st, err := svc.Status(ctx, s.JobID)
			return err == nil && st.Ended()
		})
	}
	b, err := os.ReadFile(order)
	if err != nil {
		t.Fatal(err)
	}
	// Priority orders classes, not runs within one: the normal runs'
	// workflow tasks are processed side by side, so their activities may
	// be scheduled in another order than the runs were started.
	got := strings.Fields(string(b))
	class := func(name string) string { return strings.TrimRight(name, "0123456789") }
	var classes []string
	for _, n := range got {
		classes = append(classes, class(n))
	}
	want := []string{"blocker", "high", "normal", "normal", "normal", "low"}
	if strings.Join(classes, " ") != strings.Join(want, " ") {
		t.Errorf("start order %v: by priority %v, want %v", got, classes, want)
	}
}
