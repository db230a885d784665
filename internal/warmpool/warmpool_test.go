package warmpool_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"millrace/internal/executor"
	"millrace/internal/limits"
	"millrace/internal/runenv"
	"millrace/internal/testenv"
	"millrace/internal/warmpool"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.pool != nil {
		shared.pool.Close()
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// shared is the pool of the tests that leave it intact, started once.
var shared struct {
	once sync.Once
	dir  string
	pool *warmpool.Pool
	exe  executor.Executor
	err  error
}

func sharedPool(t testing.TB) (*warmpool.Pool, executor.Executor) {
	t.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "warmpool-test-")
		if shared.err == nil {
			shared.pool, shared.exe, shared.err = newPool(shared.dir)
		}
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.pool, shared.exe
}

// startPool starts a pool for the bundled runner in a data dir of the
// test's, closed with the test.
func startPool(t testing.TB, env ...string) (*warmpool.Pool, executor.Executor) {
	t.Helper()
	pool, exe, err := newPool(t.TempDir(), env...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	return pool, exe
}

func newPool(dir string, env ...string) (*warmpool.Pool, executor.Executor, error) {
	exe, err := executor.Config{Kind: executor.ChooseBundled}.Resolve(dir)
	if err != nil {
		return nil, exe, err
	}
	pool, err := warmpool.Start(context.Background(), warmpool.Config{
		Python: exe.Path, Runner: exe.Script(), DataDir: dir, Logger: testenv.Logger(),
		Env: append(runenv.Kernel(os.Environ(), nil, nil), env...),
	})
	if err != nil {
		return nil, exe, fmt.Errorf("start the warm pool: %w", err)
	}
	exe.Warm = pool
	return pool, exe, nil
}

// notebook writes a notebook of Python cells into dir.
func notebook(t testing.TB, dir string, cells ...string) string {
	t.Helper()
	var cs []map[string]any
	for i, src := range cells {
		cs = append(cs, map[string]any{"cell_type": "code", "execution_count": nil, "id": fmt.Sprint("c", i), "metadata": map[string]any{}, "outputs": []any{}, "source": src})
	}
	b, _ := json.Marshal(map[string]any{"cells": cs, "nbformat": 4, "nbformat_minor": 5,
		"metadata": map[string]any{"kernelspec": map[string]any{"name": "python3", "display_name": "Python 3", "language": "python"}}})
	path := filepath.Join(dir, "nb.ipynb")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// run is one started run: its process and its output as it comes.
type run struct {
	proc   *executor.Process
	lines  chan string // stdout lines
	mu     sync.Mutex
	stderr strings.Builder
	wg     sync.WaitGroup
}

func start(t testing.TB, exe executor.Executor, marker string, cells ...string) *run {
	t.Helper()
	dir := t.TempDir()
	nb := notebook(t, dir, cells...)
	args := exe.Args(executor.Spec{Input: nb, Output: filepath.Join(dir, "out.ipynb"), Cwd: dir, ResultFile: filepath.Join(dir, "result.json")})
	proc, err := executor.StartWith(executor.Launch{Args: args, Dir: dir, Env: runenv.Kernel(os.Environ(), nil, nil), Marker: marker})
	if err != nil {
		t.Fatal(err)
	}
	r := follow(proc)
	t.Cleanup(func() { _ = proc.Stop(0); proc.Cleanup() })
	return r
}

// wait returns the run's stdout, stderr and exit code.
func (r *run) wait(t testing.TB) (string, string, int) {
	t.Helper()
	var out []string
	for l := range r.lines {
		out = append(out, l)
	}
	r.wg.Wait()
	code := r.proc.ExitCode()
	r.proc.Cleanup()
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(out, "\n"), r.stderr.String(), code
}

// line waits for a stdout line with prefix and returns the rest.
func (r *run) line(t testing.TB, prefix string) string {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case l, ok := <-r.lines:
			if !ok {
				_, errs, code := r.wait(t)
				t.Fatalf("run exited %d before printing %q: %s", code, prefix, errs)
			}
			if rest, found := strings.CutPrefix(l, prefix); found {
				return rest
			}
		case <-timeout:
			t.Fatalf("no line %q within a minute", prefix)
		}
	}
}

// runsWarm runs a one-cell notebook and fails unless it ran warm.
func runsWarm(t testing.TB, exe executor.Executor, when string) {
	t.Helper()
	out, errs, code := start(t, exe, "warm."+strings.ReplaceAll(when, " ", "-"), "print('warm', 1 + 1)").wait(t)
	mustWarm(t, errs)
	if code != 0 || !strings.Contains(out, "warm 2") {
		t.Fatalf("%s: exit %d, %q %s", when, code, out, errs)
	}
}

