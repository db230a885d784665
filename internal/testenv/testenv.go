// Package testenv gives integration tests the real things: the embedded
// Temporal server (one per test package, on a SQLite file), workers on it,
// the job service, the repository's test notebooks, and a look at the
// process table.
// Nothing here is a mock.
package testenv

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"millrace/internal/config"
	"millrace/internal/connect"
	"millrace/internal/jobs"
	"millrace/internal/nbworker"
	"millrace/internal/paths"
	"millrace/workflows"
)

// RepoRoot is the module's root directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Testdata is one of the repository's own notebooks (testdata/ at the
// root), each written for a behaviour the tests check.
func Testdata(name string) string {
	return filepath.Join(RepoRoot(), "testdata", name)
}

// ServerBin locates the embedded Temporal server binary. Tests need it: it
// is built by `make devserver`, which the README's test command runs.
func ServerBin() (string, error) {
	if p := os.Getenv("MILLRACE_TEMPORAL_BIN"); p != "" {
		return p, nil
	}
	p := filepath.Join(RepoRoot(), "bin", "millrace-temporal")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s is missing: build it with `make devserver` (the README's test command does)", p)
	}
	return p, nil
}

// Server is a running embedded Temporal server.
type Server struct {
	Address string
	Client  client.Client
	Dir     string // temp dir holding the DB and data dirs
	dev     *testsuite.DevServer
	keep    bool // Stop leaves Dir (StartServerIn)
}

// SearchAttributes are millrace's, typed for the SDK's dev server options.
func SearchAttributes() temporal.SearchAttributes {
	return temporal.NewSearchAttributes(
		workflows.KeyNotebook.ValueSet(""), workflows.KeyStatus.ValueSet(""),
		workflows.KeyLabels.ValueSet(nil), workflows.KeyBatchID.ValueSet(""), workflows.KeyKind.ValueSet(""),
		workflows.KeyNotebookDir.ValueSet(""), workflows.KeyOutputDir.ValueSet(""), workflows.KeyCwd.ValueSet(""),
	)
}

// SearchAttributeFlags are the server's --search-attribute flags that
// register SearchAttributes as it starts, for a test that starts the
// server binary itself: a workflow started before they are registered is
// refused.
func SearchAttributeFlags() []string {
	var attrs []string
	for k := range SearchAttributes().GetUntypedValues() {
		attrs = append(attrs, k.GetName()+"="+k.GetValueType().String())
	}
	sort.Strings(attrs)
	var flags []string
	for _, a := range attrs {
		flags = append(flags, "--search-attribute", a)
	}
	return flags
}

// StartServer starts the embedded server on a SQLite file in a new temp
// dir, through the SDK's StartDevServer as a user's temporal CLI would be.
// Call it from TestMain and Stop it at the end.
func StartServer() (*Server, error) {
	bin, err := ServerBin()
	if err != nil {
		return nil, err
	}
	// Test packages start their servers in parallel, and a server picks
	// free ports for its internal services by listening and closing, so
	// two can race for one port and one exits at start: try again.
	for try := 1; ; try++ {
		dir, err := os.MkdirTemp("", "millrace-test-")
		if err != nil {
			return nil, err
		}
		s, err := startServer(bin, dir)
		if err != nil {
			os.RemoveAll(dir)
		}
		if err == nil || try == 3 {
			return s, err
		}
		fmt.Fprintf(os.Stderr, "testenv: %v; trying again\n", err)
	}
}

// StartServerIn starts the embedded server on dir/temporal.db, creating it
// or reusing what an earlier start left there; Stop keeps dir. Benchmarks
// use it to keep a store that takes minutes to fill between runs.
func StartServerIn(dir string) (*Server, error) {
	bin, err := ServerBin()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s, err := startServer(bin, dir)
	if err != nil {
		return nil, err
	}
	s.keep = true
	return s, nil
}

