package devmode_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"testing"
	"time"

	"millrace/internal/devmode"
	"millrace/internal/testenv"
)

// BenchmarkDevModeStartup measures dev mode as a user meets it: from the
// command (a dev-mode worker process) to a ready service, on a new data dir
// and again on the same one, and the resident memory of each process once
// idle; with the Web UI (the default) and without it (MILLRACE_UI=0), side
// by side, so that what the UI costs reads off one run.
// `go test -run '^$' -bench DevMode -benchtime 3x ./internal/devmode/`
func BenchmarkDevModeStartup(b *testing.B) {
	for _, mode := range []struct{ name, env string }{{"ui", "MILLRACE_UI=1"}, {"no-ui", "MILLRACE_UI=0"}} {
		b.Run(mode.name, func(b *testing.B) { benchStartup(b, mode.env) })
	}
}

func benchStartup(b *testing.B, env string) {
	var cold, warm []float64
	var serviceRSS, serverRSS, workerRSS, usedRSS []float64
	for i := 0; i < b.N; i++ {
		dataDir := b.TempDir()
		for round := 0; round < 2; round++ {
			began := time.Now()
			w := startDevWorker(b, dataDir, env)
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
			if (st.UI != "") != (env == "MILLRACE_UI=1") {
				b.Fatalf("with %s the service's UI is %q", env, st.UI)
			}
			if round == 0 {
				cold = append(cold, elapsed)
			} else {
				warm = append(warm, elapsed)
			}
			time.Sleep(3 * time.Second) // idle
			serviceRSS = append(serviceRSS, rssMB(st.PID))
			serverRSS = append(serverRSS, rssMB(st.ServerPID))
			workerRSS = append(workerRSS, rssMB(w.Process.Pid))
			if st.UI != "" {
				// Idle is before anyone looks; a browser that loaded the
				// UI's page and its run list makes ui-server load its
				// assets and gRPC client.
				loadUI(b, st)
				usedRSS = append(usedRSS, rssMB(st.PID)+rssMB(st.ServerPID))
			}
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
	b.ReportMetric(mean(serverRSS)+mean(serviceRSS), "server+service-rss-MB")
	b.ReportMetric(mean(workerRSS), "client-worker-rss-MB")
	if len(usedRSS) > 0 {
		b.ReportMetric(mean(usedRSS), "server+service-rss-after-ui-MB")
	}
}

// loadUI signs in to the service's UI and fetches what a browser's first
// visit does: the page, its settings and the run list.
func loadUI(b *testing.B, st devmode.State) {
	b.Helper()
	login, err := devmode.UIURL(st)
	if err != nil {
		b.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: time.Minute}
	for _, u := range []string{login, st.UI + "/api/v1/settings", st.UI + "/api/v1/namespaces/" + st.Namespace + "/workflows"} {
		resp, err := c.Get(u)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %s %s", u, resp.Status, body)
		}
	}
	time.Sleep(time.Second)
}

func rssMB(pid int) float64 { return testenv.MemoryMB(pid, "VmRSS") }

func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(max(len(xs), 1))
}
