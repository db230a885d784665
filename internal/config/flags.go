package config

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
)

// Parse parses a binary's flags (which take no positional arguments) and
// validates the configuration.
func (c *Config) Parse(fs *flag.FlagSet, args []string) error {
	if err := RefuseSecretArgs(fs, args); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return c.Validate()
}

// NewLogger returns a text logger on w at the named level (debug, info,
// warn or error), as the --log-level flag of every binary gives it.
func NewLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}
