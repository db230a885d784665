package activities_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"millrace/internal/jobs"
	"millrace/workflows"
)

// BenchmarkTimeToFirstCell starts a notebook through the job service
// (start_notebook's path) and measures the time from the start call to its
// first cell running (the cell writes the time it starts to a file), on a
// worker with the warm pool and on one without, alternating, and reports
// the medians and their ratio.
// `go test -run '^$' -bench TimeToFirstCell -benchtime 10x ./activities/`
func BenchmarkTimeToFirstCell(b *testing.B) {
	dir := b.TempDir()
	stamp := filepath.Join(dir, "first-cell")
	cells := []string{fmt.Sprintf("import time; open(%q, 'w').write(repr(time.time()))", stamp), "y = 1 + 1", "print(y)"}
	nb := filepath.Join(dir, "first_cell.ipynb")
	writeNotebook(b, nb, cells)
	warmCfg := server.Config(b)
	warmCfg.WarmPoolOff = false
	coldCfg := server.Config(b)
	coldCfg.WarmPoolOff = true
	coldCfg.TaskQueue += "-cold"
	w := server.StartWorker(b, warmCfg)
	if w.Warm == nil {
		b.Fatal("the warm pool did not start on this worker (see the worker's log): nothing to compare")
	}
	server.StartWorker(b, coldCfg)
	warmSvc, coldSvc := server.Service(b, warmCfg, dir), server.Service(b, coldCfg, dir)
	ctx := context.Background()
	first := func(svc *jobs.Service) time.Duration {
		_ = os.Remove(stamp)
		began := time.Now()
		run, err := svc.Start(ctx, jobs.StartRequest{Path: nb})
		if err != nil {
			b.Fatal(err)
		}
		st, err := svc.WaitEnded(ctx, run.JobID, 2*time.Minute, nil)
		if err != nil || st.Status != workflows.StatusSucceeded {
			b.Fatalf("run %s: %s %v", run.JobID, st.Status, err)
		}
		raw, err := os.ReadFile(stamp)
		if err != nil {
			b.Fatal(err)
		}
		at, err := strconv.ParseFloat(strings.TrimSpace(string(raw)), 64)
		if err != nil {
			b.Fatal(err)
		}
		return time.Unix(0, int64(at*1e9)).Sub(began)
	}
	first(warmSvc)
	first(coldSvc)
	var warm, cold []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		warm = append(warm, first(warmSvc))
		cold = append(cold, first(coldSvc))
	}
	mw, mc := median(warm), median(cold)
	b.ReportMetric(mw.Seconds(), "warm-s")
	b.ReportMetric(mc.Seconds(), "cold-s")
	b.ReportMetric(mw.Seconds()/mc.Seconds(), "ratio")
}

// writeNotebook writes a notebook of Python code cells.
func writeNotebook(b *testing.B, path string, cells []string) {
	var cs []map[string]any
	for i, src := range cells {
		cs = append(cs, map[string]any{"cell_type": "code", "execution_count": nil, "id": fmt.Sprint("c", i), "metadata": map[string]any{}, "outputs": []any{}, "source": src})
	}
	raw, err := json.Marshal(map[string]any{"cells": cs, "nbformat": 4, "nbformat_minor": 5,
		"metadata": map[string]any{"kernelspec": map[string]any{"name": "python3", "display_name": "Python 3", "language": "python"}}})
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		b.Fatal(err)
	}
}
