package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"millrace/internal/config"
	"millrace/internal/connect"
	"millrace/internal/devmode"
	"millrace/internal/jobs"
	"millrace/internal/paths"
)

// cli is one invocation's streams and what they are connected to.
type cli struct {
	stdout, stderr io.Writer
	// stdin answers the question `run` asks on Ctrl-C, when it is a
	// terminal.
	stdin *os.File
	// out styles stdout, errs stderr: colours only on a terminal.
	out, errs style
}

func newCLI(stdout, stderr io.Writer, stdin *os.File) *cli {
	return &cli{stdout: stdout, stderr: stderr, stdin: stdin, out: styleFor(stdout), errs: styleFor(stderr)}
}

// command is a subcommand.
type command struct {
	name    string // "dev status" for a subcommand of dev
	args    string // what follows the name in a usage line
	summary string
	help    string // said after the usage line in `millrace help NAME`
	run     func(ctx context.Context, c *cli, cmd command, args []string) error
}

// commands lists the subcommands in the order help shows them. It is a
// function, not a variable, because help refers back to it.
func commands() []command {
	return []command{
		runCommand(), batchCommand(), jobsCommand(), statusCommand(), logsCommand(), cancelCommand(), rerunCommand(),
		inspectCommand(), outputCommand(), uiCommand(), devCommand(), devStatusCommand(), devStopCommand(),
		versionCommand(), helpCommand(),
	}
}

func findCommand(name string) (command, bool) {
	for _, cmd := range commands() {
		if cmd.name == name {
			return cmd, true
		}
	}
	return command{}, false
}

func (c *cli) dispatch(ctx context.Context, args []string) error {
	if len(args) == 0 {
		c.topUsage(c.stderr)
		return &exitError{code: exitUsage, err: errors.New("no command")}
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help":
		c.topUsage(c.stdout)
		return nil
	case "-v", "-version", "--version":
		name = "version"
	case "dev":
		// dev status and dev stop are commands of their own.
		if len(args) > 1 && (args[1] == "status" || args[1] == "stop") {
			name, args = "dev "+args[1], args[1:]
		}
	}
	cmd, ok := findCommand(name)
	if !ok {
		msg := fmt.Sprintf("unknown command %q", name)
		if strings.HasPrefix(name, "-") {
			msg = fmt.Sprintf("%s comes before any command; flags go after the command name", name)
		}
		fmt.Fprintf(c.stderr, "millrace: %s\nRun 'millrace help' for the commands.\n", msg)
		return &exitError{code: exitUsage, err: errors.New(msg)}
	}
	return cmd.run(ctx, c, cmd, args[1:])
}

// usageError is a bad command line.
type usageError struct {
	cmd string
	msg string
}

func (e *usageError) Error() string { return e.msg }

func usagef(cmd command, format string, args ...any) error {
	return &usageError{cmd: cmd.name, msg: fmt.Sprintf(format, args...)}
}

// report prints err once and turns it into an exitError.
func (c *cli) report(ctx context.Context, err error) error {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return nil
	}
	var done *exitError
	if errors.As(err, &done) {
		return err
	}
	var usage *usageError
	var intr interrupted
	switch {
	case errors.As(err, &usage):
		fmt.Fprintf(c.stderr, "millrace %s: %s\nRun 'millrace %s -h' for help.\n", usage.cmd, usage.msg, usage.cmd)
		return &exitError{code: exitUsage, err: err}
	case jobs.IsUserError(err):
		fmt.Fprintf(c.stderr, "millrace: %s\n", err)
		return &exitError{code: exitUsage, err: err}
	case errors.Is(err, context.Canceled) && errors.As(context.Cause(ctx), &intr):
		fmt.Fprintln(c.stderr, "millrace: interrupted")
		return &exitError{code: 128 + signalNumber(intr.sig), err: err}
	}
	fmt.Fprintf(c.stderr, "millrace: %s\n", err)
	return &exitError{code: exitFailed, err: err}
}

// printJSON writes v as indented JSON, for scripts.
func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// logger is what the Temporal client and the dev service log through:
// warnings and errors only, on stderr, so they do not drown the output.
func (c *cli) logger(level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: level}))
}

// validate checks the shared configuration; its problems are usage errors.
func validate(cmd command, cfg *config.Config) error {
	if err := cfg.Validate(); err != nil {
		return usagef(cmd, "%v", err)
	}
	return nil
}

// localService is a job service that reads notebooks only: no Temporal.
func localService(cmd command, cfg *config.Config) (*jobs.Service, error) {
	if err := validate(cmd, cfg); err != nil {
		return nil, err
	}
	roots, err := paths.NewRoots(cfg.Roots)
	if err != nil {
		return nil, usagef(cmd, "--roots: %v", err)
	}
	return &jobs.Service{Namespace: cfg.Namespace, TaskQueue: cfg.TaskQueue, DataDir: cfg.DataDir, Roots: roots, NotifyAllow: cfg.NotifyAllow, AllowEnv: cfg.AllowEnv, Python: cfg.Python}, nil
}

// connect returns a job service connected to Temporal: the configured
// cluster, or the data dir's dev service, started in the background when
// it is not running. Call close when done.
func (c *cli) connect(ctx context.Context, cmd command, cfg *config.Config) (svc *jobs.Service, close func(), err error) {
	svc, err = localService(cmd, cfg)
	if err != nil {
		return nil, nil, err
	}
	if cfg.DevMode() {
		if _, err := devmode.Status(cfg.DataDir); errors.Is(err, devmode.ErrNotRunning) {
			fmt.Fprintf(c.stderr, "%s\n", c.errs.dim(fmt.Sprintf("starting the local dev service in the background (data dir %s; `millrace dev stop` stops it)", cfg.DataDir)))
		}
	}
	client, err := devmode.Connect(ctx, cfg, c.logger(slog.LevelWarn))
	if err != nil {
		return nil, nil, err
	}
	if svc.DataConverter, err = connect.DataConverter(cfg); err != nil {
		client.Close()
		return nil, nil, err
	}
	svc.Client, svc.Namespace = client, cfg.Namespace
	return svc, client.Close, nil
}

// absPath makes a path the user typed absolute against the working
// directory, as a shell user expects (the job service would otherwise take
// relative paths from the first root).
func absPath(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

// displayPath shows a path relative to the working directory when it is
// inside it.
func displayPath(p string) string {
	if p == "" {
		return ""
	}
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	if rel, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return p
}