func mustWarm(t testing.TB, stderr string) {
	t.Helper()
	if strings.Contains(stderr, warmpool.ColdNote) {
		t.Fatalf("the run went cold: %s", stderr)
	}
}

func TestWarmRunBehavesAsCold(t *testing.T) {
	_, exe := sharedPool(t)
	cold := exe
	cold.Warm = nil
	probe := "import sys, os\nprint('probe', sys.argv[0], sys.path[0] == os.getcwd(), os.environ['MILLRACE_ATTEMPT_ID'], os.getpgid(0) == os.getpid(), bool(os.environ.get('JPY_PARENT_PID')), 'proc-environ', all(k + b'=' + os.environb[k] in open('/proc/self/environ', 'rb').read().split(b'\\0') for k in (b'MILLRACE_ATTEMPT_ID', b'JPY_PARENT_PID', b'PATH', b'HOME')), open('/proc/self/cmdline', 'rb').read().split(b'\\0')[1:3], 'millrace_zygote' in sys.modules, open('/proc/%d/cmdline' % os.getppid(), 'rb').read().split(b'\\0')[1].split(b'/')[-1].startswith(b'millrace_runner'))"
	got := map[bool]string{}
	for _, warm := range []bool{true, false} {
		e := exe
		if !warm {
			e = cold
		}
		r := start(t, e, "probe.1", "x = 1", "y = x + 1", "print(y)", probe)
		out, errs, code := r.wait(t)
		if code != 0 || !strings.Contains(out, "2") {
			t.Fatalf("warm %v: exit %d, stdout %q, stderr %s", warm, code, out, errs)
		}
		if warm {
			mustWarm(t, errs)
		}
		_, got[warm], _ = strings.Cut(out, "probe ")
	}
	if got[true] != got[false] {
		t.Errorf("the forked kernel sees %q, a cold one %q", got[true], got[false])
	}
	t.Logf("both see %s", got[true])
}

func TestRunsShareNoState(t *testing.T) {
	_, exe := sharedPool(t)
	r := start(t, exe, "share.1", "import json; json.millrace_probe = 1; print('set', json.millrace_probe)")
	if out, errs, code := r.wait(t); code != 0 || !strings.Contains(out, "set 1") {
		t.Fatalf("run 1: exit %d, %q %s", code, out, errs)
	}
	r = start(t, exe, "share.2", "import json; print('probe', hasattr(json, 'millrace_probe'))")
	out, errs, code := r.wait(t)
	mustWarm(t, errs)
	if code != 0 || !strings.Contains(out, "probe False") {
		t.Fatalf("run 2: exit %d, stdout %q, want probe False", code, out)
	}
}

// TestSweepAndStopLeaveNothing: the marker sweep finds the forked runner
// and kernel, and Stop leaves no process of the run's sessions behind.
func TestSweepAndStopLeaveNothing(t *testing.T) {
	pool, exe := sharedPool(t)
	for _, how := range []string{"sweep", "stop"} {
		marker := "sweep-test." + how
		r := start(t, exe, marker, "import os, time\nprint('kernel', os.getpid(), os.getppid(), flush=True)\ntime.sleep(120)")
		f := strings.Fields(r.line(t, "kernel "))
		kernel, _ := strconv.Atoi(f[0])
		runner, _ := strconv.Atoi(f[1])
		marked := executor.Marked(marker)
		if !contains(marked, kernel) || !contains(marked, runner) {
			t.Fatalf("%s: marked %v, want the kernel %d and the runner %d", how, marked, kernel, runner)
		}
		if how == "sweep" {
			executor.KillMarked(marker)
		} else if err := r.proc.Stop(2 * time.Second); err != nil {
			t.Fatal(err)
		}
		select {
		case <-r.proc.Done():
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: the attach process outlived its run", how)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			left := sessionMembers(kernel, runner)
			if len(left) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: processes of the run's sessions left: %v", how, left)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if pool.Zygote() == 0 {
			t.Fatalf("%s: the zygote went away with the run", how)
		}
	}
}

