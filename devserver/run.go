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
	if o.dbFile == "" {
		return serve(ctx, o, true, nil, stdout, logger, quietStop)
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
	return serve(ctx, o, isNew, lock, stdout, logger, quietStop)
}

// serve starts the server, reconciles the namespaces, reports readiness and
// waits for ctx. lock is nil for an in-memory DB.
func serve(ctx context.Context, o *options, isNew bool, lock *dbLock, stdout io.Writer, logger log.Logger, quietStop func()) error {
	if err := checkPortFree(o.ip, o.port, "frontend gRPC"); err != nil {
		return err
	}

	conf := sqlConfig(o.dbFile)
	if err := prepareStore(o, conf, isNew); err != nil {
		return err
	}
	srv, err := newServer(o, conf, logger)
	if err != nil {
		return fmt.Errorf("cannot build the server: %w", err)
	}
	if err := srv.Start(); err != nil {
		return fmt.Errorf("cannot start the server: %w", err)
	}
	defer srv.Stop()

	addr := net.JoinHostPort(o.ip, strconv.Itoa(o.port))
	dial := net.JoinHostPort(dialHost(o.ip), strconv.Itoa(o.port))
	if err := reconcileNamespaces(ctx, dial, o, logger); err != nil {
		if ctx.Err() != nil {
			quietStop()
			return nil // interrupted while starting: a clean stop
		}
		return err
	}
	db := ":memory:"
	if lock != nil {
		db = o.dbFile
		if err := lock.publish(addr); err != nil {
			return fmt.Errorf("cannot write the lock file: %w", err)
		}
	}
	fmt.Fprintf(stdout, "millrace-temporal ready address=%s namespace=%s db=%s version=%s\n",
		addr, strings.Join(o.namespaces, ","), db, serverVersion)

	<-ctx.Done()
	quietStop()
	return nil
}
