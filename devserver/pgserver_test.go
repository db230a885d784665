package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
)

// pgServer is a throwaway PostgreSQL for one test: initdb and postgres run as
// the postgres user (both refuse root) in a directory of their own, listening
// on 127.0.0.1 only, with trust authentication except for pgPasswordRole.
type pgServer struct {
	bin  string // directory holding initdb, pg_ctl, postgres
	dir  string // owned by postgres: data/, log, the Unix socket
	port int
	// cmd is runuser running postgres as a child of the test, so that a
	// test killed before its cleanup takes PostgreSQL along (Pdeathsig;
	// runuser passes SIGTERM on), rather than leaving it running.
	cmd    *exec.Cmd
	exited chan struct{}
}

// pgPasswordRole must log in with a password (scram-sha-256), so a test can
// see the password really travel from the environment to the server.
const (
	pgPasswordRole = "pwuser"
	pgPassword     = "s3cret/pass+w@rd%"
)

// startPostgres starts a PostgreSQL and stops it (pg_ctl -m fast) at cleanup.
func startPostgres(t *testing.T) *pgServer {
	t.Helper()
	bin, err := postgresBin()
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		t.Fatalf("the PostgreSQL tests run initdb and postgres as the postgres user through runuser, which needs root; run them as root (uid is %d)", os.Geteuid())
	}
	pgUser, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("no postgres user (%v): apt-get install postgresql creates it", err)
	}
	uid, _ := strconv.Atoi(pgUser.Uid)
	gid, _ := strconv.Atoi(pgUser.Gid)
	// Not t.TempDir: its parent is root's alone, and postgres must reach it.
	dir, err := os.MkdirTemp("", "millrace-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	s := &pgServer{bin: bin, dir: dir, port: mustFreePort(t)}
	s.pgRun(t, "initdb", "-D", s.data(), "-U", "postgres", "-A", "trust", "--no-sync", "--no-instructions")
	hba := filepath.Join(s.data(), "pg_hba.conf")
	b, err := os.ReadFile(hba)
	if err != nil {
		t.Fatal(err)
	}
	// The first matching line wins.
	b = append([]byte("host all "+pgPasswordRole+" 127.0.0.1/32 scram-sha-256\n"), b...)
	if err := os.WriteFile(hba, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s.start(t)
	t.Cleanup(func() { s.stop(t) })
	s.exec(t, "postgres", fmt.Sprintf("CREATE ROLE %s LOGIN CREATEDB PASSWORD '%s'", pgPasswordRole, pgPassword))
	return s
}

// postgresBin finds the server binaries: on PATH, or where Debian's
// postgresql package puts them (the newest version there).
func postgresBin() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(found, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(found[i]))))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(found[j]))))
		return vi < vj
	})
	if len(found) == 0 {
		return "", fmt.Errorf("PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin): apt-get install postgresql")
	}
	return filepath.Dir(found[len(found)-1]), nil
}

func (s *pgServer) data() string { return filepath.Join(s.dir, "data") }

// pgRun runs one of the server binaries as the postgres user.
func (s *pgServer) pgRun(t *testing.T, prog string, args ...string) {
	t.Helper()
	cmd := exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(s.bin, prog)}, args...)...)
	cmd.Dir = s.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "log"))
		t.Fatalf("%s %s: %v\n%s\nserver log:\n%s", prog, strings.Join(args, " "), err, out, log)
	}
}

// start runs postgres and waits until it accepts connections.
func (s *pgServer) start(t *testing.T) {
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(s.dir, "log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	s.cmd = exec.Command("runuser", "-u", "postgres", "--", filepath.Join(s.bin, "postgres"),
		"-D", s.data(), "-h", "127.0.0.1", "-p", strconv.Itoa(s.port), "-k", s.dir, "-F")
	s.cmd.Dir = s.dir
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start postgres: %v", err)
	}
	s.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) { _ = cmd.Wait(); close(exited) }(s.cmd, s.exited)
	deadline := time.Now().Add(30 * time.Second)
	for {
		db, err := sqlx.Connect("postgres", fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=2", s.port))
		if err == nil {
			db.Close()
			return
		}
		select {
		case <-s.exited:
			log, _ := os.ReadFile(filepath.Join(s.dir, "log"))
			t.Fatalf("postgres exited at start:\n%s", log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("postgres not accepting connections after 30s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop shuts postgres down as pg_ctl -m fast does (clients are disconnected)
// and waits for it.
func (s *pgServer) stop(t *testing.T) {
	t.Helper()
	s.pgRun(t, "pg_ctl", "-D", s.data(), "-m", "fast", "-w", "stop")
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("postgres still running 30s after pg_ctl stop")
	}
}

// restart stops and starts postgres: every session ends.
func (s *pgServer) restart(t *testing.T) {
	t.Helper()
	s.stop(t)
	s.start(t)
}

// url is the --postgres value for database db as user postgres.
func (s *pgServer) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// open connects to database db as the superuser.
func (s *pgServer) open(t *testing.T, db string) *sqlx.DB {
	t.Helper()
	conn, err := sqlx.Connect("postgres", fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db))
	if err != nil {
		t.Fatalf("connect to %s: %v", db, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// exec runs statements in database db as the superuser.
func (s *pgServer) exec(t *testing.T, db string, stmts ...string) {
	t.Helper()
	conn := s.open(t, db)
	for _, stmt := range stmts {
		if _, err := conn.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	conn.Close()
}
