package warmpool

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"millrace/internal/executor"
	"millrace/internal/filemode"
)

// checkNotebook is the self-check's notebook: one cell, whose output proves
// that a forked kernel ran it.
const checkNotebook = `{"cells": [{"cell_type": "code", "execution_count": null, "id": "c0", "metadata": {},
 "outputs": [], "source": "print('millrace-warm-check', 1 + 1)"}],
 "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
 "nbformat": 4, "nbformat_minor": 5}`

// ColdNote starts the line millrace_attach.py writes to stderr when it
// starts the cold runner instead.
const ColdNote = "[millrace-warm] cold start"

// selfCheck runs the check notebook through z as a run would go (the
// attach process under executor.StartWith) and fails unless it ran warm
// and printed 2. A pool that cannot run this is never used.
func (p *Pool) selfCheck(ctx context.Context, z *zygote) error {
	dir, err := os.MkdirTemp(p.sockDir, "check-")
	if err != nil {
		return fmt.Errorf("warm pool self-check: %w", err)
	}
	defer os.RemoveAll(dir)
	in := filepath.Join(dir, "check.ipynb")
	if err := os.WriteFile(in, []byte(checkNotebook), filemode.File); err != nil {
		return fmt.Errorf("warm pool self-check: %w", err)
	}
	cold := []string{p.cfg.Python, p.cfg.Runner, in, filepath.Join(dir, "out.ipynb"), "--cwd", dir,
		"--start-timeout", "60", "--result-file", filepath.Join(dir, "result.json")}
	args := append([]string{p.cfg.Python, "-I", "-S", p.ascript, z.sock, "--"}, cold...)
	start := time.Now()
	proc, err := executor.StartWith(executor.Launch{Args: args, Dir: dir, Env: p.cfg.Env, Marker: "millrace-warm-check." + filepath.Base(dir)})
	if err != nil {
		return fmt.Errorf("warm pool self-check: %w", err)
	}
	var out, errs strings.Builder
	var wg sync.WaitGroup
	wg.Add(2)
	go collect(&wg, proc.Stdout, &out)
	go collect(&wg, proc.Stderr, &errs)
	select {
	case <-proc.Done():
	case <-ctx.Done():
		_ = proc.Stop(0)
	case <-time.After(2 * time.Minute):
		_ = proc.Stop(0)
	}
	wg.Wait()
	proc.Cleanup()
	code := proc.ExitCode()
	switch {
	case code != 0:
		return fmt.Errorf("warm pool self-check: the check run exited %d: %s", code, lastLines(errs.String()))
	case strings.Contains(errs.String(), ColdNote):
		return fmt.Errorf("warm pool self-check: the check run went cold: %s", lastLines(errs.String()))
	case !strings.Contains(out.String(), "millrace-warm-check 2"):
		return fmt.Errorf("warm pool self-check: the check cell's output is missing: %q", lastLines(out.String()))
	}
	p.log.Info("warm pool ready", "zygote", z.proc.Pid(), "imports", z.Import.Round(time.Millisecond), "check_run", time.Since(start).Round(time.Millisecond))
	return nil
}

func collect(wg *sync.WaitGroup, r io.ReadCloser, into *strings.Builder) {
	defer wg.Done()
	defer r.Close()
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		into.WriteString(sc.Text())
		into.WriteByte('\n')
	}
}

func lastLines(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 4 {
		lines = lines[len(lines)-4:]
	}
	return strings.Join(lines, " | ")
}
