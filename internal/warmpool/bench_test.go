package warmpool_test

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"millrace/internal/executor"
	"millrace/internal/runenv"
)

// BenchmarkWarmPool reports what the pool costs while idle (its zygote's
// resident and proportional set sizes, and its warm-up) and what it saves
// a run: the 3-cell notebook through the executor with the pool and
// without it, alternating, medians and their ratio.
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
		args := e.Args(executor.Spec{Input: nb, Output: filepath.Join(b.TempDir(), "out.ipynb"), Cwd: dir})
		proc, err := executor.StartWith(executor.Launch{Args: args, Dir: dir, Env: runenv.Kernel(os.Environ(), nil, nil), Marker: "bench." + filepath.Base(b.TempDir())})
		if err != nil {
			b.Fatal(err)
		}
		go io.Copy(io.Discard, proc.Stdout)
		errb, _ := io.ReadAll(proc.Stderr)
		if code := proc.ExitCode(); code != 0 {
			b.Fatalf("run exited %d: %s", code, errb)
		}
		proc.Cleanup()
		if e.Warm != nil && strings.Contains(string(errb), "cold start") {
			b.Fatalf("a pool run went cold: %s", errb)
		}
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
	mw, mc := median(w), median(c)
	b.ReportMetric(mw.Seconds(), "warm-s")
	b.ReportMetric(mc.Seconds(), "cold-s")
	b.ReportMetric(mw.Seconds()/mc.Seconds(), "ratio")
	// After ResetTimer, which drops the metrics reported before it.
	b.ReportMetric(float64(rss)/(1<<20), "zygote-rss-MB")
	b.ReportMetric(float64(pss)/(1<<20), "zygote-pss-MB")
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
