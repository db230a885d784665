package security_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"millrace/internal/jobs"
	"millrace/internal/limits"
	"millrace/internal/runopts"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// cgroupAlive reports whether pid is a process that has not exited (a
// zombie waiting for its reaper has).
func cgroupAlive(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

// cgroupsLeft lists the cgroups of a job that are still there.
func cgroupsLeft(jobID string) []string {
	var left []string
	for _, parent := range limits.Detected().Parents() {
		m, _ := filepath.Glob(filepath.Join(parent, limits.RunCgroupPrefix(jobID)+"*"))
		left = append(left, m...)
	}
	return left
}

// cgroupLogLine waits for a log line of the job starting with prefix and
// returns the rest of it.
func cgroupLogLine(t *testing.T, svc *jobs.Service, jobID, prefix string) string {
	t.Helper()
	var rest string
	testenv.Eventually(t, 90*time.Second, "the log line "+prefix, func() bool {
		logs, err := svc.Logs(context.Background(), jobs.LogsRequest{JobID: jobID})
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range logs.Lines {
			if r, ok := strings.CutPrefix(l.Text, prefix); ok {
				rest = strings.TrimSpace(r)
				return true
			}
		}
		return false
	})
	return rest
}

func TestCgroupCancelKillsDetachedProcess(t *testing.T) {
	o := attack(t, "start a process from a cell in a new session with an empty environment (out of reach of the process group and the marker sweep), so that it outlives a cancel of the run")
	if s := limits.Detected(); !s.Isolates() {
		t.Fatalf("this host gives runs no cgroup: %s", s.Unisolated())
	}
	dir := t.TempDir()
	nb := testenv.WriteNotebook(t, dir, "detach.ipynb", `import subprocess
p = subprocess.Popen(["sleep", "300"], env={}, start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print("DETACHED", p.pid, flush=True)`, `import time
time.sleep(300)`)
	cfg := server.Config(t)
	server.StartWorker(t, cfg)
	svc := server.Service(t, cfg, dir)
	ctx := context.Background()
	started, err := svc.Start(ctx, jobs.StartRequest{Path: nb, Options: runopts.Options{MaxAttempts: 1}})
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(cgroupLogLine(t, svc, started.JobID, "DETACHED"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { killPid(pid) })
	cg, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cgroup"))
	if err != nil || !cgroupAlive(pid) {
		t.Fatalf("the detached process %d is not running: %v", pid, err)
	}
	if !strings.Contains(string(cg), limits.RunCgroupPrefix(started.JobID)) {
		t.Fatalf("the detached process is not in the run's cgroup:\n%s", cg)
	}
	if env, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ")); len(env) != 0 {
		t.Fatalf("the detached process has an environment (%q): the marker sweep could find it", env)
	}

	canceled := time.Now()
	st, err := svc.Cancel(ctx, started.JobID, "attack test")
	if err != nil || st.Status != workflows.StatusCanceled {
		t.Fatalf("cancel: %s %v", st.Status, err)
	}
	testenv.Eventually(t, 10*time.Second, "the detached process to be killed", func() bool { return !cgroupAlive(pid) })
	gone := time.Since(canceled)
	testenv.Eventually(t, 10*time.Second, "the run's cgroups to be removed", func() bool { return len(cgroupsLeft(started.JobID)) == 0 })
	o.saw("the detached process, in the run's cgroup, was gone %.1f s after the cancel was requested; the run's cgroups were removed", gone.Seconds())
}

func TestCgroupRunWithoutLimitsHasItsOwn(t *testing.T) {
	o := attack(t, "a run without limits escapes having a cgroup of its own, or leaves its cgroup behind")
	dir := t.TempDir()
	nb := testenv.WriteNotebook(t, dir, "own.ipynb", `for line in open("/proc/self/cgroup"):
    print("CGROUP", line.strip())`)
	cfg := server.Config(t)
	server.StartWorker(t, cfg)
	svc := server.Service(t, cfg, dir)
	ctx := context.Background()
	started, err := svc.Start(ctx, jobs.StartRequest{Path: nb, Options: runopts.Options{MaxAttempts: 1}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := svc.WaitEnded(ctx, started.JobID, 2*time.Minute, nil)
	if err != nil || st.Status != workflows.StatusSucceeded {
		t.Fatalf("run: %s %s %v", st.Status, st.Message, err)
	}
	if line := cgroupLogLine(t, svc, started.JobID, "CGROUP"); line == "" {
		t.Fatal("no cgroup line")
	}
	logs, err := svc.Logs(ctx, jobs.LogsRequest{JobID: started.JobID})
	if err != nil {
		t.Fatal(err)
	}
	in := false
	for _, l := range logs.Lines {
		in = in || strings.Contains(l.Text, limits.RunCgroupPrefix(started.JobID))
	}
	if !in {
		t.Fatalf("the kernel was not in the run's cgroup: %+v", logs.Lines)
	}
	for _, w := range st.Warnings {
		if strings.Contains(w, "cgroup") {
			t.Fatalf("warning on a host that isolates runs: %q", w)
		}
	}
	if left := cgroupsLeft(started.JobID); len(left) > 0 {
		t.Fatalf("cgroups left after the run: %v", left)
	}
	o.saw("its kernel ran in the run's own cgroup, the run succeeded with no warning, and no cgroup was left")
}

// killPid kills the test's detached sleep if it is still there (a failed
// test), checking first that pid is still that sleep.
func killPid(pid int) {
	cmd, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if string(cmd) == "sleep\x00300\x00" {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}
