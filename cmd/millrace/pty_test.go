package main

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"millrace/internal/notebook"
	"millrace/workflows"
)

// terminal runs the built millrace binary in a pseudo-terminal, as a
// person at a terminal runs it.
type terminal struct {
	cmd  *exec.Cmd
	pty  *os.File
	out  syncBuffer
	done chan struct{}
	err  error
}

func startTerminal(t *testing.T, env []string, args ...string) *terminal {
	t.Helper()
	cmd := exec.Command(builtBinary(t), args...)
	cmd.Env = append(append(withoutEnv("NO_COLOR", "TERM", "TEMPORAL_ADDRESS"), "TERM=xterm-256color"), env...)
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 120})
	if err != nil {
		t.Fatal(err)
	}
	term := &terminal{cmd: cmd, pty: f, done: make(chan struct{})}
	var copied sync.WaitGroup
	copied.Add(1)
	go func() {
		defer copied.Done()
		// Reading ends with EIO once the process has exited and closed
		// its side.
		_, _ = io.Copy(&term.out, f)
	}()
	go func() {
		term.err = cmd.Wait()
		copied.Wait()
		close(term.done)
	}()
	t.Cleanup(func() {
		select {
		case <-term.done:
		default:
			_ = cmd.Process.Kill()
			<-term.done
		}
		f.Close()
	})
	return term
}

// wait waits for the process to exit and returns its exit code.
func (term *terminal) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-term.done:
	case <-time.After(timeout):
		t.Fatalf("millrace did not exit within %s; the terminal shows:\n%s", timeout, screenText(term.out.String()))
	}
	var ee *exec.ExitError
	if errors.As(term.err, &ee) {
		return ee.ExitCode()
	}
	if term.err != nil {
		t.Fatal(term.err)
	}
	return 0
}

// screenText is what a terminal shows as lines, roughly: escape codes
// removed, and each line's text after its last carriage return (a redraw).
func screenText(raw string) string {
	var lines []string
	for _, l := range strings.Split(notebook.StripANSI(raw), "\n") {
		if i := strings.LastIndex(strings.TrimRight(l, "\r"), "\r"); i >= 0 {
			l = l[i+1:]
		}
		lines = append(lines, strings.TrimRight(l, "\r "))
	}
	return strings.Join(lines, "\n")
}

func TestRunInATerminalShowsProgressToTheEnd(t *testing.T) {
	e := setup(t)
	nb := e.notebook(t, trainNotebook)
	term := startTerminal(t, nil, append([]string{"run", nb, "-p", "epochs=5"}, e.flags()...)...)
	code := term.wait(t, 3*time.Minute)
	raw := term.out.String()
	screen := screenText(raw)
	if code != 0 {
		t.Fatalf("exit %d; the terminal shows:\n%s", code, screen)
	}
	if !strings.Contains(raw, "\x1b[1A") || !strings.Contains(raw, "\x1b[32m✓") {
		t.Errorf("no redraws or no colours: the display did not draw on the terminal:\n%q", raw)
	}
	if !strings.Contains(screen, "100%") || !strings.Contains(screen, "[====") {
		t.Errorf("the progress bar never reached 100%%:\n%s", screen)
	}
	if !strings.Contains(screen, "epoch 5: loss=") {
		t.Errorf("the run's output was not streamed:\n%s", screen)
	}
	last := lastLine(screen)
	if !strings.Contains(last, workflows.StatusSucceeded) || !strings.Contains(last, "✓") {
		t.Errorf("the last line %q does not report success; the terminal shows:\n%s", last, screen)
	}
}

// TestCtrlCInATerminalAsksAndCancels also checks NO_COLOR: the live
// display stays, the colours go.
func TestCtrlCInATerminalAsksAndCancels(t *testing.T) {
	e := setup(t)
	nb := e.notebook(t, slowNotebook)
	term := startTerminal(t, []string{"NO_COLOR=1"}, append([]string{"run", nb, "-p", "steps=400", "-p", "delay=0.1"}, e.flags()...)...)
	waitFor(t, 2*time.Minute, term.out.String, "step 3")
	if _, err := term.pty.Write([]byte{3}); err != nil { // Ctrl-C: SIGINT from the terminal
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, term.out.String, "Cancel the run, or detach")
	if _, err := term.pty.Write([]byte("c\r")); err != nil {
		t.Fatal(err)
	}
	code := term.wait(t, 2*time.Minute)
	raw := term.out.String()
	screen := screenText(raw)
	if code != exitFailed || !strings.Contains(lastLine(screen), workflows.StatusCanceled) {
		t.Errorf("exit %d; the terminal shows:\n%s", code, screen)
	}
	if !strings.Contains(raw, "\x1b[1A") || strings.Contains(raw, "m✗") || strings.Contains(raw, "\x1b[1m") {
		t.Errorf("with NO_COLOR, want the live display without colours:\n%q", raw)
	}
	id := jobID(t, screen)
	if st, err := e.svc.Status(t.Context(), id); err != nil || st.Status != workflows.StatusCanceled {
		t.Errorf("job after cancel: %v %+v", err, st)
	}
}

// withoutEnv is the environment without the named variables.
func withoutEnv(names ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, n := range names {
			drop = drop || name == n
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}
