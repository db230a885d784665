package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
)

// ownerLockKey is the session-level advisory lock that marks a database as
// owned. It fits in 32 bits, so pg_locks shows it as objid with classid 0.
const ownerLockKey = 0x6d696c6c // "mill"

// pgLockCheck is how often the lock's connection is checked, and how often a
// lost one is retried: a PostgreSQL restart ends every session, and with it
// the lock, which must then be taken back.
const pgLockCheck = time.Second

// pgLock is the PostgreSQL counterpart of dbLock. Every millrace-temporal
// runs all of Temporal's services with static membership, so two on one
// database would each own the one history shard and steal it from each other
// on every write; the second one must refuse to start instead. An advisory
// lock held by one dedicated session does it for servers on any host, and
// PostgreSQL drops it when that session ends, a killed server's included.
// The holder's pid and address travel in the session's application_name,
// where a refused competitor reads them from pg_stat_activity.
type pgLock struct {
	conf   *config.SQL
	logger log.Logger

	mu   sync.Mutex
	db   *sqlx.DB
	conn *sql.Conn
	addr string // published address, "" until ready
	// session identifies the lock's backend, to recognise it as our own
	// when it outlives a network cut on PostgreSQL's side.
	session backendID

	lostc chan error
	stop  chan struct{}
	done  chan struct{}
}

// lockPostgres takes the lock in conf's database without waiting. When
// another process holds it, the exitError (status 3) names that process.
func lockPostgres(conf *config.SQL, logger log.Logger) (*pgLock, error) {
	l := &pgLock{conf: conf, logger: logger, lostc: make(chan error, 1), stop: make(chan struct{}), done: make(chan struct{})}
	if err := l.acquire(); err != nil {
		return nil, err
	}
	go l.watch()
	return l, nil
}