func TestBrokenZygoteFallsBackCold(t *testing.T) {
	pool, exe := startPool(t)
	old := pool.Zygote()
	args := exe.Args(executor.Spec{Input: "in.ipynb", Output: "out.ipynb", Cwd: "."})
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The command line still names the dead zygote: the run goes cold.
	dir := t.TempDir()
	nb := notebook(t, dir, "print('fell', 1 + 1)")
	cold := args[:0:0]
	for i, a := range args {
		if a == "--" {
			cold = append(cold, args[:i+1]...)
			cold = append(cold, exe.Path, exe.Script(), nb, filepath.Join(dir, "out.ipynb"), "--cwd", dir)
			break
		}
	}
	proc, err := executor.StartWith(executor.Launch{Args: cold, Dir: dir, Env: runenv.Kernel(os.Environ(), nil, nil), Marker: "broken.1"})
	if err != nil {
		t.Fatal(err)
	}
	r := &run{proc: proc}
	outb, _ := io.ReadAll(proc.Stdout)
	errb, _ := io.ReadAll(proc.Stderr)
	if code := r.proc.ExitCode(); code != 0 || !strings.Contains(string(outb), "fell 2") || !strings.Contains(string(errb), warmpool.ColdNote) {
		t.Fatalf("a run on the dead zygote: exit %d, stdout %q, stderr %s; want a cold start that ran", code, outb, errb)
	}
	proc.Cleanup()
	// The pool replaces its zygote, and runs are warm again.
	deadline := time.Now().Add(time.Minute)
	for z := pool.Zygote(); z == 0 || z == old; z = pool.Zygote() {
		if time.Now().After(deadline) {
			t.Fatal("the zygote was not replaced within a minute")
		}
		time.Sleep(50 * time.Millisecond)
	}
	runsWarm(t, exe, "after the restart")
}

// TestStoppedZygoteFallsBackColdAndRunsOnce: a zygote that cannot answer
// (stopped here) costs a run a fraction of a second, not its deadline; the
// call it takes up once it runs again never runs the run a second time, and
// meanwhile holds none of the run's descriptors (the run's output would stay
// open after its cold start ended, and this test would hang in wait).
func TestStoppedZygoteFallsBackColdAndRunsOnce(t *testing.T) {
	pool, exe := startPool(t)
	z := pool.Zygote()
	dir := t.TempDir()
	ran := filepath.Join(dir, "ran.txt")
	if err := syscall.Kill(z, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := true
	defer func() {
		if stopped {
			_ = syscall.Kill(z, syscall.SIGCONT)
		}
	}()
	began := time.Now()
	r := start(t, exe, "stopped.1", fmt.Sprintf("open(%q, 'a').write('ran\\n')\nprint('cold', 1 + 1)", ran))
	out, errs, code := r.wait(t)
	took := time.Since(began)
	if code != 0 || !strings.Contains(out, "cold 2") || !strings.Contains(errs, warmpool.ColdNote) || !strings.Contains(errs, "stopped") {
		t.Fatalf("a run on the stopped zygote: exit %d, stdout %q, stderr %s; want a cold start that ran", code, out, errs)
	}
	if took > 30*time.Second {
		t.Fatalf("the run took %v: it waited on the stopped zygote", took)
	}
	_ = syscall.Kill(z, syscall.SIGCONT)
	stopped = false
	// The zygote now takes up the request the run gave up on.
	time.Sleep(3 * time.Second)
	b, err := os.ReadFile(ran)
	if err != nil || string(b) != "ran\n" {
		t.Fatalf("the notebook ran %q (%v); want exactly once", b, err)
	}
	if pool.Zygote() != z {
		t.Fatalf("the zygote was replaced (%d, was %d); a stopped one that runs again serves on", pool.Zygote(), z)
	}
	runsWarm(t, exe, "after SIGCONT")
}

// TestForkedRunWaitsForGo: the zygote's half of "never twice". An attach
// process that gives up (it went cold past its deadline) closes its end
// without saying go; the forked process must then leave without running
// anything and without keeping the run's descriptors. The test speaks the
// attach protocol itself, so that the give-up lands exactly after the
// forked process's answer. Two things keep the run from running: the forked
// process waits for go, and the zygote kills the run's session when its
// attach process leaves; the test fails only when both are gone (tried).
func TestForkedRunWaitsForGo(t *testing.T) {
	_, exe := sharedPool(t)
	dir := t.TempDir()
	ran := filepath.Join(dir, "ran.txt")
	nb := notebook(t, dir, fmt.Sprintf("open(%q, 'a').write('ran\\n')", ran))
	args := exe.Args(executor.Spec{Input: nb, Output: filepath.Join(dir, "out.ipynb"), Cwd: dir})
	sep := slices.Index(args, "--")
	if sep < 1 {
		t.Fatalf("the executor's command line %q has no attach process", args)
	}
	conn, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: args[sep-1], Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Minute))
	answer := func() string {
		b := make([]byte, 4096)
		n, err := conn.Read(b)
		if err != nil {
			t.Fatalf("the zygote's answer: %v", err)
		}
		return string(b[:n])
	}
	if a := answer(); a != "ready" {
		t.Fatalf("the zygote greeted %q, want ready", a)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer outR.Close()
	null, _ := os.Open(os.DevNull)
	cwd, _ := os.Open(dir)
	env := map[string]string{}
	for _, kv := range runenv.Kernel(os.Environ(), nil, nil) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	req, _ := json.Marshal(map[string]any{"argv": args[sep+1:], "env": env, "umask": 0o22, "fds": []int{0, 1, 2}})
	rights := syscall.UnixRights(int(null.Fd()), int(outW.Fd()), int(outW.Fd()), int(cwd.Fd()))
	if _, _, err := conn.WriteMsgUnix(req, rights, nil); err != nil {
		t.Fatal(err)
	}
	null.Close()
	outW.Close()
	cwd.Close()
	forked := answer()
	pid, err := strconv.Atoi(strings.TrimPrefix(forked, "forked "))
	if err != nil {
		t.Fatalf("the zygote answered %q, want forked PID", forked)
	}
	// The window this test is for: R has said it is ready, and the attach
	// process, whose deadline passed just before the zygote's answer came,
	// closes its end on its way to a cold start. (One that closed earlier
	// makes R's own answer fail, which ends R as well.)
	if ok := answer(); ok != fmt.Sprint("ok ", pid) {
		t.Fatalf("the forked process answered %q, want ok %d", ok, pid)
	}
	conn.Close()
	// R's copies of the run's descriptors are its only ones left: EOF here
	// says it closed them, by leaving.
	done := make(chan []byte)
	go func() { b, _ := io.ReadAll(outR); done <- b }()
	select {
	case b := <-done:
		if len(b) != 0 {
			t.Errorf("the forked process wrote %q to the run's output", b)
		}
	case <-time.After(time.Minute):
		t.Fatalf("the forked process %d still holds the run's output a minute after its attach process left", pid)
	}
	if b, err := os.ReadFile(ran); err == nil {
		t.Fatalf("the notebook ran (%q) though its attach process left before saying go", b)
	}
}

