// Package warmpool keeps a warm zygote for the bundled runner's Python: a
// process that has imported what the runner and an ipykernel kernel import
// (nbclient, jupyter_client, ipykernel, IPython, and the worker's
// --warm-imports) and forks a fresh runner, and from it a fresh kernel, for
// every run. CPython's forkserver idea, applied to Jupyter kernels: a run
// skips two Python starts and about a second of imports.
//
// Nothing is reused: each run gets processes forked for it alone, which
// exit with it, so two runs share no state a cold start would not share
// (see millrace_zygote.py for what a fork keeps: the hash seed, and what the
// warm imports read from the environment at import).
//
// The worker's supervision is unchanged: the executor still starts one
// child per run through executor.StartWith (process group, Pdeathsig, the
// attempt's marker, cgroup, cwd, environment, descriptors), but that child
// is millrace_attach.py, which hands all of it to the zygote and stands in
// for the forked runner (signals in, exit status out). The forked runner
// joins the attach process's cgroups and rlimits and writes the attempt's
// marker into its environment block before any of the run's code runs, so
// limits and marker sweeps see it as they see a cold runner. Whenever the
// zygote cannot take a run (none ready, dead, stale, the run's environment
// changes how Python starts, a kernelspec that is not this Python's
// ipykernel), the attach process execs the cold runner in place, or the
// runner starts its kernel the cold way: the pool can make a run faster,
// never make it fail.
//
// Linux only: macOS stays cold, because fork without exec is unsafe with
// Apple's system frameworks (why CPython's multiprocessing spawns there),
// and the portable supervisor (MILLRACE_SUPERVISOR=portable) has no
// Pdeathsig for the zygote's forks to rely on.
package warmpool

import (
	"bufio"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"millrace/internal/executor"
	"millrace/internal/filemode"
	"millrace/internal/portable"
)

//go:embed millrace_zygote.py
var zygoteScript []byte

//go:embed millrace_attach.py
var attachScript []byte

// markerPad is the length of the placeholder marker value a zygote starts
// with (MARKER_PAD in millrace_zygote.py): a forked run writes its marker
// and environment over the zygote's environment block, so that
// /proc/PID/environ shows them as it shows a cold run's. A run whose
// variables do not all fit shows the marker and those that do.
const markerPad = 32 << 10

// titlePad is the length of the zygote's last argument, a placeholder that
// makes room for a forked runner or kernel to show its own command line
// (ps, /proc/PID/cmdline) as a cold one would.
const titlePad = 4 << 10

// DefaultReadyWithin bounds a zygote's imports.
const DefaultReadyWithin = 60 * time.Second

// ErrUnsupported means this platform or supervisor runs every run cold.
var ErrUnsupported = errors.New("the warm pool needs Linux and the native supervisor (fork without exec is unsafe on macOS; the portable supervisor has no Pdeathsig)")

// Config describes the pool of one Python environment.
type Config struct {
	Python string // the bundled runner's interpreter
	Runner string // the bundled runner's script (executor.Executor.Script)
	// DataDir is the worker's data dir: scripts and the socket's private
	// folder go under it.
	DataDir string
	// Env is the environment runs get from the worker (runenv.Kernel with
	// no run variables): a run whose variables change how Python starts
	// (PYTHON*, HOME, LANG, LC_*) goes cold.
	Env []string
	// WarmImports are modules the zygote imports besides the runner's and
	// the kernel's (--warm-imports).
	WarmImports []string
	Logger      *slog.Logger
	// Begin, when set, holds StartInBackground's zygote until it is
	// closed: the zygote's imports take a processor for half a second,
	// which a worker's own start (and the dev service's ready) should not
	// share.
	Begin <-chan struct{}
}

// Pool is a started warm pool. Attach is safe for concurrent use.
type Pool struct {
	cfg     Config
	zscript string
	ascript string
	sockDir string
	log     *slog.Logger

	mu      sync.Mutex
	cur     *zygote // nil while none is ready
	closed  bool
	serial  int
	stopped chan struct{} // closed by Close
	done    chan struct{} // closed when the supervising goroutine has ended
	ready   chan struct{} // closed once the first zygote is ready or failed
	failed  error         // why the first zygote did not start (StartInBackground)
}

// zygote is one started zygote process.
type zygote struct {
	proc   *executor.Process
	sock   string
	Import time.Duration // its warm-up
	exited chan struct{}
	// retired is closed when the zygote takes no more runs: it exited,
	// or it is draining because its environment changed.
	retired chan struct{}
}

// Start starts the pool's zygote, waits until it is ready and checks it
// with a run of a one-cell notebook through it: a pool that fails its
// self-check is not started (the error says why), and the worker runs
// cold. Once started, a zygote that dies or finds its environment changed
// is replaced in the background; runs go cold meanwhile.
func Start(ctx context.Context, cfg Config) (*Pool, error) {
	p, err := newPool(cfg)
	if err != nil {
		return nil, err
	}
	z, err := p.first(ctx)
	if err != nil {
		os.RemoveAll(p.sockDir)
		return nil, err
	}
	p.cur = z
	close(p.ready)
	go p.supervise(z)
	return p, nil
}

