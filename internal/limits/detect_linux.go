//go:build linux

package limits

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"millrace/internal/portable"
)

// Detect finds what this process may use to enforce limits. It probes by
// creating and removing a cgroup; use Detected rather than calling it twice.
//
// With the portable supervisor it looks for no cgroups (and moves nothing),
// as on macOS: memory is limited by RLIMIT_DATA, CPU not at all. Not by
// RLIMIT_AS, which counts address space reserved and never used: a kernel
// that had imported numpy measured 866 MiB of it for 279 MiB of data and
// 83 MiB resident, so any useful limit would fail it at start.
func Detect() Support {
	if portable.Enabled() {
		return Support{Memory: Rlimit, Why: "the portable supervisor (" + portable.EnvVar + "=" + portable.Portable + ") uses no cgroups"}
	}
	cg, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return Support{Memory: Rlimit, Why: fmt.Sprintf("cannot read /proc/self/cgroup: %v", err)}
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return Support{Memory: Rlimit, Why: fmt.Sprintf("cannot read /proc/self/mountinfo: %v", err)}
	}
	var u syscall.Utsname
	_ = syscall.Uname(&u)
	return detect(host{cgroup: string(cg), mountinfo: string(mi), release: utsString(u.Release[:]), pid: os.Getpid()})
}

// host is what detection reads about this process. root prefixes every
// path, so tests can run detection on a made-up cgroup tree.
type host struct {
	cgroup, mountinfo string // contents of /proc/self/cgroup and /proc/self/mountinfo
	release           string // kernel release (uname -r)
	pid               int
	root              string
}

func detect(h host) Support {
	s := Support{Memory: Rlimit}
	var why []string
	if dir, ok := h.v2Dir(); ok {
		parent, ctrls, err := delegateV2(h, dir)
		switch {
		case err != nil:
			why = append(why, fmt.Sprintf("cgroup v2 at %s: %v", dir, err))
		default:
			s.v2 = parent
			if slices.Contains(ctrls, "memory") {
				s.Memory = Cgroup2
			}
			if slices.Contains(ctrls, "cpu") {
				s.CPU = Cgroup2
			}
		}
	}
	if s.Memory == Rlimit {
		if dir, err := h.v1Dir("memory"); err != nil {
			why = append(why, "memory: "+err.Error())
		} else {
			s.Memory, s.memDir = Cgroup1, dir
		}
	}
	if s.CPU == "" {
		if dir, err := h.v1Dir("cpu"); err != nil {
			why = append(why, "cpu: "+err.Error())
		} else {
			s.CPU, s.cpuDir = Cgroup1, dir
		}
	}
	if s.Memory != Rlimit && s.CPU != "" {
		why = nil // the v2 attempt's failure does not matter when v1 does both
	}
	s.track = h.trackDir(s.v2)
	s.Why = strings.Join(why, "; ")
	return s
}

// trackDir is where runs get a cgroup v2 of their own without limits:
// v2, when limits use v2 already; else this process's v2 cgroup when the
// kernel has cgroup.kill (5.14) and a cgroup can be made in it.
func (h host) trackDir(v2 string) string {
	if v2 != "" {
		return v2
	}
	dir, ok := h.v2Dir()
	if !ok || !kernelAtLeast(h.release, 5, 14) || probe(dir, h.pid, "") != nil {
		return ""
	}
	return dir
}

// v2Dir is this process's cgroup v2 directory, when the unified hierarchy
// is mounted.
func (h host) v2Dir() (string, bool) {
	var path string
	found := false
	for _, line := range strings.Split(h.cgroup, "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			path, found = p, true
		}
	}
	if !found {
		return "", false
	}
	m, ok := h.mount(func(m mount) bool { return m.fstype == "cgroup2" })
	if !ok {
		return "", false
	}
	return m.dir(h.root, path)
}

// v1Dir is this process's directory in the cgroup v1 hierarchy of ctrl,
// checked writable by creating and removing a probe cgroup there.
func (h host) v1Dir(ctrl string) (string, error) {
	var path string
	found := false
	for _, line := range strings.Split(h.cgroup, "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && slices.Contains(strings.Split(parts[1], ","), ctrl) {
			path, found = parts[2], true
		}
	}
	if !found {
		return "", errors.New("no cgroup v1 hierarchy with this controller")
	}
	m, ok := h.mount(func(m mount) bool { return m.fstype == "cgroup" && slices.Contains(m.options, ctrl) })
	if !ok {
		return "", errors.New("its cgroup v1 hierarchy is not mounted here")
	}
	dir, ok := m.dir(h.root, path)
	if !ok {
		return "", fmt.Errorf("this process's cgroup %s is outside the mounted part of the hierarchy", path)
	}
	if err := probe(dir, h.pid, ""); err != nil {
		return "", err
	}
	return dir, nil
}

