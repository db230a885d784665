//go:build linux

package limits_test

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"millrace/internal/executor"
	"millrace/internal/limits"
)

// These tests use the real cgroups (or rlimits) of the machine they run
// on, through the executor exactly as a run starts.

const python = executor.DefaultPython

// startIn starts python running prog inside grp and returns the process
// and its first line of output.
func startIn(t *testing.T, grp *limits.Group, prog string) (*executor.Process, string) {
	t.Helper()
	p, err := executor.StartConfined([]string{python, "-c", prog}, t.TempDir(), os.Environ(), "limits-test-"+filepath.Base(t.TempDir()), grp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(0) })
	go func() { _, _ = bufio.NewReader(p.Stderr).WriteTo(os.Stderr) }()
	line, _ := bufio.NewReader(p.Stdout).ReadString('\n')
	return p, strings.TrimSpace(line)
}

func cgroupSupport(t *testing.T) limits.Support {
	t.Helper()
	s := limits.Detected()
	t.Logf("detected: %s", s)
	if s.Memory == limits.Rlimit || s.CPU == "" {
		t.Skipf("this machine gives the test no writable memory and cpu cgroups: %s", s.Why)
	}
	return s
}

// childCgroups is /proc/<pid>/cgroup.
func childCgroups(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cgroup"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestGroupKillsAtMemoryLimitAndIsRemoved(t *testing.T) {
	s := cgroupSupport(t)
	grp, err := s.NewGroup("test.oom."+filepath.Base(t.TempDir()), limits.Spec{Memory: 80 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer grp.Close()
	// Touch every page, so the memory is really used: bytes * n fills it.
	p, line := startIn(t, grp, `import os, sys
print("pid", os.getpid(), flush=True)
x = b"\x01" * (400 << 20)
print("survived", flush=True)`)
	if !strings.HasPrefix(line, "pid ") {
		t.Fatalf("first line %q", line)
	}
	if cg := childCgroups(t, p.Pid()); !strings.Contains(cg, "millrace-run-test.oom.") {
		t.Fatalf("the child is not in its run cgroup:\n%s", cg)
	}
	if code := p.ExitCode(); code != 128+int(syscall.SIGKILL) {
		t.Fatalf("exit %d, want %d: killed by the OOM killer", code, 128+int(syscall.SIGKILL))
	}
	if n := grp.OOMKills(); n < 1 {
		t.Fatalf("OOMKills = %d, want at least 1", n)
	}
	peak := grp.Peak()
	t.Logf("peak %s with a limit of 80 MiB", limits.FormatSize(peak))
	if peak > 80<<20 {
		t.Fatalf("peak %d above the limit", peak)
	}
	leftovers := grp.Dirs()
	if len(leftovers) == 0 {
		t.Fatal("an open group has no cgroup directory")
	}
	if err := grp.Close(); err != nil {
		t.Fatal(err)
	}
	for _, d := range leftovers {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Fatalf("cgroup %s still there after Close (%v)", d, err)
		}
	}
	if err := grp.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestGroupCPUQuotaAndCloseKillsLeftovers(t *testing.T) {
	s := cgroupSupport(t)
	grp, err := s.NewGroup("test.cpu."+filepath.Base(t.TempDir()), limits.Spec{CPU: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	defer grp.Close()
	p, line := startIn(t, grp, `print("ready", flush=True)
import time; time.sleep(600)`)
	if line != "ready" {
		t.Fatalf("first line %q", line)
	}
	// The process is in the run's cgroup, and that cgroup has the quota.
	cg := childCgroups(t, p.Pid())
	quota := ""
	for _, d := range grp.Dirs() {
		if !strings.Contains(cg, filepath.Base(d)) {
			t.Fatalf("the process is not in %s:\n%s", d, cg)
		}
		if b, err := os.ReadFile(filepath.Join(d, "cpu.max")); err == nil {
			quota = strings.TrimSpace(string(b))
		} else if b, err := os.ReadFile(filepath.Join(d, "cpu.cfs_quota_us")); err == nil {
			quota = strings.TrimSpace(string(b))
		}
	}
	if quota != "50000" && quota != "50000 100000" {
		t.Fatalf("quota %q, want 50000 per 100000 us", quota)
	}
	// Close with the process still running: it is killed, then removed.
	if err := grp.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the process of the run still runs 30s after Close")
	}
	if code := p.ExitCode(); code != 128+int(syscall.SIGKILL) {
		t.Fatalf("exit %d, want %d: killed by Close", code, 128+int(syscall.SIGKILL))
	}
}

func TestRlimitMakesAllocationFail(t *testing.T) {
	s := limits.Support{Memory: limits.Rlimit} // what a worker without cgroups gets
	grp, err := s.NewGroup("test.rlimit", limits.Spec{Memory: 200 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer grp.Close()
	if notes := grp.Notes(); len(notes) != 1 || !strings.Contains(notes[0], "RLIMIT_DATA") {
		t.Fatalf("notes %q, want one naming RLIMIT_DATA", notes)
	}
	p, line := startIn(t, grp, `import resource, subprocess, sys
child = subprocess.run([sys.executable, "-c", "import resource; print(resource.getrlimit(resource.RLIMIT_DATA)[0])"], capture_output=True, text=True).stdout.strip()
try:
    x = b"\x01" * (600 << 20)
    r = "allocated"
except MemoryError:
    r = "MemoryError"
print(resource.getrlimit(resource.RLIMIT_DATA)[0], child, r, flush=True)`)
	want := "209715200 209715200 MemoryError"
	if line != want {
		t.Fatalf("got %q, want %q (own limit, its child's limit, the allocation)", line, want)
	}
	if code := p.ExitCode(); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

func TestCPULimitRefusedWithoutCgroup(t *testing.T) {
	s := limits.Support{Memory: limits.Rlimit, Why: "cpu: no cgroup v1 hierarchy with this controller"}
	_, err := s.NewGroup("test.refused", limits.Spec{CPU: 1})
	if err == nil || !strings.Contains(err.Error(), "cpu_limit 1: cannot be enforced on this worker") || !strings.Contains(err.Error(), "no cgroup v1 hierarchy") {
		t.Fatalf("got %v, want a refusal naming the missing cgroup support", err)
	}
}

// detachedProg starts sleep in a new session with an empty environment,
// where neither a signal to the run's process group nor the marker sweep
// reaches it, prints its pid and exits.
const detachedProg = `import subprocess
p = subprocess.Popen(["sleep", "300"], env={}, start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(p.pid, flush=True)`

// alive reports whether pid is a process that is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

func startDetached(t *testing.T, grp *limits.Group) int {
	t.Helper()
	p, line := startIn(t, grp, detachedProg)
	pid, err := strconv.Atoi(line)
	if err != nil {
		t.Fatalf("no pid: %q", line)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	<-p.Done()
	if err := p.Stop(time.Second); err != nil {
		t.Fatal(err)
	}
	p.Cleanup()
	return pid
}

// TestGroupWithoutLimitsHoldsADetachedProcess: a run without limits gets
// a cgroup all the same, and closing it kills a process that escaped the
// process group and the marker sweep. The control shows that without the
// cgroup the process survives the executor's own stop.
func TestGroupWithoutLimitsHoldsADetachedProcess(t *testing.T) {
	s := limits.Detected()
	if !s.Isolates() {
		t.Fatalf("this host gives runs no cgroup of their own: %s", s.Unisolated())
	}
	control := startDetached(t, nil)
	if !alive(control) {
		t.Fatal("control: the detached process died without a cgroup; this test could not tell the cgroup's effect")
	}
	_ = syscall.Kill(control, syscall.SIGKILL)

	name := "test.track." + filepath.Base(t.TempDir())
	grp, err := s.NewGroup(name, limits.Spec{})
	if err != nil || grp == nil {
		t.Fatalf("NewGroup without limits: %v, %v", grp, err)
	}
	if notes := grp.Notes(); len(notes) != 0 {
		t.Fatalf("notes %q for a run without limits", notes)
	}
	pid := startDetached(t, grp)
	if !alive(pid) {
		t.Fatal("the detached process died before the cgroup was closed")
	}
	if cg := childCgroups(t, pid); !strings.Contains(cg, limits.RunCgroupPrefix(name)) {
		t.Fatalf("detached process is not in the run's cgroup:\n%s", cg)
	}
	if err := grp.Close(); err != nil {
		t.Fatal(err)
	}
	if alive(pid) {
		t.Fatalf("process %d outlived the run's cgroup", pid)
	}
	for _, d := range grp.Dirs() {
		t.Fatalf("Dirs after Close: %s", d)
	}
	for _, parent := range s.Parents() {
		if left, _ := filepath.Glob(filepath.Join(parent, limits.RunCgroupPrefix(name)+"*")); len(left) > 0 {
			t.Fatalf("cgroups left: %v", left)
		}
	}
}

// TestGroupWithoutLimitsCost measures what a run pays for its cgroup:
// creating it and removing it when empty. It asserts only a loose bound,
// and logs the figure.
func TestGroupWithoutLimitsCost(t *testing.T) {
	s := limits.Detected()
	const n = 50
	start := time.Now()
	for i := range n {
		grp, err := s.NewGroup("test.cost."+strconv.Itoa(i)+"."+filepath.Base(t.TempDir()), limits.Spec{})
		if err != nil {
			t.Fatal(err)
		}
		if err := grp.Close(); err != nil {
			t.Fatal(err)
		}
	}
	each := time.Since(start) / n
	t.Logf("create and remove an empty run cgroup: %s each (%s)", each, s)
	if each > 100*time.Millisecond {
		t.Fatalf("a run cgroup costs %s to create and remove", each)
	}
}
