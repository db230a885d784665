package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"millrace/internal/config"
	"millrace/internal/jobs"
)

// flagSet is a command's flags: its own, and (for commands that reach
// Temporal or the data dir) the connection flags every millrace binary
// shares, under the same names as the worker's and the MCP server's.
type flagSet struct {
	*flag.FlagSet
	c      *cli
	cmd    command
	cfg    *config.Config
	shared map[string]bool
}

func newFlags(c *cli, cmd command) *flagSet {
	fs := flag.NewFlagSet("millrace "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // usage goes where parse decides
	return &flagSet{FlagSet: fs, c: c, cmd: cmd, shared: map[string]bool{}}
}

// withConfig adds the shared connection flags and returns the
// configuration they fill.
func (f *flagSet) withConfig() *config.Config {
	f.cfg = &config.Config{}
	own := map[string]bool{}
	f.VisitAll(func(fl *flag.Flag) { own[fl.Name] = true })
	f.cfg.Register(f.FlagSet)
	f.VisitAll(func(fl *flag.Flag) {
		if !own[fl.Name] {
			f.shared[fl.Name] = true
		}
	})
	return f.cfg
}

// withJSON adds --json.
func (f *flagSet) withJSON() *bool {
	return f.Bool("json", false, "print JSON for scripts instead of text")
}

// parse parses args, in which flags and positional arguments may come in
// any order (`millrace run nb.ipynb -p n=1`); after `--` everything is
// positional. It checks that there are between min and max positional
// arguments (max < 0: no limit). -h prints the help to stdout.
func (f *flagSet) parse(args []string, min, max int) ([]string, error) {
	if err := config.RefuseSecretArgs(f.FlagSet, args); err != nil {
		return nil, usagef(f.cmd, "%v", err)
	}
	var pos []string
	for {
		if err := f.Parse(args); err != nil {
			if err == flag.ErrHelp {
				f.usage(f.c.stdout)
				return nil, err
			}
			return nil, usagef(f.cmd, "%v", err)
		}
		rest := f.Args()
		if len(rest) == 0 {
			break
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	switch {
	case len(pos) < min:
		return nil, usagef(f.cmd, "missing %s", missingArg(f.cmd.args, len(pos)))
	case max >= 0 && len(pos) > max:
		return nil, usagef(f.cmd, "unexpected argument %q", pos[max])
	}
	return pos, nil
}

// missingArg names the first missing positional argument from a usage line
// such as "NOTEBOOK [flags]".
func missingArg(args string, have int) string {
	words := strings.Fields(args)
	if have < len(words) && !strings.HasPrefix(words[have], "[") {
		return words[have]
	}
	return "an argument"
}

// usage prints the command's help.
func (f *flagSet) usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: millrace %s %s\n", f.cmd.name, f.cmd.args)
	if f.cmd.help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimRight(f.cmd.help, "\n"))
	} else {
		fmt.Fprintf(w, "\n%s.\n", upperFirst(f.cmd.summary))
	}
	var own, shared []*flag.Flag
	f.VisitAll(func(fl *flag.Flag) {
		if f.shared[fl.Name] {
			shared = append(shared, fl)
		} else {
			own = append(own, fl)
		}
	})
	if len(own) > 0 {
		fmt.Fprintln(w, "\nFlags:")
		printFlags(w, own)
	}
	if len(shared) > 0 {
		fmt.Fprintln(w, "\nConnection flags (the same in every millrace command; environment variables give the defaults):")
		printFlags(w, shared)
	}
}

func printFlags(w io.Writer, fls []*flag.Flag) {
	for _, fl := range fls {
		name, usage := flag.UnquoteUsage(fl)
		dash := "--"
		if len(fl.Name) == 1 {
			dash = "-"
		}
		line := "  " + dash + fl.Name
		if name != "" {
			line += " " + name
		}
		if !zeroDefault(fl.DefValue) {
			usage += fmt.Sprintf(" (default %s)", fl.DefValue)
		}
		fmt.Fprintf(w, "%s\n        %s\n", line, usage)
	}
}

func zeroDefault(v string) bool {
	switch v {
	case "", "0", "false", "0s", "[]":
		return true
	}
	return false
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// stringList is a flag that may be repeated.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ", ") }
func (l *stringList) Set(s string) error {
	*l = append(*l, s)
	return nil
}

// secondsFlag is a number of seconds given as Go duration text ("90s",
// "1h30m") or as a number ("90", "2.5"): the run options count timeouts in
// seconds.
type secondsFlag struct{ secs *float64 }

func (d secondsFlag) String() string {
	if d.secs == nil || *d.secs == 0 {
		return ""
	}
	return time.Duration(*d.secs * float64(time.Second)).String()
}

func (d secondsFlag) Set(s string) error {
	if secs, err := strconv.ParseFloat(s, 64); err == nil {
		if secs < 0 {
			return fmt.Errorf("%s is negative", s)
		}
		*d.secs = secs
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration: use 90s, 5m, 1h30m or a number of seconds", s)
	}
	if v < 0 {
		return fmt.Errorf("%s is negative", s)
	}
	*d.secs = v.Seconds()
	return nil
}

// pathFlag is a path, made absolute against the working directory: the
// job service resolves relative paths against its roots instead.
type pathFlag struct{ path *string }

func (p pathFlag) String() string {
	if p.path == nil {
		return ""
	}
	return *p.path
}

func (p pathFlag) Set(s string) error {
	*p.path = absPath(s)
	return nil
}

// envFlag is one NAME=value of a run's environment (repeatable).
type envFlag struct{ env *map[string]string }

func (e envFlag) String() string { return "" }

func (e envFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("write NAME=value")
	}
	if *e.env == nil {
		*e.env = map[string]string{}
	}
	(*e.env)[k] = v
	return nil
}

// choiceFlag is one of a fixed set of words.
type choiceFlag struct {
	value   string
	choices []string
}

func (c *choiceFlag) String() string {
	if c == nil {
		return ""
	}
	return c.value
}

func (c *choiceFlag) Set(s string) error {
	for _, ch := range c.choices {
		if s == ch {
			c.value = s
			return nil
		}
	}
	return fmt.Errorf("%q: use %s", s, strings.Join(c.choices, ", "))
}

// parseJob parses args of a command that takes one job id and connects with
// the shared flags (withConfig first); done closes the connection.
func (f *flagSet) parseJob(ctx context.Context, args []string) (id string, svc *jobs.Service, done func(), err error) {
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return "", nil, nil, err
	}
	if svc, done, err = f.c.connect(ctx, f.cmd, f.cfg); err != nil {
		return "", nil, nil, err
	}
	return pos[0], svc, done, nil
}
