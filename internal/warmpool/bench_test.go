package warmpool_test

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"millrace/internal/executor"
	"millrace/internal/runenv"
	"millrace/internal/warmpool"
)

// BenchmarkWarmPool reports what the pool costs while idle (its zygote's
// resident and proportional set sizes, and its warm-up) and what it saves
// a run: the 3-cell notebook through the executor with the pool and
// without it, alternating, medians and their ratio; and what one run
// holds while it runs, warm and cold.
// `go test -run '^$' -bench WarmPool -benchtime 5x ./internal/warmpool/`
func BenchmarkWarmPool(b *testing.B) {
	pool, exe := startPool(b)
	cold := exe
	cold.Warm = nil
	time.Sleep(time.Second) // idle: the self-check's run has been reaped
	rss, pss, err := pool.Memory()
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	nb := notebook(b, dir, "x = 1", "y = x + 1", "print(y)")
	run := func(e executor.Executor) time.Duration {
		began := time.Now()
		benchRun(b, e, nb, dir)
		return time.Since(began)
	}
	run(cold)
	run(exe)
	var w, c []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w = append(w, run(exe))
		c = append(c, run(cold))
	}
	b.StopTimer()
	// What a run holds while it runs: its kernel's and its runner's
	// proportional sets (pages shared with other processes split), read
	// by the kernel itself in the notebook's last cell.
	mem := notebook(b, b.TempDir(), "x = 1", runMemoryCell)
	held := func(e executor.Executor) float64 {
		out := benchRun(b, e, mem, dir)
		_, kb, found := strings.Cut(out, "run-pss-kB ")
		v, err := strconv.ParseFloat(strings.Fields(kb + " ")[0], 64)
		if !found || err != nil {
			b.Fatalf("the memory cell printed no figure: %s", out)
		}
		return v / 1024
	}
	b.ReportMetric(held(exe), "warm-run-pss-MB")
	b.ReportMetric(held(cold), "cold-run-pss-MB")
	mw, mc := median(w), median(c)
	b.ReportMetric(mw.Seconds(), "warm-s")
	b.ReportMetric(mc.Seconds(), "cold-s")
	b.ReportMetric(mw.Seconds()/mc.Seconds(), "ratio")
	// After ResetTimer, which drops the metrics reported before it.
	b.ReportMetric(float64(rss)/(1<<20), "zygote-rss-MB")
	b.ReportMetric(float64(pss)/(1<<20), "zygote-pss-MB")
}

// benchRun runs the notebook nb in dir through e to its end and returns
// its stdout; it fails on an exit other than 0, and on a cold start of a
// pool run.
func benchRun(b *testing.B, e executor.Executor, nb, dir string) string {
	args := e.Args(executor.Spec{Input: nb, Output: filepath.Join(b.TempDir(), "out.ipynb"), Cwd: dir})
	proc, err := executor.StartWith(executor.Launch{Args: args, Dir: dir, Env: runenv.Kernel(os.Environ(), nil, nil), Marker: "bench." + filepath.Base(b.TempDir())})
	if err != nil {
		b.Fatal(err)
	}
	out := make(chan []byte)
	go func() { o, _ := io.ReadAll(proc.Stdout); out <- o }()
	errb, _ := io.ReadAll(proc.Stderr)
	o := <-out
	code := proc.ExitCode()
	proc.Cleanup()
	if code != 0 {
		b.Fatalf("run exited %d: %s", code, errb)
	}
	if e.Warm != nil && strings.Contains(string(errb), warmpool.ColdNote) {
		b.Fatalf("a pool run went cold: %s", errb)
	}
	return string(o)
}

// runMemoryCell prints the kernel's and its parent's (the runner's)
// proportional set sizes, summed, in kB.
const runMemoryCell = `import os
def pss(pid):
    for line in open("/proc/%d/smaps_rollup" % pid):
        if line.startswith("Pss:"):
            return int(line.split()[1])
print("run-pss-kB", pss(os.getpid()) + pss(os.getppid()))`

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
