// Command millrace-temporal runs an embedded Temporal server persisted to a
// SQLite file. It takes the flags of `temporal server start-dev`, so the Go
// SDK's testsuite.StartDevServer (ExistingPath) can launch it and a user's own
// `temporal` CLI can replace it. It lives in its own module because the server
// and the newest SDK need incompatible go.temporal.io/api versions.
//
// With --postgres it persists to PostgreSQL instead (postgres.go), so that a
// test cluster runs the path of a real Temporal cluster on PostgreSQL,
// visibility queries included. It stays a single-process server with one
// history shard, for tests and trials, not for production.
//
// It never serves Temporal's HTTP API (--http-port is accepted and
// ignored), and its internal services speak mutual TLS with a certificate
// made in memory at start. With --auth-token-file, the gRPC frontend serves
// only callers presenting "authorization: Bearer <token>": the millrace dev
// service runs it so. Its files are the user's alone (umask 077).
//
// Exit status: 0 clean stop, 1 failure, 2 bad usage or input, 3 the DB file or
// PostgreSQL database is owned by another running instance, 4 the DB file was
// made by another server version or the PostgreSQL schema is newer than this
// server knows.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// exitError carries a specific exit status up to main. quiet means the
// message has already been printed (the flag package prints its own).
type exitError struct {
	code  int
	err   error
	quiet bool
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	// The DB, its WAL and the lock file are the user's alone: a run's
	// inputs and outputs are in there.
	syscall.Umask(0o077)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	if ee == nil || !ee.quiet {
		fmt.Fprintln(os.Stderr, "millrace-temporal:", err)
	}
	os.Exit(code)
}