// TestLargeWarmImportsStayShared: a forked run copies the zygote's
// writable pages at birth only up to a bound; past it (200 MB of warm
// imports here) each run would hold its own copy of them all, so it shares
// them as a forked process normally does.
func TestLargeWarmImportsStayShared(t *testing.T) {
	site := t.TempDir()
	if err := os.WriteFile(filepath.Join(site, "bigmod.py"), []byte("data = b'\\x01' * (200 << 20)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	exe, err := executor.Config{Kind: executor.ChooseBundled}.Resolve(dir)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := warmpool.Start(context.Background(), warmpool.Config{
		Python: exe.Path, Runner: exe.Script(), DataDir: dir, Logger: testenv.Logger(), WarmImports: []string{"bigmod"},
		Env: append(runenv.Kernel(os.Environ(), nil, nil), "PYTHONPATH="+site),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	exe.Warm = pool
	nb := notebook(t, dir, `import bigmod
for line in open("/proc/self/smaps_rollup"):
    if line.startswith("Private_Dirty:"):
        print("private-kB", line.split()[1])`)
	args := exe.Args(executor.Spec{Input: nb, Output: filepath.Join(dir, "out.ipynb"), Cwd: dir})
	proc, err := executor.StartWith(executor.Launch{Args: args, Dir: dir, Env: append(runenv.Kernel(os.Environ(), nil, nil), "PYTHONPATH="+site), Marker: "big.1"})
	if err != nil {
		t.Fatal(err)
	}
	r := follow(proc)
	t.Cleanup(func() { _ = proc.Stop(0); proc.Cleanup() })
	kb, err := strconv.Atoi(r.line(t, "private-kB "))
	if err != nil {
		t.Fatal(err)
	}
	out, errs, code := r.wait(t)
	mustWarm(t, errs)
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errs)
	}
	if kb > 150<<10 {
		t.Fatalf("the forked kernel holds %d MB of its own: it copied the zygote's 200 MB of warm imports", kb>>10)
	}
}

