package executor

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"millrace/internal/executor/runner"
	"millrace/internal/failure"
)

func TestResolve(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no papermill on PATH
	dir := t.TempDir()
	e, err := Config{}.Resolve(dir)
	if err != nil || e.Name != Bundled || e.Path != DefaultPython {
		t.Fatalf("auto without papermill: %+v %v, want the bundled runner on %s", e, err, DefaultPython)
	}
	if _, err := os.Stat(e.script); err != nil {
		t.Fatalf("runner script not written: %v", err)
	}
	if b, err := os.ReadFile(e.bootstrap); err != nil || string(b) != runner.CheckpointBootstrap() {
		t.Fatalf("checkpoint bootstrap not written beside the runner: %v", err)
	}
	if _, err := (Config{Kind: ChoosePapermill}).Resolve(dir); err == nil {
		t.Fatal("papermill chosen explicitly but missing: want an error")
	}
	if _, err := (Config{Kind: "docker"}).Resolve(dir); err == nil || !strings.Contains(err.Error(), "auto, papermill or bundled") {
		t.Fatalf("unknown kind: %v", err)
	}
	if _, err := (Config{Kind: ChooseBundled, Python: "/nonexistent/python"}).Resolve(dir); err == nil {
		t.Fatal("missing python accepted")
	}

	fake := filepath.Join(t.TempDir(), "papermill")
	os.WriteFile(fake, []byte("#!/bin/true\n"), 0o755)
	t.Setenv("PATH", filepath.Dir(fake))
	e, err = Config{}.Resolve(dir)
	if err != nil || e.Name != Papermill || e.Path != fake {
		t.Fatalf("auto with papermill on PATH: %+v %v", e, err)
	}
}

func TestArgs(t *testing.T) {
	s := Spec{Input: "/in.ipynb", Output: "/out.ipynb", ParamsFile: "/p.json", Kernel: "python3", Cwd: "/w", CellTimeout: 90 * time.Second, ResultFile: "/r.json"}
	pm := Executor{Name: Papermill, Path: "/bin/papermill"}.Args(s)
	want := []string{"/bin/papermill", "/in.ipynb", "/out.ipynb", "--no-progress-bar", "--log-output", "-f", "/p.json", "-k", "python3", "--cwd", "/w", "--execution-timeout", "90", "--start-timeout", "60"}
	if !slices.Equal(pm, want) {
		t.Fatalf("papermill args\n got %q\nwant %q", pm, want)
	}
	b := Executor{Name: Bundled, Path: "/usr/bin/python3", script: "/r.py"}.Args(Spec{Input: "/in.ipynb", Output: "/out.ipynb", Cwd: "/w", ResultFile: "/r.json"})
	want = []string{"/usr/bin/python3", "/r.py", "/in.ipynb", "/out.ipynb", "--cwd", "/w", "--start-timeout", "60", "--result-file", "/r.json"}
	if !slices.Equal(b, want) {
		t.Fatalf("bundled args\n got %q\nwant %q", b, want)
	}
}

// TestArgsCheckpoints: the checkpoint and resume flags go to the bundled
// runner alone (papermill has none), with the bootstrap file the runner
// installs the library from.
func TestArgsCheckpoints(t *testing.T) {
	s := Spec{Input: "/in.ipynb", Output: "/out.ipynb", Cwd: "/w", CheckpointDir: "/a/checkpoints", Checkpoint: "every_cell",
		CheckpointMaxBytes: 1 << 30, CheckpointKeep: 2,
		Resume: &Resume{Checkpoint: "/b/checkpoints/cell-3.ckpt", SHA256: "ab12", Cell: 3, AllowPartial: true, Required: true}}
	pm := Executor{Name: Papermill, Path: "/bin/papermill"}.Args(s)
	for _, a := range pm {
		if strings.Contains(a, "checkpoint") || strings.Contains(a, "resume") || strings.Contains(a, "partial") {
			t.Fatalf("papermill got a checkpoint flag: %q", pm)
		}
	}
	b := Executor{Name: Bundled, Path: "/usr/bin/python3", script: "/r.py", bootstrap: "/boot.py"}.Args(s)
	want := []string{"/usr/bin/python3", "/r.py", "/in.ipynb", "/out.ipynb", "--cwd", "/w", "--start-timeout", "60",
		"--checkpoint-dir", "/a/checkpoints", "--checkpoint", "every_cell", "--checkpoint-max-bytes", "1073741824", "--checkpoint-keep", "2",
		"--resume-checkpoint", "/b/checkpoints/cell-3.ckpt", "--resume-sha256", "ab12", "--resume-cell", "3",
		"--allow-partial", "--resume-required", "--checkpoint-bootstrap", "/boot.py"}
	if !slices.Equal(b, want) {
		t.Fatalf("bundled args\n got %q\nwant %q", b, want)
	}
}

// TestStopKillsGroupAndMarkedProcesses starts a process tree where one
// grandchild escapes into its own session (as a Jupyter kernel does) and
// checks that Stop leaves nothing alive.
func TestStopKillsGroupAndMarkedProcesses(t *testing.T) {
	marker := "test-" + filepath.Base(t.TempDir())
	// python: start a child in a new session, then ignore SIGTERM and sleep.
	prog := `import os, signal, subprocess, sys, time
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
time.sleep(600)`
	p, err := Start([]string{"/usr/bin/python3", "-c", prog}, t.TempDir(), os.Environ(), marker)
	if err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(p.Stdout).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("read %q %v", line, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(Marked(marker)) < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := len(Marked(marker)); n < 2 {
		t.Fatalf("%d marked processes, want the parent and its escaped child", n)
	}
	began := time.Now()
	if err := p.Stop(500 * time.Millisecond); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if code := p.ExitCode(); code != 128+int(syscall.SIGKILL) {
		t.Fatalf("exit code %d, want %d (SIGKILL: it ignored SIGTERM)", code, 128+int(syscall.SIGKILL))
	}
	if d := time.Since(began); d > 7*time.Second {
		t.Fatalf("Stop took %s", d)
	}
	deadline = time.Now().Add(5 * time.Second)
	for len(Marked(marker)) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if m := Marked(marker); len(m) > 0 {
		t.Fatalf("processes left after Stop: %v", m)
	}
	if err := p.Stop(time.Second); err != nil { // idempotent
		t.Fatalf("second Stop: %v", err)
	}
}

func TestFromExit(t *testing.T) {
	cases := []struct {
		code int
		tail []string
		kind failure.Kind
	}{
		{0, nil, failure.KindOK},
		{138, nil, failure.KindKernelDied},
		{1, []string{"jupyter_client.kernelspec.NoSuchKernel: No such kernel named python"}, failure.KindNoSuchKernel},
		{1, []string{"PapermillException: No parameter translator functions specified for kernel 'r'"}, failure.KindNoTranslator},
		{1, []string{"papermill.exceptions.PapermillExecutionError: ..."}, failure.KindCellError},
		{137, nil, failure.KindExited},
		{3, nil, failure.KindExited},
	}
	for _, c := range cases {
		if got := FromExit(c.code, c.tail); got.Kind != c.kind {
			t.Errorf("FromExit(%d, %q) = %s, want %s", c.code, c.tail, got.Kind, c.kind)
		}
	}
}
