package reliability_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"millrace/internal/config"
	"millrace/internal/jobs"
	"millrace/internal/mdreport"
	"millrace/internal/reliability"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// server is shared by every scenario: one embedded Temporal server on a
// SQLite file; each scenario has its own task queue and data dir.
var server *testenv.Server

// report collects every scenario's row; TestMain prints it.
var report reliability.Report

// full reports whether the long scenarios were asked for
// (MILLRACE_RELIABILITY=full, as `make reliability` sets). Without it only
// the fast part runs: bad input, a few cancels, one worker kill.
func full() bool { return os.Getenv("MILLRACE_RELIABILITY") == "full" }

// count picks the number of runs of a scenario in fast and full mode.
func count(fast, long int) int {
	if full() {
		return long
	}
	return fast
}

func TestMain(m *testing.M) {
	s, err := testenv.StartServer()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	server = s
	code := m.Run()
	s.Stop()
	mode := "fast (go test ./...)"
	if full() {
		mode = "full (MILLRACE_RELIABILITY=full)"
	}
	section := fmt.Sprintf("%s\n%s", reliability.Machine(), report.Markdown())
	fmt.Printf("\nmillrace reliability suite, %s\n\n%s", mode, section)
	// Under make reliability (MILLRACE_RELIABILITY_WRITE=RELIABILITY.md), a
	// complete run writes its machine and table into the document.
	if p := os.Getenv("MILLRACE_RELIABILITY_WRITE"); p != "" && full() && code == 0 {
		if !filepath.IsAbs(p) {
			p = filepath.Join(testenv.RepoRoot(), p)
		}
		if err := mdreport.WriteSection(p, reliability.BeginMarker, reliability.EndMarker, "\n"+section); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// scenario accumulates one row of the report; it is added when the test
// ends, whether it passed or not.
type scenario struct {
	mu  sync.Mutex
	row reliability.Row
}

func begin(t *testing.T, name string) *scenario {
	t.Helper()
	s := &scenario{row: reliability.Row{Scenario: name}}
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if t.Failed() && !strings.Contains(s.row.Notes, "FAILED") {
			s.row.Notes = strings.TrimSpace("TEST FAILED; " + s.row.Notes)
		}
		report.Add(s.row)
	})
	return s
}

// longOnly skips a scenario outside full mode, and says so in the table.
// Nothing is missing when it skips: the long scenarios (load, repeated
// faults) take about 17 minutes and have their own command, `make
// reliability`, while the README's test command runs the fast part.
func longOnly(t *testing.T, name string) {
	t.Helper()
	if !full() {
		report.Add(reliability.Row{Scenario: name, Skipped: "full mode only (make reliability)"})
		t.Skip("long scenario: set MILLRACE_RELIABILITY=full (make reliability)")
	}
}

func (s *scenario) run()          { s.mu.Lock(); s.row.Runs++; s.mu.Unlock() }
func (s *scenario) ok()           { s.mu.Lock(); s.row.AsExpected++; s.mu.Unlock() }
func (s *scenario) lost()         { s.mu.Lock(); s.row.Lost++; s.mu.Unlock() }
func (s *scenario) orphans(n int) { s.mu.Lock(); s.row.Orphans += n; s.mu.Unlock() }

func (s *scenario) note(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.row.Notes != "" {
		s.row.Notes += "; "
	}
	s.row.Notes += fmt.Sprintf(format, args...)
}

// setup gives a scenario its own task queue, data dir, in-process worker
// and job service rooted at root.
func setup(t *testing.T, root string) (*config.Config, *jobs.Service) {
	t.Helper()
	cfg := server.Config(t)
	server.StartWorker(t, cfg)
	return cfg, server.Service(t, cfg, root)
}

// marker returns an environment entry unique to one run, to find its
// processes in the process table.
func marker() (map[string]string, string) {
	v := uuid.NewString()
	return map[string]string{"TEST_RUN_MARKER": v}, "TEST_RUN_MARKER=" + v
}

// leftover waits up to 15 s for a run's processes to be gone (a killed
// process takes a moment to be reaped) and returns how many remain.
func leftover(kv string) int {
	deadline := time.Now().Add(15 * time.Second)
	for {
		n := len(testenv.ProcessesWithEnv(kv))
		if n == 0 || time.Now().After(deadline) {
			return n
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitEnd waits for a job to end; it returns the last status seen, ended
// or not.
func waitEnd(t *testing.T, svc *jobs.Service, id string, timeout time.Duration) jobs.Status {
	t.Helper()
	st, err := svc.WaitEnded(context.Background(), id, timeout, nil)
	if err != nil {
		t.Errorf("wait for %s: %v", id, err)
	}
	return st
}

// waitRunning waits until the run is RUNNING inside its cells (at least
// minCell), or false after the timeout.
func waitRunning(svc *jobs.Service, id string, minCell int, timeout time.Duration) (jobs.Status, bool) {
	deadline := time.Now().Add(timeout)
	for {
		st, err := svc.Status(context.Background(), id)
		if err == nil && (st.Ended() || st.Status == workflows.StatusRunning && st.Progress.CurrentCell >= minCell) {
			return st, !st.Ended()
		}
		if time.Now().After(deadline) {
			return st, false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// logLines reads a job's whole log through the job service, page by page.
func logLines(t *testing.T, svc *jobs.Service, id string) []string {
	t.Helper()
	var out []string
	cursor := ""
	for {
		page, err := svc.Logs(context.Background(), jobs.LogsRequest{JobID: id, Cursor: cursor, Limit: jobs.MaxLogLines})
		if err != nil {
			t.Errorf("logs of %s: %v", id, err)
			return out
		}
		for _, l := range page.Lines {
			out = append(out, fmt.Sprintf("%d\t%s", l.Attempt, l.Text))
		}
		cursor = page.NextCursor
		if len(page.Lines) == 0 {
			return out
		}
	}
}

// jitter returns a random duration in [0, max).
func jitter(max time.Duration) time.Duration {
	return time.Duration(rand.Int64N(int64(max)))
}

// slowParams make testdata's slow.ipynb print "step i" steps times.
func slowParams(steps int, delay float64) map[string]any {
	return map[string]any{"steps": float64(steps), "delay": delay}
}
