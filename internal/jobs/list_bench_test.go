package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"millrace/internal/failure"
	"millrace/internal/jobs"
	"millrace/internal/mcpserver"
	"millrace/internal/paths"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// listQueue is the task queue of the prepared store's runs.
const listQueue = "bench-list-jobs"

// BenchmarkListJobs measures list_jobs' first page with 10,000 finished
// runs in the store (MILLRACE_BENCH_LIST_RUNS changes the count), one
// caller at a time: through the job service with no filter, with a status
// filter, and through an in-process MCP client. One op is one call.
//
// The store is kept between runs in $XDG_CACHE_HOME/millrace-bench
// (~/.cache/millrace-bench; MILLRACE_BENCH_CACHE overrides it) with its
// own embedded server, because filling it takes minutes on SQLite. The
// runs are real NotebookRun workflows started through the job service; a
// stand-in registered under the real activity name finishes each attempt
// at once (every tenth notebook, fail.ipynb, with a cell error), so the
// records, search attributes and statuses are the ones real runs leave.
// The time the preparation took this time is reported (0 when reused).
func BenchmarkListJobs(b *testing.B) {
	want := 10_000
	if v, err := strconv.Atoi(os.Getenv("MILLRACE_BENCH_LIST_RUNS")); err == nil && v > 0 {
		want = v
	}
	dir := os.Getenv("MILLRACE_BENCH_CACHE")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			b.Fatal(err)
		}
		dir = filepath.Join(cache, "millrace-bench")
	}
	dir = filepath.Join(dir, "list-jobs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	roots, err := paths.NewRoots([]string{dir})
	if err != nil {
		b.Fatal(err)
	}
	svc := &jobs.Service{Namespace: "default", TaskQueue: listQueue, DataDir: filepath.Join(dir, "data"), Roots: roots}

	srv := startKept(b, dir)
	svc.Client = srv.Client
	began := time.Now()
	prepared := 0
	if have := finishedRuns(b, srv); have < want {
		// The embedded server syncs every commit to disk: filling the
		// store on a memory file system is about three times faster.
		// The server is stopped, so its files are whole when copied.
		stopStore(srv)
		work := dir
		if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
			if work, err = os.MkdirTemp("/dev/shm", "millrace-bench-"); err != nil {
				b.Fatal(err)
			}
			defer os.RemoveAll(work)
			copyStore(b, dir, work)
		}
		srv = startKept(b, work)
		svc.Client = srv.Client
		prepared = fillStore(b, srv, svc, dir, want-have)
		if work != dir {
			stopStore(srv)
			copyStore(b, work, dir)
			srv = startKept(b, dir)
			svc.Client = srv.Client
		}
	}
	prepare := 0.0
	if prepared > 0 {
		prepare = time.Since(began).Seconds()
	}
	b.Logf("store in %s: %d finished runs, %d started now, preparation %.0f s", dir, finishedRuns(b, srv), prepared, prepare)

	// One call before the timed ones: the first after a start reads a
	// cold database.
	measure := func(b *testing.B, rowsWant int, call func() (int, int)) {
		call()
		var lat []time.Duration
		for b.Loop() {
			t := time.Now()
			rows, total := call()
			lat = append(lat, time.Since(t))
			if rows != rowsWant || total < want {
				b.Fatalf("a page of %d jobs out of %d, want %d out of at least %d", rows, total, rowsWant, want)
			}
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		pct := func(p float64) float64 {
			return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
		}
		b.ReportMetric(pct(0.50), "p50-ms")
		b.ReportMetric(pct(0.99), "p99-ms")
	}
	ctx := context.Background()
	page := min(jobs.DefaultListLimit, want)
	list := func(req jobs.ListRequest) func() (int, int) {
		return func() (int, int) {
			l, err := svc.List(ctx, req)
			if err != nil {
				b.Fatal(err)
			}
			return len(l.Jobs), total(l.Counts)
		}
	}
	b.Run("first_page", func(b *testing.B) {
		measure(b, page, list(jobs.ListRequest{}))
		b.ReportMetric(float64(want), "runs")
		b.ReportMetric(prepare, "prepare-s")
	})
	b.Run("status_filter", func(b *testing.B) {
		measure(b, min(page, want/10), list(jobs.ListRequest{Status: workflows.StatusFailed}))
	})
	b.Run("mcp", func(b *testing.B) {
		c := testenv.MCPClient(b, mcpserver.New(svc, mcpserver.Options{Logger: testenv.Logger()}))
		measure(b, page, func() (int, int) {
			req := mcp.CallToolRequest{}
			req.Params.Name = "list_jobs"
			res, err := c.CallTool(ctx, req)
			if err != nil || res.IsError {
				b.Fatalf("list_jobs: %v %+v", err, res)
			}
			var l jobs.List
			raw, _ := json.Marshal(res.StructuredContent)
			if err := json.Unmarshal(raw, &l); err != nil {
				b.Fatal(err)
			}
			return len(l.Jobs), total(l.Counts)
		})
	})
}

func total(counts map[string]int) int {
	n := 0
	for _, c := range counts {
		n += c
	}
	return n
}

