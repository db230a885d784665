//go:build linux

package cluster_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"millrace/internal/jobs"
	"millrace/internal/testcluster"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// BenchmarkClusterThroughput is the scaling curve of the cluster path: the
// same batch of short runs (a kernel start and three small cells each, the
// shape where orchestration weighs most) through 1, 2 and 3 worker hosts,
// each worker with 2 slots, against the Temporal server on PostgreSQL. It
// reports runs per minute for each, the ratios to one worker, and where
// the processors went: the whole machine's busy share, and per run the
// Temporal server's, PostgreSQL's and the workers' (their kernels
// included) processor time. On a machine of few cores the curve flattens
// where the machine is busy: more workers cannot run more kernels than
// there are cores, which the busy share shows.
func BenchmarkClusterThroughput(b *testing.B) {
	const runs, slots = 24, 2
	dir := b.TempDir()
	c := testcluster.New(b, testcluster.Options{Workers: 3, MaxRuns: slots, Roots: []string{dir}})
	svc := c.Service(b, dir)
	nb := testenv.WriteNotebook(b, dir, "short.ipynb",
		"x = sum(range(100_000))", "y = [i * i for i in range(10_000)]", "print(x, len(y))")
	ctx := context.Background()
	serverHost, dbHost := c.Temporal.Host, c.DB.Host
	running := []bool{true, true, true}
	for b.Loop() {
		var rate [4]float64
		for n := 1; n <= 3; n++ {
			// Exactly n workers poll: the others are stopped (SIGTERM,
			// idle, so at once) and come back for the next step.
			for i, w := range c.Workers {
				if i < n && !running[i] {
					w.Start(b)
				}
				if i >= n && running[i] {
					if err := w.Stop(time.Minute); err != nil {
						b.Fatal(err)
					}
				}
				running[i] = i < n
			}
			live := c.Workers[:n]
			before := sampleCPU(serverHost, dbHost, live)
			began := time.Now()
			ids := make([]string, runs)
			for i := range ids {
				st, err := svc.Start(ctx, jobs.StartRequest{Path: nb})
				if err != nil {
					b.Fatal(err)
				}
				ids[i] = st.JobID
			}
			var wg sync.WaitGroup
			retried := make([]bool, runs)
			for i, id := range ids {
				wg.Add(1)
				go func() {
					defer wg.Done()
					st, err := svc.WaitEnded(ctx, id, 15*time.Minute, nil)
					if err != nil || st.Status != workflows.StatusSucceeded {
						b.Errorf("run %s: %s %v", id, st.Status, err)
					}
					retried[i] = st.Attempt > 1
				}()
			}
			wg.Wait()
			elapsed := time.Since(began)
			after := sampleCPU(serverHost, dbHost, live)
			rate[n] = runs / elapsed.Minutes()
			key := fmt.Sprintf("w%d-", n)
			b.ReportMetric(rate[n], key+"runs/min")
			b.ReportMetric(100*after.busyShare(before), key+"machine-busy-%")
			b.ReportMetric(1000*(after.server-before.server)/runs, key+"server-cpu-ms/run")
			b.ReportMetric(1000*(after.db-before.db)/runs, key+"postgres-cpu-ms/run")
			b.ReportMetric(1000*(after.workers-before.workers)/runs, key+"workers-cpu-ms/run")
			n2 := 0
			for _, r := range retried {
				if r {
					n2++
				}
			}
			b.ReportMetric(float64(n2), key+"retried")
			b.Logf("%d worker(s) x %d slots: %d runs in %s (%.1f runs/min), machine %.0f%% busy",
				n, slots, runs, elapsed.Round(100*time.Millisecond), rate[n], 100*after.busyShare(before))
		}
		b.ReportMetric(rate[2]/rate[1], "w2/w1")
		b.ReportMetric(rate[3]/rate[1], "w3/w1")
	}
}

// cpuSample is processor time by party, and the machine's busy and total
// ticks, at one moment.
type cpuSample struct {
	server, db, workers float64 // seconds
	busy, total         float64 // /proc/stat ticks, every core
}

func (s cpuSample) busyShare(before cpuSample) float64 {
	if s.total == before.total {
		return 0
	}
	return (s.busy - before.busy) / (s.total - before.total)
}

// sampleCPU reads the processor time of every process on the server's and
// the database's hosts, and of the live workers with their children (a
// kernel's time is added to its worker's when the worker reaps it, and
// every run of a step is reaped before the step's second sample).
func sampleCPU(server, db *testcluster.Host, workers []*testcluster.Worker) cpuSample {
	var s cpuSample
	for _, pid := range hostPIDs(server) {
		s.server += testenv.CPUSeconds(pid)
	}
	for _, pid := range hostPIDs(db) {
		s.db += testenv.CPUSecondsWithChildren(pid)
	}
	for _, w := range workers {
		s.workers += testenv.CPUSecondsWithChildren(w.PID())
	}
	s.busy, s.total = machineTicks()
	return s
}

// hostPIDs are the processes in host's network namespace.
func hostPIDs(h *testcluster.Host) []int {
	out, _ := exec.Command("ip", "netns", "pids", h.NS).Output()
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// machineTicks is the machine's busy and total processor ticks so far,
// over every core (the first line of /proc/stat; idle and iowait are not
// busy).
func machineTicks() (busy, total float64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	for i, v := range f[1:] {
		n, _ := strconv.ParseFloat(v, 64)
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}
