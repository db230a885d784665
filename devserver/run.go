package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/log"
)

// run serves until ctx is cancelled, then stops the server and returns nil.
// It prints one "ready" line to stdout once clients can use every namespace,
// so a parent process can wait for that line instead of polling the port.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseArgs(args, stderr)
	if err != nil {
		return err
	}
	if o.version {
		fmt.Fprintf(stdout, "millrace-temporal version=%s\n", serverVersion)
		return nil
	}
	if o.authTokenFile != "" {
		if o.token, err = readToken(o.authTokenFile); err != nil {
			return &exitError{code: 2, err: err}
		}
	}
	logger, quietStop := newLogger(o, stderr)
	if o.postgres != nil {
		return runPostgres(ctx, o, stdout, logger, quietStop)
	}
	if o.dbFile == "" {
		if err := checkPortFree(o.ip, o.port, "frontend gRPC"); err != nil {
			return err
		}
		conf := sqlConfig("")
		if err := createNamespaces(o, conf); err != nil {
			return err
		}
		return serve(ctx, o, &store{persistence: conf, visibility: conf, name: ":memory:"}, nil, stdout, logger, quietStop)
	}

	// Everything that can refuse the DB file is checked before it is touched,
	// and the lock comes first: a second instance must not even read it.
	dir := filepath.Dir(o.dbFile)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return &exitError{code: 2, err: fmt.Errorf("--db-filename %s: directory %s does not exist", o.dbFile, dir)}
	}
	lock, err := lockDB(o.dbFile)
	if err != nil {
		return err
	}
	defer lock.release()
	isNew := false
	if _, err := os.Stat(o.dbFile); errors.Is(err, fs.ErrNotExist) {
		isNew = true
	} else if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--db-filename: %w", err)}
	}
	if !isNew {
		if err := checkVersion(o.dbFile); err != nil {
			return err
		}
	}
	if err := checkPortFree(o.ip, o.port, "frontend gRPC"); err != nil {
		return err
	}
	conf := sqlConfig(o.dbFile)
	if isNew {
		if err := setupSQLiteSchema(o, conf); err != nil {
			return err
		}
	}
	if err := createNamespaces(o, conf); err != nil {
		return err
	}
	return serve(ctx, o, &store{persistence: conf, visibility: conf, name: o.dbFile}, lock, stdout, logger, quietStop)
}

// runPostgres prepares the two PostgreSQL databases and serves on them:
// each is created if missing, the persistence database is locked against a
// second server, both schemas are created or updated, and the namespaces are
// written, in that order, so two servers started at once on empty databases
// cannot both set them up.
func runPostgres(ctx context.Context, o *options, stdout io.Writer, logger log.Logger, quietStop func()) error {
	if err := checkPortFree(o.ip, o.port, "frontend gRPC"); err != nil {
		return err
	}
	password, err := postgresPassword()
	if err != nil {
		return err
	}
	st := &store{
		persistence: o.postgres.sqlConfig(o.postgres.db, password, persistenceConns),
		visibility:  o.postgres.sqlConfig(o.postgres.visDB, password, visibilityConns),
		name:        o.postgres.String(),
	}
	for _, conf := range []*config.SQL{st.persistence, st.visibility} {
		if err := ensureDatabase(conf, logger); err != nil {
			return err
		}
	}
	lock, err := lockPostgres(st.persistence, logger)
	if err != nil {
		return err
	}
	defer lock.release()
	if err := ensureSchema(st.persistence, persistenceSchema, logger); err != nil {
		return err
	}
	if err := ensureSchema(st.visibility, visibilitySchema, logger); err != nil {
		return err
	}
	if err := createNamespaces(o, st.persistence); err != nil {
		return err
	}
	return serve(ctx, o, st, lock, stdout, logger, quietStop)
}

// owner is a server's claim on its store: a flock beside a SQLite file, an
// advisory lock in PostgreSQL.
type owner interface {
	// publish records the address clients should dial.
	publish(addr string) error
	// lost reports a claim that another server took over: this one must stop.
	lost() <-chan error
}

// serve starts the server on the prepared store st, reconciles the
// namespaces, reports readiness and waits for ctx. own is nil for an
// in-memory DB.
func serve(ctx context.Context, o *options, st *store, own owner, stdout io.Writer, logger log.Logger, quietStop func()) error {
	addr := net.JoinHostPort(o.ip, strconv.Itoa(o.port))
	dial := net.JoinHostPort(dialHost(o.ip), strconv.Itoa(o.port))
	srv, err := newServer(o, st, logger)
	if err != nil {
		return fmt.Errorf("cannot build the server: %w", err)
	}
	// The UI (ui-server) starts once the frontend listens, while the rest
	// of the server starts: after Start returned, it added a fifth of a
	// second to the start. Not before: its gRPC connection dials the
	// frontend at once, and a refused first dial leaves it failing calls
	// for a second of backoff. Nobody learns its address before the ready
	// line.
	var ui *backgroundUI
	if o.ui.port != 0 {
		ui = startUIBackground(ctx, o, dial)
		defer ui.close()
	}
	if err := srv.Start(); err != nil {
		return fmt.Errorf("cannot start the server: %w", err)
	}
	defer srv.Stop()

	if err := reconcileNamespaces(ctx, dial, o, logger); err != nil {
		if ctx.Err() != nil {
			quietStop()
			return nil // interrupted while starting: a clean stop
		}
		return err
	}
	uiAddr := ""
	if ui != nil {
		if err := ui.wait(); err != nil {
			if ctx.Err() != nil {
				quietStop()
				return nil
			}
			return err
		}
		uiAddr = " ui=" + net.JoinHostPort(o.ui.ip, strconv.Itoa(o.ui.port))
	}
	var lost <-chan error
	if own != nil {
		if err := own.publish(addr); err != nil {
			return fmt.Errorf("cannot publish the address: %w", err)
		}
		lost = own.lost()
	}
	fmt.Fprintf(stdout, "millrace-temporal ready address=%s namespace=%s db=%s version=%s%s\n",
		addr, strings.Join(o.namespaces, ","), st.name, serverVersion, uiAddr)

	select {
	case <-ctx.Done():
		quietStop()
		return nil
	case err := <-lost:
		quietStop()
		return err
	}
}
