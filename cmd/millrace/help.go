package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"millrace/internal/config"
)

func helpCommand() command {
	return command{
		name:    "help",
		args:    "[COMMAND]",
		summary: "show help for millrace or for one command",
		run:     runHelp,
	}
}

func runHelp(ctx context.Context, c *cli, cmd command, args []string) error {
	if len(args) == 0 {
		c.topUsage(c.stdout)
		return nil
	}
	name := strings.Join(args, " ")
	target, ok := findCommand(name)
	if !ok {
		return usagef(cmd, "unknown command %q: millrace help lists them", name)
	}
	// A command's help is its flags' usage: parse -h.
	return c.report(ctx, target.run(ctx, c, target, []string{"-h"}))
}

// topUsage is millrace's help.
func (c *cli) topUsage(w io.Writer) {
	s := styleFor(w)
	fmt.Fprintf(w, `millrace runs Jupyter notebooks as durable Temporal workflows.

%s millrace COMMAND [ARGS] [FLAGS]

%s
`, s.bold("Usage:"), s.bold("Commands:"))
	for _, cmd := range commands() {
		left := cmd.name
		if !strings.HasPrefix(cmd.args, "[flags]") && cmd.args != "" {
			left += " " + strings.TrimSuffix(cmd.args, " [flags]")
		}
		fmt.Fprintf(w, "  %-18s %s\n", left, cmd.summary)
	}
	fmt.Fprintf(w, `
Jobs run in Temporal, not in this process: they survive the terminal, the
CLI and the worker going away. With no Temporal address (TEMPORAL_ADDRESS or
--temporal-address), commands use the local dev service of the data dir (an
embedded Temporal server and a worker), started in the background on first
need; millrace dev stop stops it.

Read commands take --json for scripts. Colours show only on a terminal, and
never when NO_COLOR is set.

%s 0 success; 1 the run failed, was canceled or timed out (or
something broke); 2 bad usage or input.

%s %s

Run 'millrace help COMMAND' or 'millrace COMMAND -h' for a command's flags.
`, s.bold("Exit status:"), s.bold("Environment:"), strings.Join(config.Env, " "))
}

// wrapText breaks text into lines of at most width characters, between
// words.
func wrapText(text string, width int) string {
	var b strings.Builder
	line := 0
	for _, word := range strings.Fields(text) {
		switch {
		case line == 0:
		case line+1+len(word) > width:
			b.WriteByte('\n')
			line = 0
		default:
			b.WriteByte(' ')
			line++
		}
		b.WriteString(word)
		line += len(word)
	}
	return b.String()
}
