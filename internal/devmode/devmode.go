// Package devmode runs millrace on one machine with nothing installed: a
// local background service per data dir that holds the embedded Temporal
// server (on a SQLite file) and a worker. The first process that needs it
// starts it detached; every other process connects to it. It outlives
// whoever started it, so closing an MCP client or a terminal never kills a
// running notebook.
package devmode

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"millrace/internal/atomicfile"
	"millrace/internal/filemode"
	"millrace/internal/proc"
)

// ServiceArg is the hidden first argument with which a millrace binary runs
// as the dev service. Every binary accepts it, so any of them can start the
// service by re-executing itself.
const ServiceArg = "__millrace-dev-service"

// Files under <data dir>/dev/, and the Temporal database.
const (
	dirName   = "dev"
	stateName = "service.json"
	lockName  = "service.lock"
	spawnName = "spawn.lock"
	logName   = "service.log"
	portName  = "port"
	DBName    = "temporal.db"
)

// ErrNotRunning means no dev service holds the data dir.
var ErrNotRunning = errors.New("the dev service is not running")

// State describes a running dev service. It is written once the service is
// ready and removed when it stops.
type State struct {
	PID       int       `json:"pid"`
	ServerPID int       `json:"server_pid"`
	Address   string    `json:"address"`
	Namespace string    `json:"namespace"`
	TaskQueue string    `json:"task_queue"`
	DataDir   string    `json:"data_dir"`
	DB        string    `json:"db"`
	LogFile   string    `json:"log_file"`
	Server    string    `json:"server"` // the server binary
	StartedAt time.Time `json:"started_at"`
	ReadyIn   float64   `json:"ready_seconds"`
	// UI is the Web UI's address without its token (UIURL adds it); empty
	// when the service serves none.
	UI string `json:"ui,omitempty"`
}

// Dir is the dev service's own folder in a data dir.
func Dir(dataDir string) string { return filepath.Join(dataDir, dirName) }

// LogFile is where the dev service logs.
func LogFile(dataDir string) string { return filepath.Join(Dir(dataDir), logName) }

// Status returns the state of the service running on dataDir, or
// ErrNotRunning. The service holds an exclusive lock for its whole life, so
// a state file left by a killed service is recognised as stale.
func Status(dataDir string) (State, error) {
	held, err := lockHeld(filepath.Join(Dir(dataDir), lockName))
	if err != nil {
		return State{}, err
	}
	if !held {
		return State{}, ErrNotRunning
	}
	b, err := os.ReadFile(filepath.Join(Dir(dataDir), stateName))
	if errors.Is(err, os.ErrNotExist) {
		// Starting: locked but not ready yet.
		return State{}, ErrNotRunning
	}
	if err != nil {
		return State{}, err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return State{}, fmt.Errorf("read dev service state: %w", err)
	}
	if !alive(st.PID) {
		// Left by a killed service; its successor is starting.
		return State{}, ErrNotRunning
	}
	return st, nil
}

func writeState(dataDir string, st State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(Dir(dataDir), stateName), b, filemode.PrivateFile)
}

// Stop asks the service on dataDir to stop and waits until it has.
func Stop(dataDir string, timeout time.Duration) (State, error) {
	st, err := Status(dataDir)
	if err != nil {
		return st, err
	}
	if err := syscall.Kill(st.PID, syscall.SIGTERM); err != nil {
		return st, fmt.Errorf("stop dev service (pid %d): %w", st.PID, err)
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if held, _ := lockHeld(filepath.Join(Dir(dataDir), lockName)); !held {
			return st, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return st, fmt.Errorf("dev service (pid %d) did not stop within %s; see %s", st.PID, timeout, LogFile(dataDir))
}

// lockHeld reports whether another process holds the lock file.
func lockHeld(path string) (bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return true, nil
		}
		return false, err
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false, nil
}

// lock takes an exclusive lock on path, waiting up to wait (0: fail at once).
func lock(path string, wait time.Duration) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), filemode.PrivateDir); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, filemode.PrivateFile)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(wait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			return nil, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// alive reports whether pid is a live process: not gone, and not a zombie
// (a killed service whose parent has not reaped it yet).
func alive(pid int) bool { return proc.Alive(pid) }
