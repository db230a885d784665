//go:build linux

package limits

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// These tests run detection and the cgroup v2 protocol on made-up trees:
// the cgroup v2 layout (a delegated service cgroup) does not exist on the
// v1/hybrid machine the suite runs on. group_test.go covers the real
// cgroups of the machine.

const hybridMountinfo = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`

const hybridCgroup = `4:memory:/process_api/abc
2:cpu,cpuacct:/
0::/
`

func fakeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		dir := filepath.Dir(p)
		if strings.HasSuffix(name, "/") {
			dir = p
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(name, "/") {
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

func TestDetectHybridV1(t *testing.T) {
	root := fakeTree(t, map[string]string{
		"sys/fs/cgroup/memory/process_api/abc/":    "",
		"sys/fs/cgroup/cpu,cpuacct/":               "",
		"sys/fs/cgroup/unified/cgroup.controllers": "hugetlb\n",
	})
	s := detect(host{cgroup: hybridCgroup, mountinfo: hybridMountinfo, release: "6.18.44-fc", pid: 42, root: root})
	if s.Memory != Cgroup1 || s.CPU != Cgroup1 || s.Why != "" {
		t.Fatalf("got %+v, want cgroup1 for both and no reason", s)
	}
	if want := filepath.Join(root, "sys/fs/cgroup/memory/process_api/abc"); s.memDir != want {
		t.Fatalf("memory dir %s, want %s", s.memDir, want)
	}
	if want := filepath.Join(root, "sys/fs/cgroup/cpu,cpuacct"); s.cpuDir != want {
		t.Fatalf("cpu dir %s, want %s", s.cpuDir, want)
	}
	if left, _ := filepath.Glob(filepath.Join(s.memDir, "millrace-probe-*")); len(left) > 0 {
		t.Fatalf("probe left behind: %v", left)
	}
}

func TestDetectNothingWritable(t *testing.T) {
	root := fakeTree(t, map[string]string{"sys/fs/cgroup/unified/cgroup.controllers": "hugetlb\n"})
	s := detect(host{cgroup: hybridCgroup, mountinfo: hybridMountinfo, release: "6.1.0", pid: 42, root: root})
	if s.Memory != Rlimit || s.CPU != "" {
		t.Fatalf("got %+v, want rlimit memory and no cpu", s)
	}
	for _, want := range []string{"neither the memory nor the cpu controller", "memory: cannot create a cgroup", "cpu: cannot create a cgroup"} {
		if !strings.Contains(s.Why, want) {
			t.Errorf("why %q does not say %q", s.Why, want)
		}
	}
	if _, err := s.NewGroup("x", Spec{CPU: 0.5}); err == nil || !strings.Contains(err.Error(), "cannot create a cgroup") {
		t.Fatalf("cpu_limit without cgroups: %v, want a refusal with the reason", err)
	}
}

const v2Mountinfo = `25 1 0:23 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
`

// fakeKernel makes mkdir and rmdir behave like cgroupfs: a new cgroup
// comes with its interface files, and removing it removes them.
func fakeKernel(t *testing.T) {
	t.Helper()
	mkdir = func(p string, perm os.FileMode) error {
		if err := os.Mkdir(p, perm); err != nil {
			return err
		}
		for _, f := range []string{"cgroup.procs", "cgroup.kill", "cgroup.type", "cgroup.controllers", "cgroup.subtree_control", "memory.max", "memory.swap.max", "memory.events", "memory.peak", "cpu.max"} {
			if err := os.WriteFile(filepath.Join(p, f), nil, 0o644); err != nil {
				return err
			}
		}
		return nil
	}
	rmdir = os.RemoveAll
	t.Cleanup(func() { mkdir, rmdir = os.Mkdir, os.Remove })
}

func v2Tree(t *testing.T, procs string) (root, svc string) {
	root = fakeTree(t, map[string]string{
		"sys/fs/cgroup/system.slice/w.service/cgroup.controllers":     "cpuset cpu io memory pids\n",
		"sys/fs/cgroup/system.slice/w.service/cgroup.subtree_control": "",
		"sys/fs/cgroup/system.slice/w.service/cgroup.procs":           procs,
		"sys/fs/cgroup/system.slice/w.service/cgroup.type":            "domain\n",
	})
	return root, filepath.Join(root, "sys/fs/cgroup/system.slice/w.service")
}

func TestDetectDelegatedV2(t *testing.T) {
	fakeKernel(t)
	root, svc := v2Tree(t, "42\n")
	h := host{cgroup: "0::/system.slice/w.service\n", mountinfo: v2Mountinfo, release: "6.8.0-40-generic", pid: 42, root: root}
	s := detect(h)
	if s.Memory != Cgroup2 || s.CPU != Cgroup2 || s.v2 != svc || s.Why != "" {
		t.Fatalf("got %+v, want cgroup2 for both in %s", s, svc)
	}
	if got := strings.TrimSpace(read(t, filepath.Join(svc, WorkerCgroup, "cgroup.procs"))); got != "42" {
		t.Fatalf("the worker did not move itself into its leaf: cgroup.procs %q", got)
	}
	if got := read(t, filepath.Join(svc, "cgroup.subtree_control")); got != "+memory +cpu" {
		t.Fatalf("subtree_control written %q, want +memory +cpu", got)
	}

	// A second worker in the same process finds itself in the leaf.
	if err := os.WriteFile(filepath.Join(svc, "cgroup.subtree_control"), []byte("cpu memory\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.cgroup = "0::/system.slice/w.service/" + WorkerCgroup + "\n"
	if again := detect(h); again.v2 != svc || again.Memory != Cgroup2 {
		t.Fatalf("second detection %+v, want the same parent %s", again, svc)
	}

	g, err := s.NewGroup("nb-1234.2", Spec{Memory: 100 << 20, CPU: 1.5})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(svc, "millrace-run-nb-1234.2")
	for f, want := range map[string]string{"memory.max": "104857600", "memory.swap.max": "0", "cpu.max": "150000 100000"} {
		if got := read(t, filepath.Join(dir, f)); got != want {
			t.Errorf("%s = %q, want %q", f, got, want)
		}
	}
	if notes := g.Notes(); len(notes) < 2 || !strings.Contains(notes[0], "cgroup v2 (memory.max, swap included)") || !strings.Contains(notes[1], "cpu.max 150000 100000") {
		t.Fatalf("notes %q", notes)
	}
	var attr syscall.SysProcAttr
	back, err := g.BeforeFork(&attr)
	if err != nil {
		t.Fatal(err)
	}
	back()
	if !attr.UseCgroupFD || attr.CgroupFD < 0 {
		t.Fatalf("attr %+v: want CLONE_INTO_CGROUP with the run's cgroup", attr)
	}
	os.WriteFile(filepath.Join(dir, "memory.events"), []byte("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "memory.peak"), []byte("104857600\n"), 0o644)
	if n, p := g.OOMKills(), g.Peak(); n != 1 || p != 100<<20 {
		t.Fatalf("OOMKills %d, Peak %d; want 1 and 100 MiB", n, p)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("run cgroup still there: %v", err)
	}
}

func TestDetectV2SharedCgroupIsNotTaken(t *testing.T) {
	fakeKernel(t)
	root, svc := v2Tree(t, "42\n7\n")
	s := detect(host{cgroup: "0::/system.slice/w.service\n", mountinfo: v2Mountinfo, release: "6.8.0", pid: 42, root: root})
	if s.Memory != Rlimit || s.CPU != "" || !strings.Contains(s.Why, "also holds process 7") {
		t.Fatalf("got %+v, want rlimits and a reason naming process 7", s)
	}
	if _, err := os.Stat(filepath.Join(svc, WorkerCgroup)); !os.IsNotExist(err) {
		t.Fatal("the worker moved itself although others share its cgroup")
	}
}

func TestDetectV2OldKernel(t *testing.T) {
	fakeKernel(t)
	root, _ := v2Tree(t, "42\n")
	s := detect(host{cgroup: "0::/system.slice/w.service\n", mountinfo: v2Mountinfo, release: "5.4.0-150-generic", pid: 42, root: root})
	if s.Memory != Rlimit || !strings.Contains(s.Why, "older than 5.7") {
		t.Fatalf("got %+v, want rlimits because of the kernel", s)
	}
}

func TestSweepRemovesOnlyOldEmptyRunCgroups(t *testing.T) {
	parent := t.TempDir()
	for _, d := range []string{"millrace-run-old", "millrace-run-new", "millrace-run-busy", "other"} {
		os.Mkdir(filepath.Join(parent, d), 0o755)
	}
	os.WriteFile(filepath.Join(parent, "millrace-run-busy", "cgroup.procs"), []byte("1\n"), 0o644) // not empty: rmdir fails
	old := time.Now().Add(-time.Hour)
	for _, d := range []string{"millrace-run-old", "millrace-run-busy", "other"} {
		os.Chtimes(filepath.Join(parent, d), old, old)
	}
	if n := (Support{memDir: parent}).Sweep(time.Minute); n != 1 {
		t.Fatalf("swept %d, want 1", n)
	}
	for d, want := range map[string]bool{"millrace-run-old": false, "millrace-run-new": true, "millrace-run-busy": true, "other": true} {
		if _, err := os.Stat(filepath.Join(parent, d)); (err == nil) != want {
			t.Errorf("%s exists=%v, want %v", d, err == nil, want)
		}
	}
}

func TestMountDir(t *testing.T) {
	// A container sees only its part of the hierarchy, mounted at the top.
	m := mount{root: "/docker/abc", point: "/sys/fs/cgroup/memory"}
	if d, ok := m.dir("", "/docker/abc/sub"); !ok || d != "/sys/fs/cgroup/memory/sub" {
		t.Fatalf("got %s %v", d, ok)
	}
	if _, ok := m.dir("", "/docker/abcdef"); ok {
		t.Fatal("a sibling cgroup mapped into the mount")
	}
	if got := unescape(`/sys/fs/cgroup/a\040b`); got != "/sys/fs/cgroup/a b" {
		t.Fatalf("unescape: %q", got)
	}
}

func TestKernelAtLeast(t *testing.T) {
	for rel, want := range map[string]bool{"5.7.0": true, "5.6.19": false, "6.18.44-fc-v782": true, "4.19": false, "5.10-rc1": true, "junk": false} {
		if got := kernelAtLeast(rel, 5, 7); got != want {
			t.Errorf("kernelAtLeast(%q, 5, 7) = %v", rel, got)
		}
	}
}

func TestChecks(t *testing.T) {
	for c, ok := range map[float64]bool{0: true, 0.5: true, 2: true, 1024: true, -1: false, 0.001: false, 1025: false} {
		if err := CheckCPU(c); (err == nil) != ok {
			t.Errorf("CheckCPU(%v) = %v", c, err)
		}
	}
	nan := 0.0
	if err := CheckCPU(nan / nan); err == nil {
		t.Error("CheckCPU(NaN) accepted")
	}
	for b, ok := range map[int64]bool{0: true, MinMemory: true, 4 << 30: true, -1: false, MinMemory - 1: false} {
		if err := CheckMemory(b); (err == nil) != ok {
			t.Errorf("CheckMemory(%d) = %v", b, err)
		}
	}
	if q := cpuQuota(0.5); q != 50000 {
		t.Errorf("cpuQuota(0.5) = %d", q)
	}
	if got := cgroupName("batch-1/node a." + strconv.Itoa(3)); got != "batch-1_node_a.3" {
		t.Errorf("cgroupName: %q", got)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDetectHybridTracksRunsInV2: on a hybrid host the unified hierarchy
// has no controllers, yet a cgroup made in it holds a run's processes for
// cgroup.kill; a kernel before 5.14 has no cgroup.kill, so runs then go
// to v1 cgroups without limits.
func TestDetectHybridTracksRunsInV2(t *testing.T) {
	root := fakeTree(t, map[string]string{
		"sys/fs/cgroup/memory/process_api/abc/":    "",
		"sys/fs/cgroup/cpu,cpuacct/":               "",
		"sys/fs/cgroup/unified/cgroup.controllers": "",
	})
	s := detect(host{cgroup: hybridCgroup, mountinfo: hybridMountinfo, release: "6.18.44-fc", pid: 42, root: root})
	if want := filepath.Join(root, "sys/fs/cgroup/unified"); s.track != want || !s.Isolates() || s.Unisolated() != "" {
		t.Fatalf("track %q, want %s", s.track, want)
	}
	old := detect(host{cgroup: hybridCgroup, mountinfo: hybridMountinfo, release: "5.10.0", pid: 42, root: root})
	if old.track != "" || !old.Isolates() {
		t.Fatalf("kernel 5.10: track %q, isolates %v; want v1 cgroups only", old.track, old.Isolates())
	}
	none := Support{Memory: Rlimit, Why: "memory: not writable"}
	if none.Isolates() || !strings.Contains(none.Unisolated(), "memory: not writable") {
		t.Fatalf("no cgroups: isolates %v, warning %q", none.Isolates(), none.Unisolated())
	}
}
