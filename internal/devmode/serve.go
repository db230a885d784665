package devmode

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"

	"millrace/internal/config"
	"millrace/internal/connect"
	"millrace/internal/executor"
	"millrace/internal/filemode"
	"millrace/internal/nbworker"
	"millrace/internal/python"
	"millrace/workflows"
)

// ServerBinary is the embedded Temporal server built from devserver/.
const ServerBinary = "millrace-temporal"

// ErrNoServer means no Temporal server binary was found.
var ErrNoServer = errors.New("no Temporal dev server binary: build it with `make devserver` (it lands in bin/millrace-temporal) and put it beside millrace or on PATH, or set MILLRACE_TEMPORAL_BIN")

// FindServer locates the dev server: the configured path, millrace-temporal
// beside this executable or on PATH, else a temporal CLI on PATH (it takes
// the same `server start-dev` flags, but Serve runs it only with the user's
// opt-in: see checkServer). It never downloads anything.
func FindServer(configured string) (path string, isCLI bool, err error) {
	if configured != "" {
		p, err := exec.LookPath(configured)
		if err != nil {
			return "", false, fmt.Errorf("dev server %q: %w", configured, err)
		}
		return p, filepath.Base(p) == "temporal", nil
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), ServerBinary)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, false, nil
		}
	}
	if p, err := exec.LookPath(ServerBinary); err == nil {
		return p, false, nil
	}
	if p, err := exec.LookPath("temporal"); err == nil {
		return p, true, nil
	}
	return "", false, ErrNoServer
}

// ServerArgs returns the `temporal server start-dev` style command line of
// the dev server for a database file. millrace-temporal also gets
// --auth-token-file when tokenFile is set; the temporal CLI has no such
// flag (see checkServer).
func ServerArgs(bin string, isCLI bool, ip string, port int, namespace, db, tokenFile string) []string {
	args := []string{bin}
	if isCLI {
		args = append(args, "server", "start-dev")
	}
	args = append(args, "--ip", ip, "--port", strconv.Itoa(port), "--namespace", namespace,
		"--db-filename", db, "--log-level", "warn")
	if isCLI {
		// The CLI serves a UI by default; millrace-temporal only with
		// --ui-port (uiArgs).
		args = append(args, "--headless")
	}
	if !isCLI && tokenFile != "" {
		args = append(args, "--auth-token-file", tokenFile)
	}
	names := make([]string, 0, len(workflows.SearchAttributeTypes))
	for n := range workflows.SearchAttributeTypes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		args = append(args, "--search-attribute", n+"="+workflows.SearchAttributeTypes[n])
	}
	return args
}

