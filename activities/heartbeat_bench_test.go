package activities_test

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"millrace/internal/executor"
	"millrace/internal/heartbeat"
	"millrace/internal/jobs"
	"millrace/internal/runopts"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// heartbeatBenchRuns is how many runs of each kind (quiet, busy) a
// BenchmarkHeartbeat interval runs at once.
const heartbeatBenchRuns = 4

// BenchmarkHeartbeat measures what the heartbeat interval costs and buys,
// for each interval (1 s, the cluster default 3 s, 5 s, 15 s) one after
// another on the same embedded server: 4 quiet runs (a cell that sleeps:
// nothing changes) and 4 busy ones (a cell printing every 0.1 s) at once,
// each kind on a worker of its own, for a window of MILLRACE_BENCH_HEARTBEAT_S
// seconds (60) once every run is in its long cell; then all 8 are
// canceled at once. It reports:
//
//   - heartbeat RPCs per run-minute that the server accepted, counted on
//     the workers' clients by a gRPC interceptor (what is billed: after
//     the activity's gate and the SDK's throttle);
//   - the embedded server's processor time per run-minute, beyond its idle
//     use with the same workers polling (from /proc/<pid>/stat);
//   - cancel latency: request to the heartbeat whose answer brought the
//     cancel to the worker (what the interval decides), request to
//     CANCELED seen by the caller, and request to the run's last process
//     gone (these two add the stop: SIGTERM, the grace, SIGKILL), median
//     and max of the 4 of each kind. Each cancel is asked at a random
//     moment within a keep-alive, so they sample the whole span between
//     two heartbeats.
//
// Runs get the default 15 s heartbeat timeout, except at 15 s, which the
// worker refuses with it (--heartbeat-every must be less than half): those
// runs are started with a 60 s timeout (4 x the interval), as a run whose
// starter set one would be.
// `go test -run '^$' -bench Heartbeat -benchtime 1x ./activities/`
func BenchmarkHeartbeat(b *testing.B) {
	window := 60 * time.Second
	if s, err := strconv.Atoi(os.Getenv("MILLRACE_BENCH_HEARTBEAT_S")); err == nil && s > 0 {
		window = time.Duration(s) * time.Second
	}
	dir := b.TempDir()
	nb := testenv.CopyFile(b, "testdata/quiet_then_busy.ipynb", dir)
	intervals := []time.Duration{time.Second, heartbeat.DefaultCluster, 5 * time.Second, 15 * time.Second}

	// Every worker first, then the server's idle use with all of them
	// polling: what each interval's runs add is measured beyond it.
	type pair struct {
		quiet, busy    *heartbeatRecord
		svcQuiet, svcB *jobs.Service
	}
	pairs := map[time.Duration]*pair{}
	for _, every := range intervals {
		p := &pair{}
		for _, kind := range []string{"quiet", "busy"} {
			cfg := server.Config(b)
			cfg.TaskQueue += "-" + every.String() + "-" + kind
			cfg.HeartbeatEvery = every
			cfg.MaxRuns = heartbeatBenchRuns
			rec := startCountedWorker(b, cfg)
			svc := server.Service(b, cfg, dir)
			if kind == "quiet" {
				p.quiet, p.svcQuiet = rec, svc
			} else {
				p.busy, p.svcB = rec, svc
			}
		}
		pairs[every] = p
	}
	pid := server.PID()
	if pid == 0 {
		b.Fatal("the embedded Temporal server's process was not found")
	}
	idleFrom, idleCPU := time.Now(), testenv.CPUSeconds(pid)
	time.Sleep(20 * time.Second)
	idleRate := (testenv.CPUSeconds(pid) - idleCPU) / time.Since(idleFrom).Seconds()
	b.Logf("server idle: %.1f ms of processor a second", idleRate*1000)

	var ref *heartbeatPhase // the 1 s interval's, for the ratios
	for _, every := range intervals {
		p := pairs[every]
		b.Run(every.String(), func(b *testing.B) {
			timeout := workflows.DefaultHeartbeatTimeout
			if heartbeat.Check(every, timeout) != nil {
				timeout = 4 * every
			}
			var ph heartbeatPhase
			for b.Loop() {
				ph = runHeartbeatPhase(b, nb, p.svcQuiet, p.svcB, p.quiet, p.busy, every, timeout, window, pid, idleRate)
			}
			s := heartbeat.ScheduleFor(every, timeout)
			b.Logf("every %s, timeout %s (keep-alive %s): %+v", every, timeout, s.KeepAlive, ph)
			b.ReportMetric(timeout.Seconds(), "heartbeat-timeout-s")
			b.ReportMetric(ph.busyRate, "busy-rpc/run-min")
			b.ReportMetric(ph.quietRate, "quiet-rpc/run-min")
			b.ReportMetric(ph.serverCPU*1000, "server-cpu-ms/run-min")
			b.ReportMetric(ph.busyReached.Seconds(), "busy-cancel-reached-s")
			b.ReportMetric(ph.quietReached.Seconds(), "quiet-cancel-reached-s")
			b.ReportMetric(max(ph.busyReachedMax, ph.quietReachedMax).Seconds(), "cancel-reached-max-s")
			b.ReportMetric(ph.busyCancel.Seconds(), "busy-cancel-s")
			b.ReportMetric(ph.quietCancel.Seconds(), "quiet-cancel-s")
			b.ReportMetric(ph.busyCancelMax.Seconds(), "busy-cancel-max-s")
			b.ReportMetric(ph.quietCancelMax.Seconds(), "quiet-cancel-max-s")
			b.ReportMetric(ph.busyGone.Seconds(), "busy-kernel-gone-s")
			b.ReportMetric(ph.quietGone.Seconds(), "quiet-kernel-gone-s")
			if every == time.Second {
				ref = &ph
			} else if ref != nil {
				b.ReportMetric(ph.busyRate/ref.busyRate, "busy-rpc-ratio-to-1s")
				b.ReportMetric(ph.quietRate/ref.quietRate, "quiet-rpc-ratio-to-1s")
				b.ReportMetric(ph.serverCPU/ref.serverCPU, "server-cpu-ratio-to-1s")
			}
		})
	}
}