// StartInBackground is Start without the wait: it returns at once, and
// runs start cold until the first zygote has passed its self-check (about
// two seconds of imports and a one-cell run). A worker, and the dev
// service above all, is ready to take runs in a fraction of a second
// instead of after the pool's warm-up. A pool that fails its self-check is
// logged ("warm pool off: runs start cold") and stays empty; WaitReady
// reports why.
func StartInBackground(cfg Config) (*Pool, error) {
	p, err := newPool(cfg)
	if err != nil {
		return nil, err
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*DefaultReadyWithin)
		defer cancel()
		go func() {
			select {
			case <-p.stopped:
				cancel() // Close does not wait for a zygote's imports
			case <-ctx.Done():
			}
		}()
		if cfg.Begin != nil {
			select {
			case <-cfg.Begin:
			case <-ctx.Done():
			}
		}
		z, err := p.first(ctx)
		p.mu.Lock()
		if err == nil && p.closed {
			err = errors.New("the pool was closed while its zygote started")
		}
		if err != nil {
			p.failed = err
			p.mu.Unlock()
			if z != nil {
				z.stop()
			}
			p.log.Warn("warm pool off: runs start cold", "reason", err)
			close(p.ready)
			close(p.done)
			return
		}
		p.cur = z
		p.mu.Unlock()
		close(p.ready)
		p.log.Info("warm pool ready", "zygote", z.proc.Pid(), "imports", z.Import)
		p.supervise(z)
	}()
	return p, nil
}

