package executor

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"millrace/internal/portable"
)

// MarkerEnv is set in the environment of every executor process. The kernel
// inherits it, although jupyter_client starts the kernel in a session of its
// own (out of reach of a signal to our process group): Stop finds leftover
// processes by this marker.
const MarkerEnv = "MILLRACE_ATTEMPT_ID"

// DefaultGrace is how long Stop waits after SIGTERM before SIGKILL. The
// bundled runner saves the output notebook and shuts its kernel down in it.
const DefaultGrace = 5 * time.Second

// Process is a running executor in its own process group.
type Process struct {
	cmd    *exec.Cmd
	marker string
	done   chan struct{} // closed when the child has been reaped
	state  *os.ProcessState
	werr   error
	// watchdog is the portable supervisor's watchdog (nil with Pdeathsig).
	watchdog *watchdog

	// Stdout and Stderr are the read ends of the child's output pipes. The
	// caller must drain both (logstore.Writer.Copy) until EOF.
	Stdout, Stderr *os.File

	stopOnce sync.Once
	stopErr  error
	stopped  atomic.Bool // Stop has swept the marker
}

// Start runs args (program first, no shell) in dir with env, in a new process
// group, with the marker added to env. The child dies if the worker dies
// (see StartWith), and its output goes to pipes the caller reads line by
// line, so lines from both streams keep their order of arrival.
func Start(args []string, dir string, env []string, marker string) (*Process, error) {
	return StartConfined(args, dir, env, marker, nil)
}

// Confiner puts a new executor into its resource limits as it is born
// (limits.Group implements it). BeforeFork runs on the forking thread just
// before the fork, may set attr, and returns what to run on that thread
// right after it; Started runs once the child has exec'd, and an error
// from it kills the child.
type Confiner interface {
	BeforeFork(attr *syscall.SysProcAttr) (after func(), err error)
	Started(pid int) error
}

// StartConfined is Start with the child born inside c's limits (nil: none).
func StartConfined(args []string, dir string, env []string, marker string, c Confiner) (*Process, error) {
	return StartWith(Launch{Args: args, Dir: dir, Env: env, Marker: marker, Confiner: c})
}

// Launch is how to start a child process.
type Launch struct {
	Args     []string // program first, no shell
	Dir      string   // working directory; "" for this process's
	Env      []string // the whole environment; the marker is added
	Marker   string   // "" for none: then nothing is swept by marker
	Confiner Confiner // nil: no limits
	// Files are passed to the child as descriptors 3, 4...
	Files []*os.File
	// DeathSignal is what the child's process group gets when this process
	// dies; 0 is SIGKILL. A child that must release something cleanly (the
	// Temporal server its database) asks for SIGTERM; the portable
	// watchdog follows it with SIGKILL after DefaultGrace.
	DeathSignal syscall.Signal
}

