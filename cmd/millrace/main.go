// Command millrace runs Jupyter notebooks as durable Temporal workflows from
// a terminal: start a run and watch it, list jobs, read their status, logs
// and outputs, cancel them, and run the local dev service. It talks to
// Temporal through the same job service as the MCP server, so a job started
// here is the job an assistant sees, and the other way round.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"millrace/internal/devmode"
	"millrace/internal/filemode"
)

func main() {
	filemode.ApplyOrExit()
	devmode.ServeIfAsked()
	// The first SIGINT or SIGTERM cancels the context with the signal as
	// its cause: `run` then asks (or decides) whether to cancel the job or
	// detach from it, and every other command stops. Later signals stay
	// caught, so that a second Ctrl-C reaches the question `run` asks; a
	// third one ends the process at once.
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 3)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		cancel(interrupted{s})
		<-sigs
		s = <-sigs
		fmt.Fprintln(os.Stderr, "millrace: interrupted three times: exiting now")
		os.Exit(128 + signalNumber(s))
	}()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	os.Exit(exitCode(err))
}

// interrupted is the cause of the context's cancellation when a signal
// arrives.
type interrupted struct{ sig os.Signal }

func (i interrupted) Error() string { return "interrupted by " + i.sig.String() }

// signalNumber is a signal's number, for the 128+n exit status of a
// command stopped by it.
func signalNumber(s os.Signal) int {
	if n, ok := s.(syscall.Signal); ok {
		return int(n)
	}
	return int(syscall.SIGINT)
}

// run runs one millrace command line (without the program name). It prints
// what the user needs to see, errors included, and returns an error whose
// exitCode is the process's exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCLI(stdout, stderr, os.Stdin)
	return c.report(ctx, c.dispatch(ctx, args))
}

// Exit statuses.
const (
	exitOK     = 0
	exitFailed = 1 // the run did not succeed, or something broke
	exitUsage  = 2 // bad usage or input
)

// exitError carries an exit status; its message has been printed already.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// exitCode is the process exit status for run's error.
func exitCode(err error) int {
	var e *exitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &e):
		return e.code
	}
	return exitFailed
}