// WaitReady waits until the pool's first zygote is ready (nil), or has
// failed its start or self-check (the reason). Runs never need to wait:
// until then they start cold. Tests and benchmarks that measure warm runs
// do.
func (p *Pool) WaitReady(ctx context.Context) error {
	select {
	case <-p.ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failed
}

// newPool writes the pool's scripts and makes its socket folder.
func newPool(cfg Config) (*Pool, error) {
	if runtime.GOOS != "linux" || portable.Enabled() {
		return nil, ErrUnsupported
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	zs, err := executor.WriteScript(cfg.DataDir, "millrace_zygote", zygoteScript)
	if err != nil {
		return nil, err
	}
	as, err := executor.WriteScript(cfg.DataDir, "millrace_attach", attachScript)
	if err != nil {
		return nil, err
	}
	dir, err := socketDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	return &Pool{cfg: cfg, zscript: zs, ascript: as, sockDir: dir, log: cfg.Logger.With("python", cfg.Python),
		stopped: make(chan struct{}), done: make(chan struct{}), ready: make(chan struct{})}, nil
}

// first starts the pool's first zygote and runs the self-check through it.
func (p *Pool) first(ctx context.Context) (*zygote, error) {
	z, err := p.start(ctx)
	if err == nil {
		err = p.selfCheck(ctx, z)
	}
	if err != nil && z != nil {
		z.stop()
		z = nil
	}
	return z, err
}

// socketDir makes the private (0700) folder of the zygotes' sockets: under
// the data dir, or a temporary folder when that path would pass a unix
// socket's length limit (108 bytes).
func socketDir(dataDir string) (string, error) {
	dir := filepath.Join(dataDir, "warm")
	if len(dir) > 80 {
		return os.MkdirTemp("", "millrace-warm-")
	}
	if err := os.MkdirAll(dir, filemode.Dir); err != nil {
		return "", fmt.Errorf("warm pool folder: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return "", fmt.Errorf("warm pool folder: %w", err)
	}
	return dir, nil
}

// start starts a zygote and waits for its ready line.
func (p *Pool) start(ctx context.Context) (*zygote, error) {
	p.mu.Lock()
	p.serial++
	sock := filepath.Join(p.sockDir, "z"+strconv.Itoa(p.serial)+".sock")
	p.mu.Unlock()
	_ = os.Remove(sock)
	args := []string{p.cfg.Python, p.zscript, sock, p.cfg.Runner}
	if len(p.cfg.WarmImports) > 0 {
		args = append(args, "--warm-imports", strings.Join(p.cfg.WarmImports, ","))
	}
	args = append(args, "--title-pad="+strings.Repeat("_", titlePad))
	env := slices.DeleteFunc(slices.Clone(p.cfg.Env), func(kv string) bool { return strings.HasPrefix(kv, executor.MarkerEnv+"=") })
	env = append(env, executor.MarkerEnv+"="+strings.Repeat("_", markerPad))
	proc, err := executor.StartWith(executor.Launch{Args: args, Dir: p.sockDir, Env: env, DeathSignal: syscall.SIGKILL})
	if err != nil {
		return nil, fmt.Errorf("start the warm zygote: %w", err)
	}
	z := &zygote{proc: proc, sock: sock, exited: make(chan struct{}), retired: make(chan struct{})}
	readyLine := make(chan string, 1)
	go func() {
		var retire sync.Once
		sc := bufio.NewScanner(proc.Stdout)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "ready "); ok {
				select {
				case readyLine <- line:
				default:
				}
			} else if sc.Text() == "draining" {
				retire.Do(func() { close(z.retired) })
			}
		}
		<-z.exited
		retire.Do(func() { close(z.retired) })
	}()
	var errTail tail
	go func() {
		sc := bufio.NewScanner(proc.Stderr)
		for sc.Scan() {
			errTail.add(sc.Text())
			p.log.Warn("warm zygote", "pid", proc.Pid(), "stderr", sc.Text())
		}
	}()
	go func() {
		<-proc.Done()
		proc.Cleanup()
		close(z.exited)
	}()
	timer := time.NewTimer(DefaultReadyWithin)
	defer timer.Stop()
	select {
	case line := <-readyLine:
		if f := strings.Fields(line); len(f) > 0 {
			if s, err := strconv.ParseFloat(f[0], 64); err == nil {
				z.Import = time.Duration(s * float64(time.Second))
			}
		}
		return z, nil
	case <-z.exited:
		return nil, fmt.Errorf("the warm zygote exited with %d before it was ready: %s", proc.ExitCode(), errTail.String())
	case <-timer.C:
		z.stop()
		return nil, fmt.Errorf("the warm zygote was not ready within %s", DefaultReadyWithin)
	case <-ctx.Done():
		z.stop()
		return nil, ctx.Err()
	}
}

// stop kills the zygote; the runs it forked die with it (Pdeathsig).
func (z *zygote) stop() {
	_ = z.proc.Stop(0)
	<-z.exited
}

// supervise replaces the zygote when it exits, until Close: at once when it
// lived a while (it drained because its environment changed), after a
// growing pause when it keeps dying young.
func (p *Pool) supervise(z *zygote) {
	defer close(p.done)
	pause := time.Second
	for {
		born := time.Now()
		select {
		case <-p.stopped:
			z.stop()
			return
		case <-z.retired:
		}
		// A draining zygote exits once its runs end: it is killed only
		// when the pool closes.
		old := z
		go func() {
			select {
			case <-p.stopped:
				old.stop()
			case <-old.exited:
			}
		}()
		p.mu.Lock()
		if p.cur == z {
			p.cur = nil
		}
		p.mu.Unlock()
		p.log.Warn("warm zygote retired; runs start cold until it is replaced", "pid", z.proc.Pid())
		if time.Since(born) > time.Minute {
			pause = time.Second
		}
		for {
			select {
			case <-p.stopped:
				return
			case <-time.After(pause):
			}
			pause = min(2*pause, 30*time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), DefaultReadyWithin)
			go func() {
				select {
				case <-p.stopped:
					cancel() // Close does not wait for a zygote's imports
				case <-ctx.Done():
				}
			}()
			nz, err := p.start(ctx)
			cancel()
			if err != nil {
				p.log.Warn("warm zygote restart failed", "err", err)
				continue
			}
			p.mu.Lock()
			if p.closed {
				p.mu.Unlock()
				nz.stop()
				return
			}
			p.cur = nz
			p.mu.Unlock()
			p.log.Info("warm zygote replaced", "pid", nz.proc.Pid(), "imports", nz.Import)
			z = nz
			break
		}
	}
}

// Attach turns the cold runner's command line into the attach process's,
// when a zygote is ready; else it returns cold unchanged.
func (p *Pool) Attach(cold []string) []string {
	p.mu.Lock()
	z := p.cur
	p.mu.Unlock()
	if z == nil {
		return cold
	}
	return append([]string{p.cfg.Python, "-I", "-S", p.ascript, z.sock, "--"}, cold...)
}

// Zygote returns the pid of the ready zygote, 0 when none is.
func (p *Pool) Zygote() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		return 0
	}
	return p.cur.proc.Pid()
}

// Memory returns the ready zygote's resident and proportional set sizes
// in bytes (smaps_rollup): what the pool costs while idle.
func (p *Pool) Memory() (rss, pss int64, err error) {
	pid := p.Zygote()
	if pid == 0 {
		return 0, 0, errors.New("no zygote is ready")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[2] == "kB" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			switch f[0] {
			case "Rss:":
				rss = n << 10
			case "Pss:":
				pss = n << 10
			}
		}
	}
	return rss, pss, nil
}

// Close kills the zygote (and the runs it forked, which the worker stops
// before it closes the pool) and removes the socket folder.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.cur = nil
	p.mu.Unlock()
	close(p.stopped)
	<-p.done
	return os.RemoveAll(p.sockDir)
}

// tail keeps the last lines of a zygote's stderr for an error message.
type tail struct {
	mu    sync.Mutex
	lines []string
}

func (t *tail) add(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, s)
	if len(t.lines) > 5 {
		t.lines = t.lines[1:]
	}
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, " | ")
}
