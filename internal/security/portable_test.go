package security_test

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"millrace/internal/jobs"
	"millrace/internal/portable"
	"millrace/internal/runopts"
	"millrace/internal/testenv"
)

// disarmCell sends every catchable signal a watchdog might die of to the
// other members of its runner's process group (the runner is the kernel's
// parent; with the portable supervisor its watchdog is the other member),
// and prints how many it reached and its own pid.
const disarmCell = `import os, signal
runner = os.getppid()
group = os.getpgid(runner)
hit = 0
for d in os.listdir("/proc"):
    if not d.isdigit() or int(d) in (runner, os.getpid()):
        continue
    try:
        if os.getpgid(int(d)) != group:
            continue
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
            os.kill(int(d), s)
        hit += 1
    except ProcessLookupError:
        pass
print("DISARMED", hit, flush=True)
print("KERNEL", os.getpid(), flush=True)`

func TestPortableWatchdogOutlivesSignalsFromTheRun(t *testing.T) {
	o := attack(t, "with the portable supervisor (macOS; MILLRACE_SUPERVISOR=portable on Linux), a cell sends SIGTERM, SIGINT, SIGHUP and SIGQUIT to its runner's watchdog, so that its kernel outlives a worker then killed with SIGKILL")
	dir := t.TempDir()
	nb := testenv.WriteNotebook(t, dir, "disarm.ipynb", disarmCell, "import time\ntime.sleep(300)")
	cfg := server.Config(t)
	worker := exec.Command(bin["millrace-worker"], "--temporal-address", server.Address, "--namespace", cfg.Namespace,
		"--task-queue", cfg.TaskQueue, "--data-dir", cfg.DataDir, "--executor", "bundled", "--log-level", "error")
	worker.Env = append(os.Environ(), portable.EnvVar+"="+portable.Portable)
	worker.Stderr = os.Stderr
	if err := worker.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = worker.Wait(); close(exited) }()
	t.Cleanup(func() { _ = worker.Process.Kill(); <-exited })

	svc := server.Service(t, cfg, dir)
	started, err := svc.Start(context.Background(), jobs.StartRequest{Path: nb, Options: runopts.Options{MaxAttempts: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if hit, _ := strconv.Atoi(cgroupLogLine(t, svc, started.JobID, "DISARMED")); hit < 1 {
		t.Fatalf("the cell found no watchdog in its runner's group (%d processes): the attack tried nothing", hit)
	}
	kernel, err := strconv.Atoi(cgroupLogLine(t, svc, started.JobID, "KERNEL"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd, _ := os.ReadFile("/proc/" + strconv.Itoa(kernel) + "/cmdline"); strings.Contains(string(cmd), "ipykernel") {
			_ = syscall.Kill(kernel, syscall.SIGKILL)
		}
	})
	if !cgroupAlive(kernel) {
		t.Fatalf("kernel %d is not running", kernel)
	}
	if err := worker.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	killed := time.Now()
	testenv.Eventually(t, 15*time.Second, "the kernel to die with its worker", func() bool { return !cgroupAlive(kernel) })
	o.saw("the watchdog ignored the signals; the kernel (its own session) was gone %.1f s after the worker's SIGKILL", time.Since(killed).Seconds())
}
