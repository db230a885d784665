// Command millrace-bench runs every benchmark of millrace on the
// embedded Temporal server, one package at a time, and prints one table:
// metric, value, target, verdict. `-write BENCHMARKS.md` also puts the
// table into that file's bench section. Run it from the module root
// (`make bench` does).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"syscall"
	"time"

	"millrace/internal/benchreport"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "millrace-bench:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("millrace-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "fewer repetitions and a 64 MB log instead of 1 GB; skips the throughput and /dev/shm runs (about 2 minutes instead of 10)")
	write := fs.String("write", "", "also write the table into this file's bench section (BENCHMARKS.md)")
	logPath := fs.String("log", filepath.Join(os.TempDir(), "millrace-bench.log"), "where the benchmarks' own output goes")
	only := fs.String("only", "", "run only the groups whose package or benchmark matches this regexp (the table shows the rest as not measured; with -write, they keep the figures published before, marked ‡)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var filter *regexp.Regexp
	if *only != "" {
		var err error
		if filter, err = regexp.Compile(*only); err != nil {
			return fmt.Errorf("-only: %w", err)
		}
	}
	if *write != "" {
		if _, err := os.Stat(*write); err != nil {
			return fmt.Errorf("-write: %w", err)
		}
	}
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return fmt.Errorf("run millrace-bench from the module root (where go.mod is): %w", err)
	}
	logf, err := os.Create(*logPath)
	if err != nil {
		return err
	}
	defer logf.Close()

	rep := benchreport.Report{Machine: benchreport.ReadMachine(), Commit: benchreport.Commit(root), Started: time.Now(), Quick: *quick, Results: benchreport.Results{}}
	if *write != "" && filter != nil {
		// Some groups only: the rest of the published table stays, marked
		// as measured before.
		if rep.Earlier, err = benchreport.ReadEarlier(*write); err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "millrace-bench: %s; load %s; benchmark output in %s\n", rep.Machine, rep.Machine.Load, *logPath)
	for _, g := range benchreport.Suite {
		if filter != nil && !filter.MatchString(g.Package+" "+g.Bench) {
			continue
		}
		if _, err := os.Stat(g.Needs); g.Needs != "" && err != nil {
			fmt.Fprintf(stderr, "skip %s%s %s (needs %s)\n", g.Prefix, g.Package, g.Bench, g.Needs)
			continue
		}
		if *quick && g.Quick == "" {
			fmt.Fprintf(stderr, "skip %s %s (not in quick mode)\n", g.Package, g.Bench)
			continue
		}
		began := time.Now()
		fmt.Fprintf(stderr, "run  %s%s %s ... ", g.Prefix, g.Package, g.Bench)
		res, err := g.Run(ctx, root, *quick, logf)
		for name, figures := range res {
			rep.Results[name] = figures
		}
		if err != nil {
			fmt.Fprintf(stderr, "FAILED after %s (see %s)\n", time.Since(began).Round(time.Second), *logPath)
			rep.Failures = append(rep.Failures, err.Error())
			if ctx.Err() != nil {
				break
			}
			continue
		}
		fmt.Fprintf(stderr, "%s\n", time.Since(began).Round(time.Second))
	}
	rep.Took = time.Since(rep.Started)
	rep.LoadAfter = benchreport.LoadAverage()
	table := rep.Markdown()
	fmt.Fprint(stdout, table)
	if *write != "" {
		if err := benchreport.WriteSection(*write, table); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "millrace-bench: wrote the table into %s\n", *write)
	}
	if len(rep.Failures) > 0 {
		return fmt.Errorf("%d benchmark group(s) failed; their output is in %s", len(rep.Failures), *logPath)
	}
	return nil
}