func startServer(bin, dir string) (*Server, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	dev, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath:     bin,
		DBFilename:       filepath.Join(dir, "temporal.db"),
		LogLevel:         "error",
		SearchAttributes: SearchAttributes(),
		ClientOptions:    &client.Options{Namespace: "default", Logger: sdklog.NewStructuredLogger(Logger())},
		Stdout:           io.Discard,
		Stderr:           os.Stderr,
	})
	if err != nil {
		return nil, fmt.Errorf("start embedded Temporal server %s: %w", bin, err)
	}
	return &Server{Address: dev.FrontendHostPort(), Client: dev.Client(), Dir: dir, dev: dev}, nil
}

// PID is the server process's id, found by its database path among the
// processes; 0 if it is not found.
func (s *Server) PID() int {
	return ProcessWithArg(filepath.Join(s.Dir, "temporal.db"))
}

// Stop stops the server and removes its files (unless StartServerIn made
// it).
func (s *Server) Stop() {
	s.Client.Close()
	_ = s.dev.Stop()
	if !s.keep {
		os.RemoveAll(s.Dir)
	}
}

// Config returns a configuration for a worker or service on this server
// with its own data dir under t's temp dir.
func (s *Server) Config(t testing.TB) *config.Config {
	t.Helper()
	return &config.Config{
		Address: s.Address, Namespace: "default", DataDir: t.TempDir(),
		TaskQueue: "test-" + strings.ReplaceAll(strings.ToLower(t.Name()), "/", "-"),
		MaxRuns:   5, Executor: "bundled", Grace: 3 * time.Second,
		// The warm pool is on, as on a worker, unless the suite runs
		// with MILLRACE_WARM_POOL=false (the cold path, same tests).
		WarmPoolOff: os.Getenv("MILLRACE_WARM_POOL") == "false",
	}
}

// StartWorker starts an in-process worker for cfg; it stops with the test.
// With options (a metrics handler, say) the worker gets a client of its
// own, dialled with them.
func (s *Server) StartWorker(t testing.TB, cfg *config.Config, opts ...connect.Option) *nbworker.Worker {
	t.Helper()
	c := s.Client
	if len(opts) > 0 {
		c = s.Dial(t, opts...)
	}
	w, err := nbworker.Start(c, cfg, Logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	// A worker takes runs before its warm pool is ready (they start
	// cold); tests wait for it, so that their runs fork from the pool as
	// a worker's do once warm, and a pool that fails its self-check fails
	// the test instead of leaving every run cold unnoticed.
	if w.Warm != nil {
		if err := w.Warm.WaitReady(context.Background()); err != nil {
			t.Fatalf("the worker's warm pool did not start: %v", err)
		}
	}
	return w
}

// Dial opens a client of the server with opts; it closes with the test.
func (s *Server) Dial(t testing.TB, opts ...connect.Option) client.Client {
	t.Helper()
	c, err := connect.Dial(context.Background(), &config.Config{Address: s.Address, Namespace: "default"}, Logger(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// Service returns a job service for cfg with root as its only root.
func (s *Server) Service(t testing.TB, cfg *config.Config, root string) *jobs.Service {
	t.Helper()
	roots, err := paths.NewRoots([]string{root})
	if err != nil {
		t.Fatal(err)
	}
	return &jobs.Service{Client: s.Client, Namespace: cfg.Namespace, TaskQueue: cfg.TaskQueue, DataDir: cfg.DataDir, Roots: roots, NotifyAllow: cfg.NotifyAllow, AllowEnv: cfg.AllowEnv, Python: cfg.Python}
}

// Logger logs errors only, so test output shows what failed.
func Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

// BuildBinary builds a main package of the module into dir and returns its
// path (the build cache makes this fast after the first time).
func BuildBinary(dir, pkg, name string) (string, error) {
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = RepoRoot()
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return out, nil
}

// Eventually polls cond until it is true or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// CopyFile copies a corpus or test file into dir.
func CopyFile(t testing.TB, src, dir string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, filepath.Base(src))
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// Main is a test package's TestMain: it starts one embedded server for the
// whole package into *server, runs the tests, stops it and runs cleanups.
func Main(m *testing.M, server **Server, cleanups ...func()) {
	s, err := StartServer()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*server = s
	code := m.Run()
	s.Stop()
	for _, c := range cleanups {
		c()
	}
	os.Exit(code)
}