// Serve runs the dev service in the foreground until ctx ends: it takes the
// data dir's lock, starts the Temporal server on the data dir's database,
// starts a worker, and records its state for other processes. opts apply to
// the worker's client (its metrics handler).
func Serve(ctx context.Context, cfg *config.Config, logger *slog.Logger, ready func(State), opts ...connect.Option) error {
	started := time.Now()
	dir := Dir(cfg.DataDir)
	lk, err := lock(filepath.Join(dir, lockName), 0)
	if err != nil {
		if st, serr := Status(cfg.DataDir); serr == nil {
			return fmt.Errorf("a dev service (pid %d) already serves %s at %s", st.PID, cfg.DataDir, st.Address)
		}
		return fmt.Errorf("lock %s: %w (is another dev service starting?)", dir, err)
	}
	defer lk.Close()
	// A service killed with SIGKILL leaves its state behind: it is stale
	// from the moment this one holds the lock.
	os.Remove(filepath.Join(dir, stateName))
	defer os.Remove(filepath.Join(dir, stateName))

	// Finding the bundled runner's Python takes a subprocess (and 0.3 s
	// more behind a pyenv shim): it runs while the server starts, and the
	// worker's start below takes its cached answer.
	if cfg.Executor != executor.ChoosePapermill {
		go python.Find(cfg.Python)
	}
	// How long each step took goes into the ready line, so that a slow
	// start says where its time went.
	var phases []any
	last := started
	mark := func(name string) {
		now := time.Now()
		phases = append(phases, name+"_ms", now.Sub(last).Milliseconds())
		last = now
	}
	bin, isCLI, err := FindServer(cfg.TemporalBin)
	if err != nil {
		return err
	}
	if err := checkServer(bin, isCLI); err != nil {
		return err
	}
	tighten(cfg.DataDir, logger)
	if err := ensureToken(cfg.DataDir); err != nil {
		return fmt.Errorf("make the dev service's token: %w", err)
	}
	opts = append(opts, ClientOption(cfg.DataDir))
	if err := ownKey(cfg); err != nil {
		return err
	}
	mark("prepare")
	port, err := stablePort(dir, portName, 0)
	if err != nil {
		return err
	}
	// The UI needs millrace-temporal: the CLI's own UI could not require
	// the token.
	serveUI := cfg.UI && !isCLI
	var publicUI int
	if serveUI {
		if publicUI, err = uiPort(dir); err != nil {
			return err
		}
	}
	db := filepath.Join(cfg.DataDir, DBName)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	// The server picks free ports for its internal services by listening
	// and closing; another process can take one in between, and the server
	// then exits at start. Such a start is tried again.
	var server *serverProc
	var c client.Client
	var innerUI int
	for try := 1; ; try++ {
		args := ServerArgs(bin, isCLI, "127.0.0.1", port, cfg.Namespace, db, TokenFile(cfg.DataDir))
		if serveUI {
			if innerUI, err = innerUIPort(); err != nil {
				return err
			}
			args = append(args, uiArgs(innerUI, publicUI)...)
		}
		if server, err = startServer(args, logger); err != nil {
			return err
		}
		if c, err = waitReady(ctx, &config.Config{Address: addr, Namespace: cfg.Namespace, CodecKeyFile: cfg.CodecKeyFile}, server, logger, opts...); err == nil {
			break
		}
		if serr := server.stop(); serr != nil {
			logger.Warn("the Temporal dev server did not stop", "error", serr)
		}
		if try == 3 || !server.exited() {
			return err
		}
		logger.Warn("the Temporal dev server exited while starting; starting it again", "error", err)
	}
	mark("server")
	defer func() {
		if err := server.stop(); err != nil {
			logger.Warn("the Temporal dev server did not stop", "error", err)
		}
	}()
	defer c.Close()
	// The server registers millrace's search attributes from its flags;
	// the check that they are there runs beside the worker's start.
	attrs := make(chan error, 1)
	go func() { attrs <- connect.EnsureSearchAttributes(ctx, c, cfg.Namespace) }()
	wcfg := *cfg
	wcfg.Address = addr
	if !isCLI {
		wcfg.OwnerOnlyWorkerRoots()
	}
	w, err := nbworker.Start(c, &wcfg, logger)
	if err != nil {
		return err
	}
	defer w.Stop()
	if err := <-attrs; err != nil {
		return err
	}
	mark("worker")

	st := State{
		PID: os.Getpid(), ServerPID: server.proc.Pid(), Address: addr, Namespace: cfg.Namespace,
		TaskQueue: cfg.TaskQueue, DataDir: cfg.DataDir, DB: db, LogFile: LogFile(cfg.DataDir),
		Server: bin, StartedAt: started,
	}
	if serveUI {
		token, err := readToken(cfg.DataDir)
		if err != nil {
			return err
		}
		inner := net.JoinHostPort("127.0.0.1", strconv.Itoa(innerUI))
		// The frontend answers health checks before the server has
		// started ui-server: the state, once written, promises a UI.
		if err := waitListening(ctx, inner, server); err != nil {
			return err
		}
		ui, err := startUI(publicUI, inner, token, cfg.Namespace, cfg.CodecKeyFile, logger)
		if err != nil {
			return err
		}
		defer ui.Close()
		st.UI = uiBase(publicUI)
		mark("ui")
	}
	st.ReadyIn = time.Since(started).Seconds()
	if err := writeState(cfg.DataDir, st); err != nil {
		return fmt.Errorf("write dev service state: %w", err)
	}
	logger.Info("dev service ready", append([]any{"address", addr, "data_dir", cfg.DataDir, "ready_seconds", st.ReadyIn}, phases...)...)
	if ready != nil {
		ready(st)
	}
	select {
	case <-ctx.Done():
		logger.Info("dev service stopping")
		return nil
	case <-server.done:
		return fmt.Errorf("the Temporal server exited: %s", server.exitDetail())
	}
}