// TestStaleZygoteIsReplaced: a change in a folder the zygote imports from
// makes it refuse runs (cold) and be replaced.
func TestStaleZygoteIsReplaced(t *testing.T) {
	site := t.TempDir()
	pool, exe := startPool(t, "PYTHONPATH="+site)
	old := pool.Zygote()
	if err := os.WriteFile(filepath.Join(site, "newmod.py"), []byte("x = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	nb := notebook(t, dir, "print('stale', 1 + 1)")
	args := exe.Args(executor.Spec{Input: nb, Output: filepath.Join(dir, "out.ipynb"), Cwd: dir})
	proc, err := executor.StartWith(executor.Launch{Args: args, Dir: dir, Env: append(runenv.Kernel(os.Environ(), nil, nil), "PYTHONPATH="+site), Marker: "stale.1"})
	if err != nil {
		t.Fatal(err)
	}
	outb, _ := io.ReadAll(proc.Stdout)
	errb, _ := io.ReadAll(proc.Stderr)
	if code := proc.ExitCode(); code != 0 || !strings.Contains(string(outb), "stale 2") || !strings.Contains(string(errb), "stale") {
		t.Fatalf("a run on a stale zygote: exit %d, stdout %q, stderr %s; want a cold start that ran", code, outb, errb)
	}
	proc.Cleanup()
	deadline := time.Now().Add(time.Minute)
	for z := pool.Zygote(); z == 0 || z == old; z = pool.Zygote() {
		if time.Now().After(deadline) {
			t.Fatal("the stale zygote was not replaced within a minute")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestForkedRunJoinsItsCgroup: the forked runner and kernel live in the
// run's cgroups (or under its rlimits), where the worker started the
// attach process, so a memory limit holds for them.
func TestForkedRunJoinsItsCgroup(t *testing.T) {
	sup := limits.Detected()
	// What confines the run: its cgroups, or with rlimits its data limit.
	var confinement func(pid int) string
	switch sup.Memory {
	case limits.Cgroup1, limits.Cgroup2:
		confinement = func(pid int) string {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
			return string(b)
		}
	case limits.Rlimit:
		confinement = func(pid int) string {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
			for _, l := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(l, "Max data size") {
					return l
				}
			}
			return ""
		}
	default:
		t.Fatalf("this host enforces no memory limit (%s): run the test where the worker can (cgroups, or rlimits on Linux)", sup.Why)
	}
	grp, err := sup.NewGroup("warmpool-test-"+strconv.Itoa(os.Getpid()), limits.Spec{Memory: 300 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer grp.Close()
	_, exe := sharedPool(t)
	dir := t.TempDir()
	nb := notebook(t, dir, "import os\nprint('kernel', os.getpid(), os.getppid())", "import time; time.sleep(2)", "b = bytearray(400 << 20)\nprint('survived')")
	args := exe.Args(executor.Spec{Input: nb, Output: filepath.Join(dir, "out.ipynb"), Cwd: dir})
	proc, err := executor.StartWith(executor.Launch{Args: args, Dir: dir, Env: runenv.Kernel(os.Environ(), nil, nil), Marker: "cgroup.1", Confiner: grp})
	if err != nil {
		t.Fatal(err)
	}
	r := follow(proc)
	f := strings.Fields(r.line(t, "kernel "))
	kernel, _ := strconv.Atoi(f[0])
	runner, _ := strconv.Atoi(f[1])
	want := confinement(proc.Pid())
	for _, pid := range []int{runner, kernel} {
		if got := confinement(pid); got != want {
			t.Errorf("process %d is confined by\n%s\nwant the attach process's\n%s", pid, got, want)
		}
	}
	out, errs, code := r.wait(t)
	mustWarm(t, errs)
	if code == 0 || strings.Contains(out, "survived") {
		t.Fatalf("a 400 MiB allocation under a 300 MiB limit: exit %d, stdout %q", code, out)
	}
	if sup.Memory != limits.Rlimit && grp.OOMKills() == 0 {
		t.Fatalf("the run failed (exit %d) without an OOM kill in its cgroup", code)
	}
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// sessionMembers lists the live processes whose session is one of sids.
func sessionMembers(sids ...int) []int {
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndex(s, ")")+2:])
		if len(f) < 4 || f[0] == "Z" {
			continue
		}
		sid, _ := strconv.Atoi(f[3])
		if contains(sids, sid) {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(d)))
			out = append(out, pid)
		}
	}
	return out
}

// follow reads a started run's output: stdout line by line (run.line),
// stderr whole.
func follow(proc *executor.Process) *run {
	r := &run{proc: proc, lines: make(chan string, 100)}
	r.wg.Add(2)
	go func() {
		defer r.wg.Done()
		sc := bufio.NewScanner(proc.Stdout)
		for sc.Scan() {
			r.lines <- sc.Text()
		}
		close(r.lines)
	}()
	go func() {
		defer r.wg.Done()
		b, _ := io.ReadAll(proc.Stderr)
		r.mu.Lock()
		r.stderr.Write(b)
		r.mu.Unlock()
	}()
	return r
}
