//go:build linux

package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	enumspb "go.temporal.io/api/enums/v1"

	"millrace/internal/cluster"
	"millrace/internal/jobs"
	"millrace/internal/mdreport"
	"millrace/internal/reliability"
	"millrace/internal/testcluster"
	"millrace/internal/testenv"
)

// report collects every scenario's row; TestMain prints it.
var report cluster.Report

// setup describes the cluster the scenarios ran on, for the report.
var setup string

// scenarios are TestCluster's, in the order they run: the table is
// written only when all of them ran and passed.
var scenarios = []struct {
	name string
	run  func(*testing.T, *env)
	// long scenarios run with MILLRACE_CLUSTER=full (`make cluster`)
	// only: `make test` keeps to the fast ones, and the worker's hand-back
	// on SIGTERM that the rolling restart relies on has its own fast test
	// (activities: TestWorkerStopsGracefully).
	long bool
}{
	{"list", listing, false},
	{"mcp-reads", mcpReads, false},
	{"kill-and-partition", killAndPartition, false},
	{"rolling-restart", rollingRestart, true},
	{"postgres-restart", postgresRestart, true},
}

// full says whether the long scenarios run too.
func full() bool { return os.Getenv("MILLRACE_CLUSTER") == "full" }

func TestMain(m *testing.M) {
	code := m.Run()
	rows := report.All()
	if len(rows) == 0 {
		os.Exit(code)
	}
	section := fmt.Sprintf("%s%s\n%s", reliability.Machine(), setup, report.Markdown())
	fmt.Printf("\nmillrace cluster suite\n\n%s", section)
	if p := os.Getenv("MILLRACE_CLUSTER_WRITE"); p != "" {
		complete := code == 0 && len(rows) == len(scenarios)
		for _, r := range rows {
			complete = complete && !strings.Contains(r.Figures, "FAILED")
		}
		if !complete {
			fmt.Fprintf(os.Stderr, "not writing %s: %d of %d scenarios ran, and every one must pass\n", p, len(rows), len(scenarios))
		} else if err := mdreport.WriteSection(p, cluster.BeginMarker, cluster.EndMarker, "\n"+section); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// env is the cluster the scenarios share, with the test's clients on its
// client host.
type env struct {
	*testcluster.Cluster
	dir string        // notebooks' folder, the MCP server's root
	svc *jobs.Service // on the client host
	mcp *client.Client
}

// TestCluster starts one cluster and runs every scenario on it in turn:
// starting it takes a while, and each scenario leaves it as it found it
// (every worker polling, the database up).
func TestCluster(t *testing.T) {
	dir := t.TempDir()
	c := testcluster.New(t, testcluster.Options{Workers: 3, Roots: []string{dir}})
	e := &env{Cluster: c, dir: dir, svc: c.Service(t, dir), mcp: c.MCP.Client(t, c.Client)}
	version, err := c.DB.Query(c.Client, "postgres", "SHOW server_version")
	if err != nil {
		t.Fatal(err)
	}
	setup = fmt.Sprintf("- cluster: PostgreSQL %s on host db (Temporal persistence and visibility), the Temporal server on host temporal, %d workers on hosts worker1..%d, millrace-mcp over HTTP on host mcp, the test's clients on host client: network namespaces on one bridge, sharing this machine's file system (the data dir), processors and clock\n",
		strings.Fields(version)[0], len(c.Workers), len(c.Workers))
	for _, s := range scenarios {
		if s.long && !full() {
			t.Logf("%s: a long scenario, run by make cluster (MILLRACE_CLUSTER=full)", s.name)
			continue
		}
		began := time.Now()
		ok := t.Run(s.name, func(t *testing.T) { s.run(t, e) })
		t.Logf("%s: %s in %s", s.name, map[bool]string{true: "passed", false: "FAILED"}[ok], time.Since(began).Round(100*time.Millisecond))
	}
}

// scenario accumulates one row of the report; it is added when the test
// ends, whether it passed or not.
type scenario struct {
	mu  sync.Mutex
	row cluster.Row
}

func begin(t *testing.T, name string) *scenario {
	t.Helper()
	s := &scenario{row: cluster.Row{Scenario: name}}
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if t.Failed() {
			s.row.Figures = strings.TrimSpace("TEST FAILED; " + s.row.Figures)
		}
		report.Add(s.row)
	})
	return s
}

func (s *scenario) runs(n int) { s.mu.Lock(); s.row.Runs += n; s.mu.Unlock() }
func (s *scenario) ok()        { s.mu.Lock(); s.row.AsExpected++; s.mu.Unlock() }
func (s *scenario) lost()      { s.mu.Lock(); s.row.Lost++; s.mu.Unlock() }

func (s *scenario) figure(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.row.Figures != "" {
		s.row.Figures += "; "
	}
	s.row.Figures += fmt.Sprintf(format, args...)
}

// notebook writes a notebook of cells into a new folder under the MCP
// server's root, so that what its runs write there is theirs alone.
func (e *env) notebook(t *testing.T, name string, cells ...string) string {
	t.Helper()
	dir, err := os.MkdirTemp(e.dir, strings.TrimSuffix(name, ".ipynb")+"-")
	if err != nil {
		t.Fatal(err)
	}
	return testenv.WriteNotebook(t, dir, name, cells...)
}

// cellsNotebook is notebook for a testcluster.CellsNotebook.
func (e *env) cellsNotebook(t *testing.T, cells int, seconds float64) string {
	t.Helper()
	dir, err := os.MkdirTemp(e.dir, "cells-")
	if err != nil {
		t.Fatal(err)
	}
	return testcluster.CellsNotebook(t, dir, "cells.ipynb", cells, seconds)
}

// start starts a run through the job service.
func (e *env) start(t *testing.T, req jobs.StartRequest) string {
	t.Helper()
	st, err := e.svc.Start(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return st.JobID
}

// waitEnded waits for a run to end; ok is false if it did not within
// timeout.
func (e *env) waitEnded(t *testing.T, id string, timeout time.Duration) (jobs.Status, bool) {
	t.Helper()
	st, err := e.svc.WaitEnded(context.Background(), id, timeout, nil)
	if err != nil {
		t.Errorf("wait for %s: %v", id, err)
	}
	return st, st.Ended()
}

// workerRunning names the worker running a run's current attempt, "" if
// none does.
func (e *env) workerRunning(t *testing.T, id string) *testcluster.Worker {
	t.Helper()
	d, err := e.svc.Client.DescribeWorkflow(context.Background(), id, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range d.RawResponse.GetPendingActivities() {
		if p.GetState() != enumspb.PENDING_ACTIVITY_STATE_STARTED {
			continue
		}
		for _, w := range e.Workers {
			if w.Owns(p.GetLastWorkerIdentity()) {
				return w
			}
		}
	}
	return nil
}

// records are the cell records of run, from the CellsLog in the folder of
// notebook.
func records(t *testing.T, notebook, run string) []testcluster.Record {
	t.Helper()
	return testcluster.Of(testcluster.Records(t, filepath.Dir(notebook)), run)
}

// call calls an MCP tool that must succeed and decodes its structured
// content.
func call[T any](t *testing.T, c *client.Client, name string, args map[string]any) T {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = name, args
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	var out T
	if res.IsError {
		t.Fatalf("%s %v: tool error %+v", name, args, res.Content)
	}
	b, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s: structured content %s: %v", name, b, err)
	}
	return out
}

// secs renders a duration in seconds, one decimal.
func secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }
