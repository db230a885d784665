package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
)

// dbLock is an exclusive flock on DB+".lock". Two servers on one SQLite file
// fight over the single history shard (SQLITE_BUSY, stuck workflows), so the
// second one must refuse to start and tell the caller whom to talk to. flock is
// released by the kernel when the process dies, so a kill -9 leaves no stale
// lock behind (only stale text, which the next owner overwrites).
type dbLock struct {
	f *os.File
}

// lockDB takes the lock without blocking. When another process holds it, the
// returned exitError (status 3) names that process and its address, as read
// from the lock file.
func lockDB(dbFile string) (*dbLock, error) {
	path := dbFile + ".lock"
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, &exitError{code: 2, err: fmt.Errorf("cannot open lock file: %w", err)}
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("cannot lock %s: %w", path, err)
		}
		pid, addr := readLockInfo(path)
		return nil, &exitError{code: 3, err: fmt.Errorf(
			"another millrace-temporal (pid %s) owns %s and serves %s; connect to it instead", pid, dbFile, addr)}
	}
	l := &dbLock{f: f}
	// Publish our pid at once so a competitor started during our (short)
	// start-up can still say who owns the file; the address follows when ready.
	if err := l.write(fmt.Sprintf("pid=%d\n", os.Getpid())); err != nil {
		l.release()
		return nil, err
	}
	return l, nil
}

// publish records the address once the server answers, for the message above
// and for other programs that look for a running server.
func (l *dbLock) publish(addr string) error {
	return l.write(fmt.Sprintf("pid=%d\naddress=%s\n", os.Getpid(), addr))
}

func (l *dbLock) write(s string) error {
	if err := l.f.Truncate(0); err != nil {
		return err
	}
	_, err := l.f.WriteAt([]byte(s), 0)
	return err
}

// lost never reports: a flock lasts as long as the process.
func (l *dbLock) lost() <-chan error { return nil }

// release clears the published address (so nobody dials a dead server) and
// drops the lock. The file itself stays: removing a flock file races with a
// process that has just opened it.
func (l *dbLock) release() {
	_ = l.f.Truncate(0)
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	_ = l.f.Close()
}

// readLockInfo reads "pid=P\naddress=A\n"; missing parts read as placeholders.
func readLockInfo(path string) (pid, addr string) {
	b, _ := os.ReadFile(path)
	return parseOwnerInfo(string(b))
}

// parseOwnerInfo reads the words pid=P and address=A, wherever an owner
// publishes them: a lock file's lines, a PostgreSQL application_name.
func parseOwnerInfo(s string) (pid, addr string) {
	pid, addr = "unknown", "an address not yet published (it is still starting)"
	for _, word := range strings.Fields(s) {
		k, v, _ := strings.Cut(word, "=")
		switch {
		case k == "pid" && v != "":
			pid = v
		case k == "address" && v != "":
			addr = v
		}
	}
	return pid, addr
}
