package executor

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"millrace/internal/portable"
)

// watchdogEnv, in a process's environment, makes this package's init run
// the process as a watchdog (runWatchdog) instead of its main: its value
// is "<pgid> <signal> <marker>".
const watchdogEnv = "MILLRACE_WATCHDOG"

// watchdog is the portable supervisor's guarantee that a child does not
// outlive this process, where there is no Pdeathsig (macOS, or Linux with
// the portable supervisor). It is this very executable, started again with
// watchdogEnv set, in the child's process group, holding the read end of a
// pipe whose write end only this process has. When this process dies, by
// any means (SIGKILL included), the kernel closes the write end; the
// watchdog reads EOF and sends the death signal to the group, then
// SIGKILL to the processes carrying the child's marker (a kernel in a
// session of its own) and to the group, itself included.
//
// Why this design: pipe EOF on a process's death is the same on Linux and
// macOS (kqueue's NOTE_EXIT is macOS-only, and would still need a process
// to wait in); it needs nothing from the child, so it covers papermill and
// the Temporal server as well as the bundled runner; and being a member of
// the group keeps the group's id from being reused while the watchdog
// lives, so its kill can never hit an unrelated group.
type watchdog struct {
	cmd   *exec.Cmd
	w     *os.File // the write end: closing it ends the watchdog
	close sync.Once
}

// startWatchdog starts the watchdog of the child whose process group is
// pgid; the child must not have been reaped yet (its group must exist).
func startWatchdog(pgid int, sig syscall.Signal, marker string) (*watchdog, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("start the child's watchdog: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start the child's watchdog: %w", err)
	}
	defer r.Close()
	cmd := exec.Command(self)
	// A small environment: the marker under another name, so that the
	// watchdog is not itself swept as the run's process by a sweep that
	// runs before its kill.
	cmd.Env = []string{watchdogEnv + "=" + strconv.Itoa(pgid) + " " + strconv.Itoa(int(sig)) + " " + marker, "PATH=" + os.Getenv("PATH")}
	if v, ok := os.LookupEnv(portable.EnvVar); ok {
		cmd.Env = append(cmd.Env, portable.EnvVar+"="+v)
	}
	cmd.ExtraFiles = []*os.File{r}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: pgid}
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("start the child's watchdog %s: %w", self, err)
	}
	go func() { _ = cmd.Wait() }() // reaped whenever it ends
	return &watchdog{cmd: cmd, w: w}, nil
}

// release ends the watchdog's watch: with its pipe closed it kills what is
// left of the group (the caller has killed it already) and itself. Safe
// on nil and twice.
func (d *watchdog) release() {
	if d == nil {
		return
	}
	d.close.Do(func() { d.w.Close() })
}

// WatchdogPid is the pid of the child's watchdog, for tests and logs; 0
// when it has none (Pdeathsig guards it).
func (p *Process) WatchdogPid() int {
	if p.watchdog == nil {
		return 0
	}
	return p.watchdog.cmd.Process.Pid
}

func init() {
	if v, ok := os.LookupEnv(watchdogEnv); ok {
		os.Exit(runWatchdog(v, os.NewFile(3, "watchdog")))
	}
}

// runWatchdog waits for EOF on pipe, then ends the child's process group
// and marked processes (see watchdog). Terminal and stop signals are
// ignored: a Ctrl-C that kills the worker must not kill its watchdog too.
func runWatchdog(v string, pipe *os.File) int {
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	f := strings.SplitN(v, " ", 3)
	if len(f) != 3 || pipe == nil {
		fmt.Fprintf(os.Stderr, "millrace watchdog: bad %s %q\n", watchdogEnv, v)
		return 2
	}
	pgid, err1 := strconv.Atoi(f[0])
	sig, err2 := strconv.Atoi(f[1])
	if err := errors.Join(err1, err2); err != nil || pgid <= 1 {
		fmt.Fprintf(os.Stderr, "millrace watchdog: bad %s %q\n", watchdogEnv, v)
		return 2
	}
	_, _ = io.Copy(io.Discard, pipe) // returns at EOF: the supervisor is gone
	if syscall.Signal(sig) != syscall.SIGKILL {
		_ = syscall.Kill(-pgid, syscall.Signal(sig))
		// The leader, reparented, is reaped as soon as it exits.
		for end := time.Now().Add(DefaultGrace); time.Now().Before(end) && syscall.Kill(pgid, 0) == nil; {
			time.Sleep(50 * time.Millisecond)
		}
	}
	// The group's SIGKILL ends this process too: it comes last.
	killMarked(f[2], pgid)
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	return 0
}
