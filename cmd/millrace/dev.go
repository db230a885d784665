package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"go.temporal.io/sdk/client"

	"millrace/internal/config"
	"millrace/internal/connect"
	"millrace/internal/devmode"
	"millrace/internal/limits"
	"millrace/internal/mcpserver"
	"millrace/internal/metrics"
	"millrace/internal/python"
)

func devCommand() command {
	return command{
		name:    "dev",
		args:    "[flags]",
		summary: "run the local dev service in the foreground: the embedded Temporal server and a worker",
		help: `Runs the embedded Temporal server (on a SQLite file in the data dir) and a
worker in the foreground until Ctrl-C, for a long-lived local setup you can
watch. Every millrace command, worker and MCP server on the same data dir uses
it instead of starting the background one. It refuses to start while another
dev service holds the data dir: millrace dev stop stops that one.

Jobs are kept in the data dir: a run that was going when the service stopped
goes on, as a new attempt, when a dev service runs again.`,
		run: runDev,
	}
}

func runDev(ctx context.Context, c *cli, cmd command, args []string) error {
	f := newFlags(c, cmd)
	cfg := f.withConfig()
	cfg.RegisterWorker(f.FlagSet)
	logLevel := f.String("log-level", "info", "what the service logs: debug, info, warn or error")
	mcpAddr := f.String("mcp", "", "also serve the MCP tools over streamable HTTP on `ADDR` (host:port or a port; 127.0.0.1 unless a host is given)")
	var token string
	config.SecretFlag(f.FlagSet, &token, "mcp-token", "MILLRACE_MCP_TOKEN", "bearer token MCP clients must send (required when --mcp binds anything but loopback)")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	var addr string
	if *mcpAddr != "" {
		var loopback bool
		var err error
		if addr, loopback, err = mcpserver.ListenAddr(*mcpAddr); err != nil {
			return usagef(cmd, "--mcp: %v", err)
		}
		if !loopback && token == "" {
			return usagef(cmd, "--mcp %s is not a loopback address: set MILLRACE_MCP_TOKEN or --mcp-token-file, or bind 127.0.0.1", addr)
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return usagef(cmd, "--log-level %q: use debug, info, warn or error", *logLevel)
	}
	if cfg.Address != "" {
		fmt.Fprintf(c.stderr, "note: ignoring the Temporal address %s: millrace dev runs its own server\n", cfg.Address)
		cfg.Address = ""
	}
	if err := validate(cmd, cfg); err != nil {
		return err
	}
	// One page for the service's worker and the MCP tools beside it.
	ms, err := metrics.Start(cfg.MetricsAddr, cfg.MetricsToken, c.logger(level))
	if err != nil {
		return usagef(cmd, "%v", err)
	}
	defer ms.Close()
	mcpDone := make(chan error, 1)
	err = devmode.Serve(ctx, cfg, c.logger(level), func(st devmode.State) {
		fmt.Fprintf(c.stdout, "%s at %s (namespace %s, task queue %s)\n  data dir %s\n  Ctrl-C stops it\n",
			c.out.green("millrace dev service ready:")+" Temporal", st.Address, st.Namespace, st.TaskQueue, st.DataDir)
		if url, err := devmode.UIURL(st); err == nil && url != "" {
			fmt.Fprintf(c.stdout, "  Temporal UI at %s\n", url)
		}
		if ms != nil {
			fmt.Fprintf(c.stdout, "  metrics at %s\n", ms.URL())
		}
		if addr != "" {
			go func() { mcpDone <- c.serveMCP(ctx, cmd, cfg, st, addr, token, level, ms.Handler()) }()
		}
	}, connect.WithMetrics(ms.Handler()))
	if addr != "" && err == nil {
		if merr := <-mcpDone; merr != nil {
			return merr
		}
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, "millrace dev service stopped")
	return nil
}

func devStatusCommand() command {
	return command{
		name:    "dev status",
		args:    "[flags]",
		summary: "show the dev service of the data dir, the Python that runs notebooks and the limits this host can enforce (exit status 1 when no service runs)",
		help: `Shows the dev service of the data dir, if one runs, and what this host gives
runs whether or not one does: the Python the bundled runner uses (found as
the worker finds it: MILLRACE_PYTHON, else the first python3 on PATH or at
the usual install locations that imports nbclient and ipykernel) and what
enforces memory_limit and cpu_limit here (cgroups on Linux when the process
may create them, else per-process rlimits). This command finds both as the
service would from the same environment; the service logs what it uses
when it starts (see the log line).`,
		run: runDevStatus,
	}
}

// devStatus is what dev status --json prints.
type devStatus struct {
	Running bool   `json:"running"`
	DataDir string `json:"data_dir"`
	// UIURL is the Web UI's address with its token: what `millrace ui`
	// opens.
	UIURL string `json:"ui_url,omitempty"`
	*devmode.State
	hostFacts
}

// hostFacts is what this host gives runs, shown whether or not a service
// runs: a missing Python is the first thing to fix on a new machine (a
// Mac's python3 is often Apple's stub), and limits differ by platform.
type hostFacts struct {
	Python      *python.Interpreter `json:"python,omitempty"`
	PythonError string              `json:"python_error,omitempty"`
	Limits      string              `json:"limits"`
}

func readHostFacts() hostFacts {
	h := hostFacts{Limits: limits.Detected().String()}
	if py, err := python.Find(os.Getenv(python.Env)); err != nil {
		h.PythonError = err.Error()
	} else {
		h.Python = &py
	}
	return h
}

// lines are the facts as dev status prints them.
func (h hostFacts) lines() [][2]string {
	py := "none: " + h.PythonError
	if h.Python != nil {
		py = h.Python.String()
	}
	return [][2]string{{"python", py}, {"limits", h.Limits}}
}

func runDevStatus(ctx context.Context, c *cli, cmd command, args []string) error {
	f := newFlags(c, cmd)
	asJSON := f.withJSON()
	cfg := f.withConfig()
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	if err := validate(cmd, cfg); err != nil {
		return err
	}
	st, err := devmode.Status(cfg.DataDir)
	if err != nil && !errors.Is(err, devmode.ErrNotRunning) {
		return err
	}
	out := devStatus{Running: err == nil, DataDir: cfg.DataDir, hostFacts: readHostFacts()}
	if out.Running {
		out.State = &st
		if out.UIURL, err = devmode.UIURL(st); err != nil {
			return err
		}
	}
	notRunning := &exitError{code: exitFailed, err: devmode.ErrNotRunning}
	if *asJSON {
		if err := c.printJSON(out); err != nil || out.Running {
			return err
		}
		return notRunning
	}
	if !out.Running {
		fmt.Fprintf(c.stdout, "no dev service is running on %s\n(commands start one in the background when they need it; millrace dev runs one in the foreground)\n", cfg.DataDir)
		c.printFields(out.hostFacts.lines())
		return notRunning
	}
	fmt.Fprintf(c.stdout, "%s (pid %d), up %s\n", c.out.green("dev service running"), st.PID, fmtDuration(time.Since(st.StartedAt)))
	c.printFields(append([][2]string{
		{"temporal", fmt.Sprintf("%s (namespace %s, server pid %d)", st.Address, st.Namespace, st.ServerPID)},
		{"task queue", st.TaskQueue},
		{"data dir", st.DataDir},
		{"database", st.DB},
		{"log", st.LogFile},
		{"server", st.Server},
		{"ui", uiLine(out.UIURL)},
	}, out.hostFacts.lines()...))
	return nil
}

// uiLine is the ui field of dev status: the address with its token, as
// `millrace ui` would open it.
func uiLine(url string) string {
	if url == "" {
		return "none (started with --ui=false or MILLRACE_UI=0, or the server is a temporal CLI)"
	}
	return url
}

// printFields prints name-value lines, indented under the line before.
func (c *cli) printFields(fields [][2]string) {
	for _, kv := range fields {
		fmt.Fprintf(c.stdout, "  %-10s %s\n", kv[0], kv[1])
	}
}

func devStopCommand() command {
	return command{
		name:    "dev stop",
		args:    "[flags]",
		summary: "stop the dev service of the data dir (running jobs go on when one runs again)",
		run:     runDevStop,
	}
}

func runDevStop(ctx context.Context, c *cli, cmd command, args []string) error {
	f := newFlags(c, cmd)
	timeout := f.Duration("timeout", 30*time.Second, "how long to wait for it to stop")
	cfg := f.withConfig()
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	if err := validate(cmd, cfg); err != nil {
		return err
	}
	st, err := devmode.Stop(cfg.DataDir, *timeout)
	switch {
	case errors.Is(err, devmode.ErrNotRunning):
		fmt.Fprintf(c.stdout, "no dev service is running on %s\n", cfg.DataDir)
		return nil
	case err != nil:
		return err
	}
	fmt.Fprintf(c.stdout, "stopped the dev service (pid %d) on %s\n", st.PID, cfg.DataDir)
	return nil
}

// serveMCP serves the MCP tools over HTTP next to the foreground dev
// service, until ctx ends.
func (c *cli) serveMCP(ctx context.Context, cmd command, cfg *config.Config, st devmode.State, addr, token string, level slog.Level, mh client.MetricsHandler) error {
	svc, err := localService(cmd, cfg)
	if err != nil {
		return err
	}
	mcfg := *cfg
	mcfg.Address, mcfg.Namespace = st.Address, st.Namespace
	tc, err := connect.Dial(ctx, &mcfg, c.logger(slog.LevelWarn), connect.WithMetrics(mh), devmode.ClientOption(cfg.DataDir))
	if err != nil {
		return err
	}
	defer tc.Close()
	if svc.DataConverter, err = connect.DataConverter(&mcfg); err != nil {
		return err
	}
	svc.Client = tc
	logger := c.logger(level)
	srv := mcpserver.New(svc, mcpserver.Options{Logger: logger, Metrics: mh})
	return mcpserver.ServeHTTP(ctx, srv, addr, mcpserver.HTTPOptions{Token: token, Logger: logger}, c.stderr)
}
