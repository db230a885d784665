package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"millrace/internal/config"
)

// MainWithBinary is Main for a package that tests a binary: it builds pkg
// (a main package of the module) as name into a temporary folder, sets
// *binary to its path, and runs the package's tests on one server.
func MainWithBinary(m *testing.M, server **Server, binary *string, pkg, name string) {
	dir, err := os.MkdirTemp("", "millrace-bin-")
	if err == nil {
		*binary, err = BuildBinary(dir, pkg, name)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	Main(m, server, func() { os.RemoveAll(dir) })
}

// Binary is a built millrace binary running as a test's child process.
type Binary struct {
	cmd    *exec.Cmd
	stderr SyncBuffer
	exited chan error
}

// StartBinary runs path with args and env (nil: this process's), waits up
// to a minute for a line of its stderr to match ready, and returns the
// match. When the test ends it sends SIGTERM, as an operator stopping the
// process would, and fails the test unless the binary exits cleanly within
// 20 s.
func StartBinary(t testing.TB, path string, args, env []string, ready *regexp.Regexp) (*Binary, []string) {
	t.Helper()
	b := &Binary{cmd: exec.Command(path, args...), exited: make(chan error, 1)}
	b.cmd.Env = env
	b.cmd.Stderr = &b.stderr
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { b.exited <- b.cmd.Wait() }()
	t.Cleanup(func() {
		_ = b.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-b.exited:
			if err != nil {
				t.Errorf("%s did not exit cleanly on SIGTERM: %v\n%s", path, err, b.Stderr())
			}
		case <-time.After(20 * time.Second):
			_ = b.cmd.Process.Kill()
			t.Errorf("%s did not exit within 20s of SIGTERM\n%s", path, b.Stderr())
		}
	})
	var match []string
	Eventually(t, time.Minute, "a line matching "+ready.String()+" from "+path, func() bool {
		select {
		case err := <-b.exited:
			b.exited <- err
			t.Fatalf("%s exited: %v\n%s", path, err, b.Stderr())
		default:
		}
		match = ready.FindStringSubmatch(b.Stderr())
		return match != nil
	})
	return b, match
}

// Stderr is what the binary wrote to stderr so far.
func (b *Binary) Stderr() string { return b.stderr.String() }

// SyncBuffer is an io.Writer that a running process writes while the test
// reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// StartWorkerProcess runs the worker binary bin on s, on cfg's task queue
// and data dir, with the bundled runner and extra flags; the channel
// yields its exit once, then is closed. The test's cleanup kills it.
func (s *Server) StartWorkerProcess(t testing.TB, bin string, cfg *config.Config, extra ...string) (*exec.Cmd, <-chan error) {
	t.Helper()
	args := append([]string{"--temporal-address", s.Address, "--task-queue", cfg.TaskQueue,
		"--data-dir", cfg.DataDir, "--executor", "bundled", "--log-level", "error"}, extra...)
	worker := exec.Command(bin, args...)
	worker.Stderr = os.Stderr
	if err := worker.Start(); err != nil {
		t.Fatal(err)
	}
	// The exit is sent once, then the channel is closed, so the cleanup's
	// wait never blocks on a value a test has already taken.
	exited := make(chan error, 1)
	go func() { exited <- worker.Wait(); close(exited) }()
	t.Cleanup(func() { _ = worker.Process.Kill(); <-exited })
	return worker, exited
}
