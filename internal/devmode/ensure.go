package devmode

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"millrace/internal/config"
	"millrace/internal/filemode"
	"millrace/internal/python"
)

// StartTimeout bounds how long a client waits for a dev service it started.
const StartTimeout = 2 * time.Minute

// Ensure returns the address of the dev service on cfg.DataDir, starting it
// detached when none runs. Concurrent callers start one service between
// them: a spawn lock orders them and the later ones find it running.
func Ensure(ctx context.Context, cfg *config.Config) (State, error) {
	if st, err := Status(cfg.DataDir); err == nil {
		return st, nil
	}
	spawn, err := lock(filepath.Join(Dir(cfg.DataDir), spawnName), StartTimeout)
	if err != nil {
		return State{}, fmt.Errorf("wait for another process starting the dev service: %w", err)
	}
	defer spawn.Close()
	if st, err := Status(cfg.DataDir); err == nil {
		return st, nil
	}
	// A service may be starting (it holds its lock before it is ready):
	// spawning another would only fail on that lock, so wait for it.
	if held, _ := lockHeld(filepath.Join(Dir(cfg.DataDir), lockName)); !held {
		if err := spawnService(cfg); err != nil {
			return State{}, err
		}
	}
	deadline := time.Now().Add(StartTimeout)
	for time.Now().Before(deadline) {
		if st, err := Status(cfg.DataDir); err == nil {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return State{}, ctx.Err()
		case <-time.After(25 * time.Millisecond): // a state file read: cheap
		}
		if held, _ := lockHeld(filepath.Join(Dir(cfg.DataDir), lockName)); !held && time.Since(deadline.Add(-StartTimeout)) > 3*time.Second {
			return State{}, fmt.Errorf("the dev service exited while starting; its log %s ends with:\n%s", LogFile(cfg.DataDir), logTail(cfg.DataDir))
		}
	}
	return State{}, fmt.Errorf("the dev service did not become ready within %s; see %s", StartTimeout, LogFile(cfg.DataDir))
}

// WorkerRootsEnv sets the roots of the dev service's worker (see
// config.DefaultWorkerRoots for the default).
const WorkerRootsEnv = "MILLRACE_WORKER_ROOTS"

// spawnService starts this executable as the dev service, detached: a new
// session (no terminal signal reaches it), stdin from /dev/null, output to
// the service log.
func spawnService(cfg *config.Config) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("start dev service: %w", err)
	}
	if err := os.MkdirAll(Dir(cfg.DataDir), filemode.PrivateDir); err != nil {
		return fmt.Errorf("start dev service: %w", err)
	}
	logf, err := os.OpenFile(LogFile(cfg.DataDir), os.O_CREATE|os.O_WRONLY|os.O_APPEND, filemode.PrivateFile)
	if err != nil {
		return fmt.Errorf("open dev service log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(exe, serviceArgs(cfg)...)
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = "/"
	// The service's environment is built from an allow-list, not
	// inherited: it outlives this client and serves every other one. No
	// TEMPORAL_ setting reaches it (with an address it would not be a
	// dev service).
	cmd.Env = serviceEnv(os.Environ())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start dev service: %w", err)
	}
	return cmd.Process.Release()
}

// serviceArgs is the dev service's command line, after the executable.
func serviceArgs(cfg *config.Config) []string {
	args := []string{ServiceArg, "--data-dir", cfg.DataDir, "--namespace", cfg.Namespace, "--task-queue", cfg.TaskQueue}
	if cfg.TemporalBin != "" {
		args = append(args, "--temporal-bin", cfg.TemporalBin)
	}
	if cfg.CodecKeyFile != "" {
		args = append(args, "--codec-key-file", cfg.CodecKeyFile)
	}
	if !cfg.UI {
		args = append(args, "--ui=false")
	}
	// The service's worker has roots of its own (config.WorkerRoots): the
	// client's roots are that client's, not every client's.
	if r := os.Getenv(WorkerRootsEnv); r != "" {
		args = append(args, "--roots", r)
	}
	// The service runs from /: a relative MILLRACE_PYTHON (a virtualenv
	// beside the client's project) means the client's folder, so it goes
	// absolute. A bare name (python3.12) is looked up on PATH, as given.
	if p := os.Getenv(python.Env); strings.ContainsRune(p, filepath.Separator) && !filepath.IsAbs(p) {
		if abs, err := filepath.Abs(p); err == nil {
			args = append(args, "--python", abs)
		}
	}
	return args
}

func logTail(dataDir string) string {
	b, err := os.ReadFile(LogFile(dataDir))
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}
