package reliability_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"millrace/internal/jobs"
	"millrace/internal/runopts"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// TestLoadManyRunsAtOnce submits 200 short runs at once to 2 workers of 5
// slots: all succeed, none is lost, and the process table never shows more
// than 10 kernels of them.
func TestLoadManyRunsAtOnce(t *testing.T) {
	const name = "load: 200 runs at once, 2 workers x 5 slots"
	longOnly(t, name)
	sc := begin(t, name)
	root := t.TempDir()
	nb := testenv.CopyFile(t, "testdata/trivial.ipynb", root)
	cfg, svc := setup(t, root)
	server.StartWorker(t, cfg) // the second worker, same queue
	env, kv := marker()        // one marker for all: count their kernels
	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			// A scan of /proc is not atomic: a kernel that exits and one
			// that starts during it would both be counted. Count only the
			// kernels still alive once the scan is done: those were alive
			// together.
			n := 0
			for _, p := range testenv.ProcessesWithEnv(kv) {
				if strings.Contains(p.Cmdline, "ipykernel") && testenv.Alive(p.PID) {
					n++
				}
			}
			if int64(n) > peak.Load() {
				peak.Store(int64(n))
			}
		}
	}()
	began := time.Now()
	ids := make([]string, 200)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc.run()
			run, err := svc.Start(context.Background(), jobs.StartRequest{Path: nb, Job: runopts.Job{Labels: []string{"load"}}, Direct: runopts.Direct{Env: env}})
			if err != nil {
				t.Errorf("start %d: %v", i, err)
				return
			}
			ids[i] = run.JobID
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id == "" {
			continue
		}
		st := waitEnd(t, svc, id, 15*time.Minute)
		switch {
		case !st.Ended():
			sc.lost()
		case st.Status == workflows.StatusSucceeded:
			sc.ok()
		default:
			t.Errorf("%s: %s %+v", id, st.Status, st.Error)
		}
	}
	close(stop)
	<-sampled
	l, err := svc.List(context.Background(), jobs.ListRequest{Label: "load", Status: workflows.StatusSucceeded, Limit: jobs.MaxListLimit})
	if err != nil || l.Counts[workflows.StatusSucceeded] != len(ids) {
		t.Errorf("list: %d SUCCEEDED listed (%v), want %d", l.Counts[workflows.StatusSucceeded], err, len(ids))
		sc.note("list shows %d SUCCEEDED", l.Counts[workflows.StatusSucceeded])
	}
	sc.orphans(leftover(kv))
	if peak.Load() > 10 {
		t.Errorf("%d kernels alive at once, want at most 10", peak.Load())
	}
	sc.note("all in %s; peak kernels alive at once %d (limit 10); list_jobs counts %d SUCCEEDED",
		time.Since(began).Round(time.Second), peak.Load(), l.Counts[workflows.StatusSucceeded])
}

// usage is the test process's resources: the in-process worker lives here.
type usage struct {
	rssKB, fds, goroutines int
}

func measure() usage {
	runtime.GC()
	fds, _ := os.ReadDir("/proc/self/fd")
	rss, _ := strconv.Atoi(strings.Fields(procStatus("VmRSS") + " 0")[0])
	return usage{rssKB: rss, fds: len(fds), goroutines: runtime.NumGoroutine()}
}

func procStatus(field string) string {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// TestLoadSequentialRuns runs 100 runs one after the other through one
// in-process worker: its RSS, open fds and goroutines must not grow.
func TestLoadSequentialRuns(t *testing.T) {
	const name = "load: 100 sequential runs, one worker"
	longOnly(t, name)
	sc := begin(t, name)
	root := t.TempDir()
	nb := testenv.CopyFile(t, "testdata/trivial.ipynb", root)
	_, svc := setup(t, root)
	var first, last usage
	for i := range 100 {
		env, kv := marker()
		sc.run()
		run, err := svc.Start(context.Background(), jobs.StartRequest{Path: nb, Direct: runopts.Direct{Env: env}})
		if err != nil {
			t.Fatal(err)
		}
		st := waitEnd(t, svc, run.JobID, 2*time.Minute)
		left := leftover(kv)
		sc.orphans(left)
		switch {
		case !st.Ended():
			sc.lost()
		case st.Status == workflows.StatusSucceeded && left == 0:
			sc.ok()
		default:
			t.Errorf("run %d: %s, %d processes left", i, st.Status, left)
		}
		if i == 0 {
			first = measure()
		}
	}
	last = measure()
	if last.fds > first.fds+10 || last.goroutines > first.goroutines+50 {
		t.Errorf("grew: first %+v, last %+v", first, last)
	}
	sc.note("after run 1 / run 100: RSS %d / %d MB, fds %d / %d, goroutines %d / %d",
		first.rssKB>>10, last.rssKB>>10, first.fds, last.fds, first.goroutines, last.goroutines)
}

// TestLoadHugeOutput runs a notebook printing 100 MB (1,000,000 numbered
// lines of 100 bytes): every line must be in the log, in order, and the
// worker's memory must stay bounded.
func TestLoadHugeOutput(t *testing.T) {
	const name = "load: a notebook printing 100 MB"
	longOnly(t, name)
	sc := begin(t, name)
	root := t.TempDir()
	const lines = 1_000_000
	nb := testenv.WriteNotebookFor(t, root, "huge.ipynb", "python3", fmt.Sprintf(
		"import sys\npad = 'x' * 90\nfor i in range(%d):\n    sys.stdout.write('%%09d %%s\\n' %% (i, pad))\nsys.stdout.flush()", lines))
	_, svc := setup(t, root)
	base := measure()
	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			rss, _ := strconv.Atoi(strings.Fields(procStatus("VmRSS") + " 0")[0])
			if int64(rss) > peak.Load() {
				peak.Store(int64(rss))
			}
		}
	}()
	env, kv := marker()
	sc.run()
	run, err := svc.Start(context.Background(), jobs.StartRequest{Path: nb, Direct: runopts.Direct{Env: env}})
	if err != nil {
		t.Fatal(err)
	}
	st := waitEnd(t, svc, run.JobID, 10*time.Minute)
	took := st.Duration
	close(stop)
	<-sampled
	sc.orphans(leftover(kv))
	if !st.Ended() {
		sc.lost()
		t.Fatalf("still %s", st.Status)
	}
	if st.Status != workflows.StatusSucceeded {
		t.Fatalf("got %s %+v", st.Status, st.Error)
	}
	next, bad, cursor := 0, 0, ""
	for {
		page, err := svc.Logs(context.Background(), jobs.LogsRequest{JobID: run.JobID, Cursor: cursor, Limit: jobs.MaxLogLines, Stream: "stdout"})
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range page.Lines {
			n, err := strconv.Atoi(strings.Fields(l.Text + " x")[0])
			if err != nil {
				continue // a line of the runner, not of the notebook
			}
			if n != next || len(l.Text) != 100 {
				bad++
			}
			next = n + 1
		}
		cursor = page.NextCursor
		if len(page.Lines) == 0 {
			break
		}
	}
	if next != lines || bad != 0 {
		t.Errorf("read up to line %d with %d out of order or damaged, want %d in order", next, bad, lines)
		sc.note("lines read %d, out of order %d", next, bad)
	} else {
		sc.ok()
	}
	sc.note("%d lines of 100 B in order; run %.0fs; test process (worker inside) RSS %d MB before, peak %d MB",
		next, took, base.rssKB>>10, peak.Load()>>10)
}