// delegateV2 makes dir able to hold run cgroups with the memory and cpu
// controllers, and returns the directory to create them in with the
// controllers they get.
func delegateV2(h host, dir string) (string, []string, error) {
	if !kernelAtLeast(h.release, 5, 7) {
		return "", nil, fmt.Errorf("kernel %s is older than 5.7, which cannot start a process inside a cgroup (CLONE_INTO_CGROUP)", h.release)
	}
	// A second worker in this process finds itself already moved.
	if filepath.Base(dir) == WorkerCgroup {
		parent := filepath.Dir(dir)
		if ctrls := wanted(readWords(filepath.Join(parent, "cgroup.subtree_control"))); len(ctrls) > 0 {
			return parent, ctrls, nil
		}
	}
	ctrls := wanted(readWords(filepath.Join(dir, "cgroup.controllers")))
	if len(ctrls) == 0 {
		return "", nil, errors.New("neither the memory nor the cpu controller is available to this cgroup")
	}
	enabled := wanted(readWords(filepath.Join(dir, "cgroup.subtree_control")))
	_, err := os.Stat(filepath.Join(dir, "cgroup.type"))
	root := errors.Is(err, os.ErrNotExist) // the root cgroup may hold processes and children alike
	if !root || len(enabled) < len(ctrls) {
		if !root {
			if err := moveSelf(h, dir); err != nil {
				return "", nil, err
			}
		}
		if err := writeFile(filepath.Join(dir, "cgroup.subtree_control"), "+"+strings.Join(ctrls, " +")); err != nil {
			return "", nil, fmt.Errorf("cannot enable %s for child cgroups: %v", strings.Join(ctrls, " and "), err)
		}
	}
	if err := probe(dir, h.pid, ctrls[0]); err != nil {
		return "", nil, err
	}
	return dir, ctrls, nil
}

// moveSelf moves this process into dir/WorkerCgroup, when it is alone in
// dir: moving others would change limits someone else set up.
func moveSelf(h host, dir string) error {
	for _, f := range readWords(filepath.Join(dir, "cgroup.procs")) {
		if pid, _ := strconv.Atoi(f); pid != h.pid {
			return fmt.Errorf("it also holds process %s, not started by this worker; run the worker in a cgroup of its own (systemd: Delegate=yes)", f)
		}
	}
	leaf := filepath.Join(dir, WorkerCgroup)
	if err := mkdir(leaf, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("not writable: %v", err)
	}
	if err := writeFile(filepath.Join(leaf, "cgroup.procs"), strconv.Itoa(h.pid)); err != nil {
		_ = rmdir(leaf)
		return fmt.Errorf("cannot move the worker into %s: %v", leaf, err)
	}
	return nil
}

// probe creates and removes a cgroup in dir; with ctrl set, it also checks
// that the child got that controller's files.
func probe(dir string, pid int, ctrl string) error {
	p := filepath.Join(dir, fmt.Sprintf("millrace-probe-%d", pid))
	if err := mkdir(p, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("cannot create a cgroup in %s: %v", dir, err)
	}
	defer rmdir(p)
	if ctrl != "" {
		if _, err := os.Stat(filepath.Join(p, ctrl+".max")); err != nil {
			return fmt.Errorf("a cgroup created in %s has no %s.max", dir, ctrl)
		}
	}
	return nil
}

// wanted keeps the controllers limits uses, in a fixed order.
func wanted(words []string) []string {
	var out []string
	for _, c := range []string{"memory", "cpu"} {
		if slices.Contains(words, c) {
			out = append(out, c)
		}
	}
	return out
}

// mount is one line of /proc/self/mountinfo.
type mount struct {
	root, point, fstype string
	options             []string // super options: a v1 hierarchy lists its controllers here
}

func (h host) mount(match func(mount) bool) (mount, bool) {
	for _, line := range strings.Split(h.mountinfo, "\n") {
		f := strings.Fields(line)
		sep := slices.Index(f, "-")
		if sep < 5 || len(f) < sep+4 {
			continue
		}
		m := mount{root: unescape(f[3]), point: unescape(f[4]), fstype: f[sep+1], options: strings.Split(f[sep+3], ",")}
		if match(m) {
			return m, true
		}
	}
	return mount{}, false
}

// dir maps a cgroup path (as /proc/self/cgroup gives it) to a directory
// under this mount, which may show only part of the hierarchy.
func (m mount) dir(root, path string) (string, bool) {
	rel, ok := strings.CutPrefix(path, m.root)
	if !ok || (rel != "" && !strings.HasPrefix(rel, "/") && m.root != "/") {
		return "", false
	}
	return filepath.Join(root, m.point, rel), true
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// kernelAtLeast compares a release string like "6.18.44-fc" with major.minor.
func kernelAtLeast(release string, major, minor int) bool {
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return false
	}
	digits := parts[1]
	if i := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		digits = digits[:i]
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(digits)
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

func utsString(b []int8) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		out = append(out, byte(c))
	}
	return string(out)
}
