package runner

// BenchmarkCheckpoint measures what a checkpoint between two cells costs a
// real kernel, inline against fork, side by side in one run:
//
//	go test -run '^$' -bench Checkpoint -benchtime 1x ./internal/executor/runner/
//
// For each namespace size (numpy arrays of 200 MB and 1 GB in eight blocks)
// and each repetition it saves with mode='inline' then mode='fork' and reports
// the pause the next cell sees (the save call's round trip from the driver),
// the next cell's own wall time (in fork mode it shares the processors with
// the child), the total time to a complete file, the file size and the
// memory the forked child owned alone. CHECKPOINT_BENCH_REPS sets the number
// of repetitions (default 3).

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// benchSample is one save as measured.
type benchSample struct {
	callWall, pause, nextCell, total float64
	size, childPrivate               int64
}

func BenchmarkCheckpoint(b *testing.B) {
	reps := 3
	if v, err := strconv.Atoi(os.Getenv("CHECKPOINT_BENCH_REPS")); err == nil && v > 0 {
		reps = v
	}
	for _, size := range []struct {
		name  string
		bytes int64
	}{{"200MB", 200 << 20}, {"1GB", 1 << 30}} {
		b.Run(size.name, func(b *testing.B) {
			for range b.N {
				measureCheckpoint(b, size.bytes, reps)
			}
		})
	}
	b.Run("probe", benchmarkProbe)
}

func measureCheckpoint(b *testing.B, total int64, reps int) {
	dir := b.TempDir()
	modes := []string{"inline", "fork"}
	steps := []step{startKernel(), nbCell(fmt.Sprintf(
		"import numpy as np\nblocks = [np.full(%d, 1.5) for _ in range(8)]", total/8/8))}
	for rep := range reps {
		for _, mode := range modes {
			path := pyStr(filepath.Join(dir, fmt.Sprintf("%s-%d.ckpt", mode, rep)))
			steps = append(steps,
				ck("save", path, strconv.Itoa(rep), fmt.Sprintf("mode=%q", mode), "if_busy='wait'"),
				nbCell("blocks[0][0] = 2.0"), // the next cell, writing one page of the namespace
				ck("wait", path),
				call(fmt.Sprintf("__import__('os').unlink(%s)", path)),
			)
		}
	}
	r := drive(b, steps...)
	if !r[1].OK {
		b.Fatalf("building the namespace: %s", r[1].Error)
	}
	samples := map[string][]benchSample{}
	i := 2
	for rep := range reps {
		for _, mode := range modes {
			save, next, done := r[i], r[i+1], r[i+2]
			i += 4
			var s ckptSummary
			if !save.OK || !next.OK || !done.OK {
				b.Fatalf("%s rep %d: %s %s %s", mode, rep, save.Error, next.Error, done.Error)
			}
			if err := jsonValue(done, &s); err != nil || s.State != "complete" || s.Mode != mode {
				b.Fatalf("%s rep %d: %v %+v", mode, rep, err, s)
			}
			x := benchSample{save.Wall, s.PauseSeconds, next.Wall, s.TotalSeconds, s.SizeBytes, s.ChildPrivateBytes}
			samples[mode] = append(samples[mode], x)
			b.Logf("%s rep %d: call %.3fs pause %.3fs next cell %.3fs total %.2fs size %d MB child private %d MB",
				mode, rep, x.callWall, x.pause, x.nextCell, x.total, x.size>>20, x.childPrivate>>20)
		}
	}
	in, fk := mean(samples["inline"]), mean(samples["fork"])
	b.ReportMetric(in.callWall, "inline_pause_s")
	b.ReportMetric(fk.callWall, "fork_pause_s")
	b.ReportMetric(in.callWall/fk.callWall, "pause_ratio_inline/fork")
	// The part of the fork's pause the kernel itself measured (collecting
	// the names, the fork): the rest of the round trip is the call's way
	// through the kernel's messaging, beside the newborn child.
	b.ReportMetric(fk.pause, "fork_kernel_pause_s")
	b.ReportMetric(in.nextCell, "inline_next_cell_s")
	b.ReportMetric(fk.nextCell, "fork_next_cell_s")
	b.ReportMetric(in.total, "inline_total_s")
	b.ReportMetric(fk.total, "fork_total_s")
	b.ReportMetric(float64(in.size)/(1<<20), "file_MB")
	b.ReportMetric(float64(fk.childPrivate)/(1<<20), "fork_child_private_MB")
}

func mean(xs []benchSample) benchSample {
	var m benchSample
	for _, x := range xs {
		m.callWall += x.callWall / float64(len(xs))
		m.pause += x.pause / float64(len(xs))
		m.nextCell += x.nextCell / float64(len(xs))
		m.total += x.total / float64(len(xs))
		m.size += x.size / int64(len(xs))
		m.childPrivate += x.childPrivate / int64(len(xs))
	}
	return m
}

// benchmarkProbe compares the two ways of finding the names that cannot be
// pickled, on 2,000 small names and one 100 MB array: probe="on_failure"
// (pickle the whole namespace; only if that fails, each name alone) and
// probe="always" (each name alone first), with and without a socket.
func benchmarkProbe(b *testing.B) {
	dir := b.TempDir()
	type variant struct{ probe, ns string }
	var variants []variant
	for _, ns := range []string{"clean", "socket"} {
		for _, probe := range []string{"on_failure", "always"} {
			variants = append(variants, variant{probe, ns})
		}
	}
	for range b.N {
		steps := []step{startKernel(), nbCell("import numpy as np\nbig = np.full(100 << 17, 1.5)\n" +
			"for _i in range(2000):\n    globals()['v%d' % _i] = {'k': list(range(50)), 's': 'x' * 100}\n")}
		for _, v := range variants {
			if v.ns == "socket" {
				steps = append(steps, nbCell("import socket\nsock = socket.socket()"))
			} else {
				steps = append(steps, nbCell("sock = None"))
			}
			steps = append(steps, ck("save", pyStr(filepath.Join(dir, v.ns+v.probe+".ckpt")), "1", "mode='inline'", fmt.Sprintf("probe=%q", v.probe)))
		}
		r := drive(b, steps...)
		for i, v := range variants {
			var s ckptSummary
			if err := jsonValue(r[3+2*i], &s); err != nil || s.State != "complete" || s.Partial != (v.ns == "socket") {
				b.Fatalf("%s %s: %v %+v", v.ns, v.probe, err, s)
			}
			b.ReportMetric(s.TotalSeconds, fmt.Sprintf("%s_%s_s", v.ns, v.probe))
		}
	}
}

// jsonValue decodes a call's value into v, or says why it cannot.
func jsonValue(r stepResult, v any) error {
	if !r.OK {
		return fmt.Errorf("%s", r.Error)
	}
	return json.Unmarshal(r.Value, v)
}