// StartWith is the one place that forks supervised children: notebook
// executors and the dev service's Temporal server. The child gets a process
// group of its own, and must not outlive this process: on Linux the kernel
// sends it DeathSignal when this process dies (Pdeathsig); with the
// portable supervisor (macOS, or EnvVar on Linux) a watchdog does, and
// also kills the processes that carry its marker (see startWatchdog).
func StartWith(l Launch) (*Process, error) {
	args, c := l.Args, l.Confiner
	if len(args) == 0 {
		return nil, errors.New("start a child: empty command")
	}
	if err := portable.Err(); err != nil {
		return nil, fmt.Errorf("start %s: %w", args[0], err)
	}
	sig := l.DeathSignal
	if sig == 0 {
		sig = syscall.SIGKILL
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", args[0], err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("start %s: %w", args[0], err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = l.Dir
	// A child never inherits watchdogEnv: this package's init would turn
	// a Go program of ours into a watchdog instead of running it.
	cmd.Env = slices.DeleteFunc(slices.Clone(l.Env), func(kv string) bool { return strings.HasPrefix(kv, watchdogEnv+"=") })
	if l.Marker != "" {
		cmd.Env = append(cmd.Env, MarkerEnv+"="+l.Marker)
	}
	cmd.Stdin = nil
	cmd.ExtraFiles = l.Files
	cmd.Stdout = outW
	cmd.Stderr = errW
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	native := setDeathSignal(cmd.SysProcAttr, sig)
	p := &Process{cmd: cmd, marker: l.Marker, done: make(chan struct{}), Stdout: outR, Stderr: errR}

	// Pdeathsig fires when the OS thread that forked the child exits, not
	// the process. Fork from a locked thread that stays alive until the child
	// is reaped, so the Go scheduler can never retire it under the child.
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// A confiner may move this thread between cgroups: such a thread
		// ends with this goroutine (never unlocked) instead of going back
		// to the scheduler's pool.
		if c == nil {
			defer runtime.UnlockOSThread()
		}
		if err := startConfined(cmd, c); err != nil {
			started <- err
			return
		}
		if !native {
			// Before the reap below: the child's group stays joinable
			// even if it exits at once.
			dog, err := startWatchdog(cmd.Process.Pid, sig, l.Marker)
			if err != nil {
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				_ = cmd.Wait()
				started <- err
				return
			}
			p.watchdog = dog
		}
		started <- nil
		p.werr = cmd.Wait()
		p.state = cmd.ProcessState
		close(p.done)
	}()
	err = <-started
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, fmt.Errorf("start executor %s: %w", args[0], err)
	}
	return p, nil
}

func startConfined(cmd *exec.Cmd, c Confiner) error {
	if c == nil {
		return cmd.Start()
	}
	after, err := c.BeforeFork(cmd.SysProcAttr)
	if err != nil {
		return err
	}
	err = cmd.Start()
	after()
	if err == nil {
		err = c.Started(cmd.Process.Pid)
	}
	if err != nil && cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	}
	return err
}

// Pid returns the child's pid (also its process group id).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the child has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitCode returns the child's exit status once Done is closed: its exit code,
// or 128+signal when a signal ended it (as a shell reports it).
func (p *Process) ExitCode() int {
	<-p.done
	if p.state == nil {
		return -1
	}
	if ws, ok := p.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return p.state.ExitCode()
}

// reapWait bounds how long Stop waits for the child to be reaped after
// SIGKILL: only a process stuck in the kernel (uninterruptible I/O) takes
// longer.
const reapWait = 5 * time.Second

// Stop ends the run: SIGTERM to the process group, up to grace for the
// executor to save and shut its kernel down, then SIGKILL to the group, and
// finally SIGKILL to any process still carrying the run's marker (a kernel
// in its own session). It waits, bounded, for the child to be reaped, and
// returns an error when the child could not be signalled or was not
// reaped in time (it may still be running). Stop is idempotent (a second
// call returns the first one's error) and safe after the child has exited.
func (p *Process) Stop(grace time.Duration) error {
	p.stopOnce.Do(func() {
		pgid := p.cmd.Process.Pid
		err := signalGroup(pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
		}
		if kerr := signalGroup(pgid, syscall.SIGKILL); err == nil {
			err = kerr
		}
		KillMarked(p.marker)
		p.stopped.Store(true)
		p.watchdog.release()
		select {
		case <-p.done:
		case <-time.After(reapWait):
			if err == nil {
				err = fmt.Errorf("process %d was not reaped %s after SIGKILL", pgid, reapWait)
			}
		}
		if err != nil {
			p.stopErr = fmt.Errorf("stop process %d: %w", pgid, err)
		}
	})
	return p.stopErr
}

// signalGroup signals the process group pgid; a group already gone is not
// an error.
func signalGroup(pgid int, sig syscall.Signal) error {
	if err := syscall.Kill(-pgid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %s to process group %d: %w", sig, pgid, err)
	}
	return nil
}

// Cleanup kills whatever the run left behind after the executor exited by
// itself (a kernel that outlived a crashed runner). Call it once the child is
// done.
//
// After Stop, which swept the marker already, it only kills the group:
// with the portable supervisor a sweep is a run of ps, which costs a
// loaded host a few hundred milliseconds of a cancel.
func (p *Process) Cleanup() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	if !p.stopped.Load() {
		KillMarked(p.marker)
	}
	p.watchdog.release()
}
