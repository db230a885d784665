package activities_test

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
	"time"

	"millrace/internal/executor"
	"millrace/internal/runenv"
	"millrace/internal/testenv"
)

// BenchmarkExecutorCPU looks for what makes a short run's executor use
// more processor time through a workflow than bare (BenchmarkThroughput's
// two executor figures): it runs the trivial notebook through the bundled
// runner one run at a time, in rounds that take each variant once, in
// turn, and reports each variant's median processor time (the runner and
// its kernel: every child this process reaped meanwhile) and its median
// difference from bare within a round. The variants add, one at a time,
// what the worker gives the executor that BenchmarkThroughput's bare
// phase does not: a result file, the kernel's environment, a checkpoint
// folder (which installs the checkpoint library in the kernel), and a
// start through executor.StartWith (own process group, death signal,
// marker). `go test -run '^$' -bench ExecutorCPU -benchtime 8x ./activities/`
func BenchmarkExecutorCPU(b *testing.B) {
	dir := b.TempDir()
	nb := testenv.CopyFile(b, "testdata/trivial.ipynb", dir)
	exe, err := executor.Config{Kind: "bundled"}.Resolve(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	bareEnv := append(os.Environ(), "PYDEVD_DISABLE_FILE_VALIDATION=1")
	kernelEnv := runenv.Kernel(os.Environ(), nil, nil)

	type variant struct {
		name string
		spec func(out, scratch string) executor.Spec
		env  []string
		// supervised starts the runner as the worker does.
		supervised bool
	}
	plain := func(out, _ string) executor.Spec { return executor.Spec{Input: nb, Output: out, Cwd: dir} }
	withResult := func(out, scratch string) executor.Spec {
		s := plain(out, scratch)
		s.ResultFile = filepath.Join(scratch, "result.json")
		return s
	}
	withCheckpoints := func(out, scratch string) executor.Spec {
		s := withResult(out, scratch)
		s.CheckpointDir = filepath.Join(scratch, "checkpoints")
		if err := os.Mkdir(s.CheckpointDir, 0o700); err != nil {
			b.Fatal(err)
		}
		return s
	}
	variants := []variant{
		{name: "bare", spec: plain, env: bareEnv},
		{name: "result_file", spec: withResult, env: bareEnv},
		{name: "kernel_env", spec: withResult, env: kernelEnv},
		{name: "checkpoints", spec: withCheckpoints, env: kernelEnv},
		{name: "supervised", spec: withCheckpoints, env: kernelEnv, supervised: true},
	}
	childCPU := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru)
		return time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime))
	}
	run := func(v variant) time.Duration {
		scratch := b.TempDir()
		args := exe.Args(v.spec(filepath.Join(scratch, "out.ipynb"), scratch))
		before := childCPU()
		if v.supervised {
			p, err := executor.StartWith(executor.Launch{Args: args, Dir: dir, Env: v.env, Marker: "bench." + v.name})
			if err != nil {
				b.Fatal(err)
			}
			go func() { _, _ = io.Copy(io.Discard, p.Stdout) }()
			go func() { _, _ = io.Copy(io.Discard, p.Stderr) }()
			<-p.Done()
			p.Cleanup()
			if code := p.ExitCode(); code != 0 {
				b.Fatalf("%s: exit %d", v.name, code)
			}
		} else {
			cmd := exec.Command(args[0], args[1:]...)
			cmd.Dir, cmd.Env = dir, v.env
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("%s: %v\n%s", v.name, err, out)
			}
		}
		return childCPU() - before
	}
	for _, v := range variants {
		run(v) // warm the page cache and Python's bytecode caches
	}
	cpu := make([][]time.Duration, len(variants))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Each round starts with another variant, so that none always
		// follows the same one.
		for j := range variants {
			k := (i + j) % len(variants)
			cpu[k] = append(cpu[k], run(variants[k]))
		}
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	for k, v := range variants {
		b.ReportMetric(ms(median(cpu[k])), v.name+"-cpu-ms")
		if k == 0 {
			continue
		}
		diff := make([]time.Duration, len(cpu[k]))
		for i := range diff {
			diff[i] = cpu[k][i] - cpu[0][i]
		}
		b.ReportMetric(ms(median(diff)), v.name+"-minus-bare-ms")
	}
	for k, v := range variants {
		s := append([]time.Duration(nil), cpu[k]...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		b.Logf("%-12s %v", v.name, fmt.Sprint(s))
	}
}
