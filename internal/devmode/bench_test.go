package devmode_test

import (
	"testing"
	"time"

	"millrace/internal/devmode"
	"millrace/internal/testenv"
)

// BenchmarkDevModeStartup measures dev mode as a user meets it: from the
// command (a dev-mode worker process) to a ready service, on a new data dir
// and again on the same one, and the resident memory of each process once
// idle. `go test -run '^$' -bench DevMode -benchtime 3x ./internal/devmode/`
func BenchmarkDevModeStartup(b *testing.B) {
	var cold, warm []float64
	var serviceRSS, serverRSS, workerRSS []float64
	for i := 0; i < b.N; i++ {
		dataDir := b.TempDir()
		for round := 0; round < 2; round++ {
			began := time.Now()
			w := startDevWorker(b, dataDir)
			var st devmode.State
			for {
				var err error
				if st, err = devmode.Status(dataDir); err == nil {
					break
				}
				if time.Since(began) > 2*time.Minute {
					b.Fatal("dev service not ready")
				}
				time.Sleep(20 * time.Millisecond)
			}
			elapsed := time.Since(began).Seconds()
			if round == 0 {
				cold = append(cold, elapsed)
			} else {
				warm = append(warm, elapsed)
			}
			time.Sleep(3 * time.Second) // idle
			serviceRSS = append(serviceRSS, rssMB(st.PID))
			serverRSS = append(serverRSS, rssMB(st.ServerPID))
			workerRSS = append(workerRSS, rssMB(w.Process.Pid))
			_ = w.Process.Kill()
			_ = w.Wait()
			if _, err := devmode.Stop(dataDir, time.Minute); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(mean(cold), "ready-new-s")
	b.ReportMetric(mean(warm), "ready-restart-s")
	b.ReportMetric(mean(serverRSS), "server-rss-MB")
	b.ReportMetric(mean(serviceRSS), "service-rss-MB")
	b.ReportMetric(mean(workerRSS), "client-worker-rss-MB")
}

func rssMB(pid int) float64 { return testenv.MemoryMB(pid, "VmRSS") }

func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(max(len(xs), 1))
}