// heartbeatPhase is one interval's figures.
type heartbeatPhase struct {
	busyRate, quietRate float64 // accepted heartbeats per run-minute
	serverCPU           float64 // server processor seconds per run-minute beyond idle
	// Cancel latencies, median and max: request to the heartbeat that
	// brought it to the worker, request to CANCELED, and request to the
	// run's last process gone (median).
	busyReached, quietReached       time.Duration
	busyReachedMax, quietReachedMax time.Duration
	busyCancel, quietCancel         time.Duration
	busyCancelMax, quietCancelMax   time.Duration
	busyGone, quietGone             time.Duration
}

// runHeartbeatPhase runs the quiet and the busy runs of one interval,
// counts over the window, and cancels them all.
func runHeartbeatPhase(b *testing.B, nb string, svcQuiet, svcBusy *jobs.Service, quiet, busy *heartbeatRecord, every, timeout, window time.Duration, pid int, idleRate float64) heartbeatPhase {
	ctx := context.Background()
	type run struct {
		svc    *jobs.Service
		id     string
		marker string
		quiet  bool
	}
	var runs []run
	for i := 0; i < 2*heartbeatBenchRuns; i++ {
		isQuiet := i%2 == 0
		svc, params := svcBusy, map[string]any{"quiet": 0.0, "busy": 3600.0}
		if isQuiet {
			svc, params = svcQuiet, map[string]any{"quiet": 3600.0, "busy": 0.0}
		}
		st, err := svc.Start(ctx, jobs.StartRequest{Path: nb, HeartbeatTimeout: timeout, Options: runopts.Options{Parameters: params}})
		if err != nil {
			b.Fatal(err)
		}
		runs = append(runs, run{svc: svc, id: st.JobID, marker: executor.MarkerEnv + "=" + st.JobID + ".1", quiet: isQuiet})
	}
	// The window opens once every run is in its long cell.
	for _, r := range runs {
		cell := "end = "
		if r.quiet {
			cell = "import time"
		}
		testenv.Eventually(b, 3*time.Minute, "run "+r.id+" in its long cell", func() bool {
			st, err := r.svc.Status(ctx, r.id)
			if err != nil || st.Ended() {
				b.Fatalf("run %s: %s %v", r.id, st.Status, err)
			}
			return strings.HasPrefix(st.Progress.CurrentSource, cell)
		})
	}
	from, cpu0 := time.Now(), testenv.CPUSeconds(pid)
	time.Sleep(window)
	to, cpu1 := time.Now(), testenv.CPUSeconds(pid)
	count := func(rec *heartbeatRecord) float64 {
		n := 0
		for _, hb := range rec.since(from) {
			if hb.at.Before(to) {
				n++
			}
		}
		return float64(n) / heartbeatBenchRuns / to.Sub(from).Minutes()
	}
	ph := heartbeatPhase{busyRate: count(busy), quietRate: count(quiet)}
	runMinutes := float64(len(runs)) * to.Sub(from).Minutes()
	ph.serverCPU = (cpu1 - cpu0 - idleRate*to.Sub(from).Seconds()) / runMinutes

	// Cancel each at a random moment within a keep-alive (at least a
	// look), so that the requests fall anywhere between two heartbeats:
	// asked at once right after the window, they would all fall at the
	// same point; asked at even steps, in step with the starts. One
	// poller watches every run's processes.
	spread := heartbeat.ScheduleFor(every, timeout).KeepAlive
	asked := make([]time.Time, len(runs))
	first := time.Now()
	for i := range runs {
		asked[i] = first.Add(rand.N(spread))
	}
	canceled := make([]time.Duration, len(runs))
	gone := make([]time.Duration, len(runs))
	var wg sync.WaitGroup
	for i, r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Until(asked[i]))
			st, err := r.svc.Cancel(ctx, r.id, "bench")
			if err == nil && !st.Ended() {
				// Cancel waits 15 s: a 15 s interval and the stop's
				// grace take longer.
				st, err = r.svc.WaitEnded(ctx, r.id, 2*time.Minute, nil)
			}
			if err != nil || st.Status != workflows.StatusCanceled {
				b.Errorf("cancel %s: %s %v", r.id, st.Status, err)
			}
			canceled[i] = time.Since(asked[i])
		}()
	}
	left := len(runs)
	for deadline := first.Add(spread + time.Minute); left > 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for i, r := range runs {
			if gone[i] == 0 && time.Now().After(asked[i]) && len(testenv.ProcessesWithEnv(r.marker)) == 0 {
				gone[i], left = time.Since(asked[i]), left-1
			}
		}
	}
	wg.Wait()
	if left > 0 {
		b.Fatalf("%d canceled runs still have processes a minute later", left)
	}
	var br, qr, bc, qc, bg, qg []time.Duration
	for i, r := range runs {
		rec := busy
		if r.quiet {
			rec = quiet
		}
		at, ok := rec.cancelReached(r.id)
		if !ok {
			b.Fatalf("no heartbeat of run %s came back with its cancel", r.id)
		}
		if r.quiet {
			qr, qc, qg = append(qr, at.Sub(asked[i])), append(qc, canceled[i]), append(qg, gone[i])
		} else {
			br, bc, bg = append(br, at.Sub(asked[i])), append(bc, canceled[i]), append(bg, gone[i])
		}
	}
	ph.busyReached, ph.quietReached = median(br), median(qr)
	ph.busyReachedMax, ph.quietReachedMax = maxDuration(br), maxDuration(qr)
	ph.busyCancel, ph.quietCancel, ph.busyGone, ph.quietGone = median(bc), median(qc), median(bg), median(qg)
	ph.busyCancelMax, ph.quietCancelMax = maxDuration(bc), maxDuration(qc)
	return ph
}

func maxDuration(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}