// stablePort returns the port remembered in the dev folder's file name when
// it is free, so that long-lived clients (and a browser tab) reconnect to
// the same address after a restart; otherwise first or the next free port
// above it (any free port when first is 0), remembered for next time.
func stablePort(dir, name string, first int) (int, error) {
	path := filepath.Join(dir, name)
	if b, err := os.ReadFile(path); err == nil {
		if p, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && portFree(p) {
			return p, nil
		}
	}
	p := 0
	for try := first; first > 0 && try < first+100 && try <= 65535; try++ {
		if portFree(try) {
			p = try
			break
		}
	}
	if p == 0 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find a free port: %w", err)
		}
		p = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	return p, os.WriteFile(path, []byte(strconv.Itoa(p)+"\n"), filemode.PrivateFile)
}

func portFree(p int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// serverProc is the Temporal server child.
type serverProc struct {
	proc *executor.Process
	done <-chan struct{}
	tail *tailBuffer
}

// serverGrace is how long the server gets to release its database after
// SIGTERM before SIGKILL (SQLite survives a SIGKILL too).
const serverGrace = 15 * time.Second

// startServer forks the server through the executor's supervisor, the one
// place that forks children with the guarantee that they die with this
// process (Pdeathsig from a thread that lives as long as the child, or the
// portable watchdog). The server then gets SIGTERM, which lets it release
// its database cleanly, and it never gets a terminal's signals (a process
// group of its own). Its output goes to this process's stderr and a tail
// kept for error messages.
func startServer(args []string, logger *slog.Logger) (*serverProc, error) {
	p, err := executor.StartWith(executor.Launch{Args: args, Env: os.Environ(), DeathSignal: syscall.SIGTERM})
	if err != nil {
		return nil, fmt.Errorf("start Temporal dev server: %w", err)
	}
	tail := &tailBuffer{max: 8 << 10}
	out := io.MultiWriter(os.Stderr, tail)
	var pumps sync.WaitGroup
	pumps.Add(2)
	go func() { defer pumps.Done(); _, _ = io.Copy(out, p.Stdout) }()
	go func() { defer pumps.Done(); _, _ = io.Copy(out, p.Stderr) }()
	done := make(chan struct{})
	go func() {
		<-p.Done()
		// The tail is complete once both pipes reached EOF; a process the
		// server left holding them must not hold up its exit's report.
		waitBounded(&pumps, 2*time.Second)
		close(done)
	}()
	logger.Info("Temporal dev server started", "pid", p.Pid(), "watchdog_pid", p.WatchdogPid(), "args", strings.Join(args, " "))
	return &serverProc{proc: p, done: done, tail: tail}, nil
}

func waitBounded(wg *sync.WaitGroup, bound time.Duration) {
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	select {
	case <-ch:
	case <-time.After(bound):
	}
}

func (s *serverProc) exitDetail() string {
	return fmt.Sprintf("exit status %d; its last output:\n%s", s.proc.ExitCode(), s.tail.String())
}

func (s *serverProc) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// stop ends the server: SIGTERM, up to serverGrace, then SIGKILL.
func (s *serverProc) stop() error {
	err := s.proc.Stop(serverGrace)
	s.proc.Cleanup()
	return err
}

// waitReady dials the server until it answers a health check.
func waitReady(ctx context.Context, cfg *config.Config, server *serverProc, logger *slog.Logger, opts ...connect.Option) (client.Client, error) {
	addr := cfg.Address
	deadline := time.Now().Add(2 * time.Minute)
	for {
		select {
		case <-server.done:
			return nil, fmt.Errorf("the Temporal dev server exited before it was ready: %s", server.exitDetail())
		case <-ctx.Done():
			return nil, ctx.Err()
		default:
		}
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		c, err := connect.Dial(dctx, cfg, logger, opts...)
		if err == nil {
			_, err = c.CheckHealth(dctx, &client.CheckHealthRequest{})
			if err == nil {
				cancel()
				return c, nil
			}
			c.Close()
		}
		cancel()
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the Temporal dev server at %s was not ready after 2 minutes: %w", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitListening waits until addr accepts connections, for at most a minute.
func waitListening(ctx context.Context, addr string, server *serverProc) error {
	deadline := time.Now().Add(time.Minute)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the Temporal dev server's UI at %s did not listen within a minute: %w", addr, err)
		}
		select {
		case <-server.done:
			return fmt.Errorf("the Temporal dev server exited while starting its UI: %s", server.exitDetail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := bufio.NewScanner(strings.NewReader(string(t.buf)))
	var lines []string
	for s.Scan() {
		lines = append(lines, s.Text())
	}
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}
