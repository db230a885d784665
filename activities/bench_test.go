package activities_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"millrace/internal/executor"
	"millrace/internal/jobs"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// BenchmarkOrchestrationOverhead runs a small notebook (3 trivial cells)
// through the whole product (job service, Temporal, worker, executor) and
// the same notebook through the executor alone, alternating, and reports
// the medians and their ratio. Nothing asserts a time: run it with
// `go test -run '^$' -bench Overhead -benchtime 10x ./activities/`.
func BenchmarkOrchestrationOverhead(b *testing.B) {
	dir := b.TempDir()
	nb := testenv.CopyFile(b, "testdata/trivial.ipynb", dir)
	cfg := server.Config(b)
	w := server.StartWorker(b, cfg)
	svc := server.Service(b, cfg, dir)
	ctx := context.Background()

	direct := func() time.Duration {
		out := filepath.Join(b.TempDir(), "out.ipynb")
		args := w.Executor.Args(executor.Spec{Input: nb, Output: out, Cwd: dir})
		began := time.Now()
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "PYDEVD_DISABLE_FILE_VALIDATION=1")
		if outb, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("direct run: %v\n%s", err, outb)
		}
		return time.Since(began)
	}
	orchestrated := func() time.Duration {
		began := time.Now()
		run, err := svc.Start(ctx, jobs.StartRequest{Path: nb})
		if err != nil {
			b.Fatal(err)
		}
		st, err := svc.WaitEnded(ctx, run.JobID, 2*time.Minute, nil)
		if err != nil || st.Status != workflows.StatusSucceeded {
			b.Fatalf("run %s: %s %v", run.JobID, st.Status, err)
		}
		return time.Since(began)
	}
	direct() // warm the page cache and the kernel's imports
	orchestrated()
	var d, o []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d = append(d, direct())
		o = append(o, orchestrated())
	}
	md, mo := median(d), median(o)
	b.ReportMetric(md.Seconds(), "direct-s")
	b.ReportMetric(mo.Seconds(), "workflow-s")
	b.ReportMetric(mo.Seconds()/md.Seconds(), "ratio")
	b.ReportMetric(float64((mo - md).Milliseconds()), "overhead-ms")
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