// acquire opens a session, takes the lock in it and publishes who holds it.
func (l *pgLock) acquire() error {
	db, err := connectPG(l.conf)
	if err != nil {
		return connectFailure(l.conf, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return connectFailure(l.conf, err)
	}
	// PostgreSQL ends the session of a server that vanished (host down,
	// network cut) only when TCP tells it so, after two hours by default;
	// until then nobody could take over. Probe the client every few seconds.
	for _, set := range []string{"SET tcp_keepalives_idle = 5", "SET tcp_keepalives_interval = 2", "SET tcp_keepalives_count = 3", "SET tcp_user_timeout = 10000"} {
		if _, err := conn.ExecContext(ctx, set); err != nil {
			conn.Close()
			db.Close()
			return fmt.Errorf("cannot set up the owner session in database %s (%s): %w", l.conf.DatabaseName, set, err)
		}
	}
	var got bool
	var me backendID
	err = conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1), pid, backend_start::text FROM pg_stat_activity WHERE pid = pg_backend_pid()`,
		ownerLockKey).Scan(&got, &me.pid, &me.start)
	if err != nil {
		conn.Close()
		db.Close()
		return fmt.Errorf("cannot take the owner lock in database %s: %w", l.conf.DatabaseName, err)
	}
	if !got {
		holder := l.holder(ctx, conn)
		l.mu.Lock()
		stale := holder.session == l.session && l.session.pid != 0
		l.mu.Unlock()
		if stale {
			// Our own session from before a network cut, which PostgreSQL
			// has not noticed yet: end it, and take the lock at the next try.
			_, err = conn.ExecContext(ctx, "SELECT pg_terminate_backend($1)", holder.session.pid)
			conn.Close()
			db.Close()
			return fmt.Errorf("ending our own stale owner session (backend %d): %v", holder.session.pid, err)
		}
		conn.Close()
		db.Close()
		return &exitError{code: 3, err: fmt.Errorf("another millrace-temporal (%s) owns PostgreSQL database %s at %s and serves %s; connect to it instead",
			holder.who, l.conf.DatabaseName, l.conf.ConnectAddr, holder.addr)}
	}
	l.mu.Lock()
	l.db, l.conn, l.session = db, conn, me
	addr := l.addr
	l.mu.Unlock()
	if err := l.setName(ctx, addr); err != nil {
		l.closeSession()
		return fmt.Errorf("cannot publish the owner in database %s: %w", l.conf.DatabaseName, err)
	}
	return nil
}

// backendID names a PostgreSQL session: a backend pid is reused, its start
// time with it is not.
type backendID struct {
	pid   int
	start string
}

type lockHolder struct {
	who, addr string
	session   backendID
}

// holder reads the lock holder's application_name and client address.
func (l *pgLock) holder(ctx context.Context, conn *sql.Conn) lockHolder {
	var name, client string
	var id backendID
	err := conn.QueryRowContext(ctx, `SELECT a.application_name, COALESCE(host(a.client_addr), 'local socket'), a.pid, a.backend_start::text
		FROM pg_locks k JOIN pg_stat_activity a ON a.pid = k.pid
		WHERE k.locktype = 'advisory' AND k.granted AND k.classid = 0 AND k.objid = $1 AND k.objsubid = 1
		AND k.database = (SELECT oid FROM pg_database WHERE datname = current_database())`, ownerLockKey).Scan(&name, &client, &id.pid, &id.start)
	if err != nil {
		return lockHolder{who: "unknown, it holds the lock but is not visible in pg_stat_activity", addr: "an unknown address"}
	}
	pid, addr := parseOwnerInfo(name)
	return lockHolder{who: "pid " + pid + " connecting from " + client, addr: addr, session: id}
}

// setName publishes pid and address (empty while starting) in the lock
// session's application_name.
func (l *pgLock) setName(ctx context.Context, addr string) error {
	name := fmt.Sprintf("millrace-temporal pid=%d", os.Getpid())
	if addr != "" {
		name += " address=" + addr
	}
	l.mu.Lock()
	conn := l.conn
	l.mu.Unlock()
	if conn == nil {
		return nil // lost; acquire publishes again once it is back
	}
	_, err := conn.ExecContext(ctx, "SELECT set_config('application_name', $1, false)", name)
	return err
}

// publish records the address once the server answers.
func (l *pgLock) publish(addr string) error {
	l.mu.Lock()
	l.addr = addr
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return l.setName(ctx, addr)
}

// lost reports a lock taken by another server while this one was cut off
// from PostgreSQL: this server must then stop.
func (l *pgLock) lost() <-chan error { return l.lostc }

// watch checks the lock's session and takes the lock back after the session
// ended (PostgreSQL restarted, a network cut). The server itself reconnects
// on its own; until then nobody else can have started on the database, as
// it was not reachable, unless a competitor started in the moment between
// PostgreSQL's return and ours, which this reports through lost.
func (l *pgLock) watch() {
	defer close(l.done)
	tick := time.NewTicker(pgLockCheck)
	defer tick.Stop()
	broken := false
	for {
		select {
		case <-l.stop:
			return
		case <-tick.C:
		}
		if !broken {
			err := l.ping()
			if err == nil {
				continue
			}
			l.logger.Warn("lost the PostgreSQL owner lock session; taking the lock back when the database answers", tag.Error(err))
			l.abandonSession()
			broken = true
		}
		err := l.acquire()
		if err == nil {
			l.logger.Info("took the PostgreSQL owner lock back")
			broken = false
			continue
		}
		if ee, ok := err.(*exitError); ok && ee.code == 3 {
			l.lostc <- err
			return
		}
		// PostgreSQL is not back yet: try again at the next tick.
	}
}

// ping checks the lock's session. Across a network cut a query may wait for
// an answer until TCP gives up, minutes later, whatever its context says
// (the driver's cancel request does not end it), so the wait is bounded here.
func (l *pgLock) ping() error {
	l.mu.Lock()
	conn := l.conn
	l.mu.Unlock()
	errc := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), pgLockCheck)
		defer cancel()
		errc <- conn.PingContext(ctx)
	}()
	select {
	case err := <-errc:
		return err
	case <-time.After(2 * pgLockCheck):
		return fmt.Errorf("no answer within %s", 2*pgLockCheck)
	}
}

// abandonSession drops a session that may be stuck: closing it waits for
// its query, so that happens in the background.
func (l *pgLock) abandonSession() {
	l.mu.Lock()
	conn, db := l.conn, l.db
	l.conn, l.db = nil, nil
	l.mu.Unlock()
	go func() {
		conn.Close()
		db.Close()
	}()
}

func (l *pgLock) closeSession() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil {
		l.conn.Close()
		l.conn = nil
	}
	if l.db != nil {
		l.db.Close()
		l.db = nil
	}
}

// release stops the watch and ends the session, which drops the lock.
func (l *pgLock) release() {
	close(l.stop)
	<-l.done
	l.closeSession()
}