// startKept starts the embedded server on the store kept in dir; it stops
// with the benchmark unless stopStore stopped it first. A store made by
// another server version is refused: it is then made anew.
func startKept(b *testing.B, dir string) *testenv.Server {
	srv, err := testenv.StartServerIn(dir)
	if err == nil {
		b.Cleanup(func() { stopStore(srv) })
		return srv
	}
	b.Logf("the kept store in %s cannot be used (%v): making it anew", dir, err)
	for _, f := range storeFiles(b, dir) {
		if err := os.Remove(f); err != nil {
			b.Fatal(err)
		}
	}
	if srv, err = testenv.StartServerIn(dir); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stopStore(srv) })
	return srv
}

// stopped holds the servers stopStore has stopped.
var stopped sync.Map

// stopStore stops a kept store's server once, so that its files can be
// copied, however often it is called.
func stopStore(srv *testenv.Server) {
	if _, done := stopped.LoadOrStore(srv, true); !done {
		srv.Stop()
	}
}

// finishedRuns counts the closed runs on listQueue.
func finishedRuns(b *testing.B, srv *testenv.Server) int {
	resp, err := srv.Client.CountWorkflow(context.Background(), &workflowservice.CountWorkflowExecutionsRequest{
		Namespace: "default", Query: fmt.Sprintf("TaskQueue = '%s' AND ExecutionStatus != 'Running'", listQueue)})
	if err != nil {
		b.Fatal(err)
	}
	return int(resp.GetCount())
}

// storeFiles are the server's files in dir: the database, its journal and
// version record, not its lock.
func storeFiles(b *testing.B, dir string) []string {
	files, err := filepath.Glob(filepath.Join(dir, "temporal.db*"))
	if err != nil {
		b.Fatal(err)
	}
	var out []string
	for _, f := range files {
		if filepath.Ext(f) != ".lock" {
			out = append(out, f)
		}
	}
	return out
}

// copyStore copies a stopped server's files from one dir to another.
func copyStore(b *testing.B, from, to string) {
	for _, f := range storeFiles(b, to) {
		os.Remove(f)
	}
	for _, f := range storeFiles(b, from) {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, filepath.Base(f)), data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

// fillStore starts n runs on listQueue, 16 at a time, with a stand-in
// worker, and waits until all have finished. Their notebooks live in dir.
func fillStore(b *testing.B, srv *testenv.Server, svc *jobs.Service, dir string, n int) int {
	ctx := context.Background()
	want := finishedRuns(b, srv) + n
	ok := testenv.CopyFile(b, "testdata/stage.ipynb", dir)
	fail := filepath.Join(dir, "fail.ipynb")
	if nb, err := os.ReadFile(ok); err != nil || os.WriteFile(fail, nb, 0o644) != nil {
		b.Fatalf("copy %s to %s: %v", ok, fail, err)
	}

	// A client of its own that logs nothing: the SDK logs every failed
	// attempt, and every tenth one fails on purpose.
	quiet, err := client.Dial(client.Options{HostPort: srv.Address, Namespace: "default",
		Logger: sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		b.Fatal(err)
	}
	defer quiet.Close()
	w := worker.New(quiet, listQueue, worker.Options{
		MaxConcurrentActivityExecutionSize:     200,
		MaxConcurrentWorkflowTaskExecutionSize: 200,
		MaxConcurrentWorkflowTaskPollers:       8,
		MaxConcurrentActivityTaskPollers:       8,
	})
	w.RegisterWorkflowWithOptions(workflows.NotebookRun, workflow.RegisterOptions{Name: workflows.NotebookRunWorkflow})
	w.RegisterActivityWithOptions(standIn, activity.RegisterOptions{Name: workflows.RunNotebookActivity})
	if err := w.Start(); err != nil {
		b.Fatal(err)
	}
	defer w.Stop()

	missing := n
	var next atomic.Int64
	var wg sync.WaitGroup
	began := time.Now()
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(missing) {
					return
				}
				nb := ok
				if i%10 == 0 {
					nb = fail
				}
				if _, err := svc.Start(ctx, jobs.StartRequest{Path: nb}); err != nil {
					b.Error(err)
					return
				}
				if i%1000 == 0 {
					fmt.Fprintf(os.Stderr, "list_jobs store: %d of %d runs started in %.0f s\n", i, missing, time.Since(began).Seconds())
				}
			}
		}()
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	testenv.Eventually(b, 30*time.Minute, fmt.Sprintf("%d finished runs", want), func() bool { return finishedRuns(b, srv) >= want })
	return missing
}

// standIn finishes an attempt at once in place of the real activity: the
// runs it ends are what list_jobs reads, not what a kernel did.
func standIn(ctx context.Context, in workflows.RunInput) (workflows.AttemptResult, error) {
	res := workflows.AttemptResult{Attempt: 1, Executor: "bench-stand-in", OutputPath: in.Output, StartedAt: time.Now(), EndedAt: time.Now()}
	if filepath.Base(in.Notebook) != "fail.ipynb" {
		return res, nil
	}
	res.Error = &workflows.RunError{Type: failure.TypeCellError, Message: "cell 0 raised ValueError: bench"}
	return res, temporal.NewApplicationErrorWithOptions(res.Error.Message, string(failure.TypeCellError),
		temporal.ApplicationErrorOptions{NonRetryable: true, Details: []any{res}})
}
