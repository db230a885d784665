//go:build linux

package testcluster

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// PostgreSQLPort is the port PostgreSQL listens on, on its own host.
const PostgreSQLPort = 5432

// PostgreSQL is a database server from Debian's packages running on a
// host, as the `postgres` user (initdb and postgres refuse root), with
// its data in a temporary folder that user owns. Any client on the
// network may connect as any user without a password (trust): the
// network is the test's own. It runs with fsync off (see
// StartPostgreSQL).
type PostgreSQL struct {
	Host *Host
	bin  string // the folder of initdb, pg_ctl, postgres
	dir  string // the data dir, owned by postgres
}

// ShutdownMode is how PostgreSQL stops.
type ShutdownMode string

const (
	// Fast rolls back open transactions and shuts down cleanly.
	Fast ShutdownMode = "fast"
	// Immediate kills every server process at once, as a crash would;
	// the next start recovers from the write-ahead log.
	Immediate ShutdownMode = "immediate"
)

// StartPostgreSQL makes a database cluster and starts it on host; it stops
// and is removed when t ends.
func StartPostgreSQL(t testing.TB, host *Host) *PostgreSQL {
	t.Helper()
	bin, err := postgresBin()
	if err != nil {
		t.Fatal(err)
	}
	owner, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("no postgres user (%v): apt-get install postgresql", err)
	}
	uid, _ := strconv.Atoi(owner.Uid)
	gid, _ := strconv.Atoi(owner.Gid)
	// Not t.TempDir: its parents are root's own, which postgres cannot
	// enter.
	top, err := os.MkdirTemp("", fmt.Sprintf("millrace-pg-%d-", os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(top) })
	if err := os.Chown(top, uid, gid); err != nil {
		t.Fatal(err)
	}
	p := &PostgreSQL{Host: host, bin: bin, dir: filepath.Join(top, "data")}
	p.run(t, "initdb", "-D", p.dir, "-U", "postgres", "--auth=trust", "--no-sync", "--encoding=UTF8", "--locale=C")
	if err := appendFile(filepath.Join(p.dir, "pg_hba.conf"), fmt.Sprintf("host all all %s trust\n", host.net.Subnet())); err != nil {
		t.Fatal(err)
	}
	// fsync off: a commit still writes the log to the kernel before it
	// returns, so it survives a crash of PostgreSQL's processes (an
	// Immediate stop, which the tests make), though not one of the
	// machine, which none makes. With fsync on, the hosts' one shared
	// disk, loaded by everything else on the machine, made commits, and
	// with them the Temporal server's heartbeat writes, seconds late.
	settings := fmt.Sprintf("listen_addresses = '%s'\nport = %d\nunix_socket_directories = '%s'\nmax_connections = 200\nfsync = off\n", host.Addr, PostgreSQLPort, top)
	if err := appendFile(filepath.Join(p.dir, "postgresql.conf"), settings); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Quietly: the server may be down already, as a test left it.
		_ = p.command("pg_ctl", "-D", p.dir, "-m", string(Immediate), "stop").Run()
	})
	p.Start(t)
	return p
}

// URL is the address of database name for a client on the network.
func (p *PostgreSQL) URL(name string) string {
	return fmt.Sprintf("postgres://postgres@%s:%d/%s?sslmode=disable", p.Host.Addr, PostgreSQLPort, name)
}

// Start starts the server and waits until it accepts connections.
func (p *PostgreSQL) Start(t testing.TB) {
	t.Helper()
	p.run(t, "pg_ctl", "-D", p.dir, "-l", filepath.Join(p.dir, "server.log"), "-w", "-t", "60", "start")
}

// Stop stops the server in mode and waits until it is down.
func (p *PostgreSQL) Stop(t testing.TB, mode ShutdownMode) {
	t.Helper()
	p.run(t, "pg_ctl", "-D", p.dir, "-m", string(mode), "-w", "-t", "60", "stop")
}

// Restart stops the server in mode and starts it again, and returns how
// long it was unavailable.
func (p *PostgreSQL) Restart(t testing.TB, mode ShutdownMode) time.Duration {
	t.Helper()
	began := time.Now()
	p.run(t, "pg_ctl", "-D", p.dir, "-l", filepath.Join(p.dir, "server.log"), "-m", string(mode), "-w", "-t", "60", "restart")
	return time.Since(began)
}

// Query runs sql on database db with psql from host from, and returns
// its rows unaligned, one a line.
func (p *PostgreSQL) Query(from *Host, db, sql string) (string, error) {
	cmd := from.Command(filepath.Join(p.bin, "psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
		"-h", p.Host.Addr, "-p", strconv.Itoa(PostgreSQLPort), "-U", "postgres", "-d", db, "-c", sql)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("psql on %s: %v: %s", from.Name, err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// Log is the server's log so far.
func (p *PostgreSQL) Log() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "server.log"))
	return string(b)
}

// command runs one of PostgreSQL's programs on its host as postgres.
func (p *PostgreSQL) command(name string, args ...string) *exec.Cmd {
	cmd := p.Host.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(p.bin, name)}, args...)...)
	cmd.Dir = "/"
	return cmd
}

func (p *PostgreSQL) run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := p.command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s\n%s", name, strings.Join(args, " "), err, out, p.Log())
	}
}

// postgresBin finds the newest of Debian's PostgreSQL installs.
func postgresBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	var found []string
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			found = append(found, d)
		}
	}
	if len(found) == 0 {
		return "", fmt.Errorf("no PostgreSQL server in /usr/lib/postgresql/*/bin: apt-get install postgresql")
	}
	sort.Slice(found, func(i, j int) bool { return version(found[i]) < version(found[j]) })
	return found[len(found)-1], nil
}

// version is the major version in /usr/lib/postgresql/<version>/bin.
func version(bin string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(bin)))
	return v
}

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(text)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
