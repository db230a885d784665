//go:build linux

package testcluster

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// Network is a switch in a namespace of its own (the hub) that hosts join,
// each by a veth pair, on a private /24: 10.213.N.0/24 with N the first
// one, from the pid on, that no address or route of this machine's own
// namespace overlaps, so nothing a test does can reach or shadow this
// machine's networks.
type Network struct {
	t      testing.TB
	id     string // unique to this process: names namespaces and links
	hub    string // the hub namespace, holding the bridge
	bridge string
	subnet string // "10.213.N"

	mu    sync.Mutex
	hosts []*Host
}

// Host is one machine of the network: a network namespace with loopback up
// (kernels talk to their runner over it) and one link to the bridge.
type Host struct {
	Name string
	NS   string // the namespace's name, as `ip netns` knows it
	Addr string // its address on the network
	net  *Network
	dev  string // the host's end of its link, inside NS
}

// NewNetwork makes the hub and its bridge. Everything it and its hosts
// make is removed when t ends, after every process still inside the
// namespaces is killed.
func NewNetwork(t testing.TB) *Network {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("testcluster makes network namespaces and runs PostgreSQL as its own user: run the test as root (CI does)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("testcluster needs iproute2's ip: apt-get install iproute2")
	}
	sweep()
	subnet, err := FreeSubnet()
	if err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("mr%d", os.Getpid())
	n := &Network{t: t, id: id, hub: id + "-hub", bridge: id + "br", subnet: subnet}
	t.Cleanup(n.remove)
	n.ip("netns", "add", n.hub)
	n.ip("-n", n.hub, "link", "add", n.bridge, "type", "bridge")
	n.ip("-n", n.hub, "link", "set", n.bridge, "up")
	return n
}

// Subnet is the network's /24, as "10.213.N.0/24".
func (n *Network) Subnet() string { return n.subnet + ".0/24" }

// AddHost makes a host named name (short: it names a namespace) with the
// next address of the network, joined to the bridge.
func (n *Network) AddHost(name string) *Host {
	n.t.Helper()
	n.mu.Lock()
	i := len(n.hosts) + 1
	h := &Host{Name: name, NS: n.id + "-" + name, Addr: fmt.Sprintf("%s.%d", n.subnet, i), net: n, dev: fmt.Sprintf("%sh%d", n.id, i)}
	n.hosts = append(n.hosts, h)
	n.mu.Unlock()
	if i > 250 {
		n.t.Fatalf("host %s: a network holds at most 250 hosts", name)
	}
	// Interface names hold at most 15 bytes: mr<pid>h<i> and mr<pid>s<i>.
	peer := fmt.Sprintf("%ss%d", n.id, i)
	n.ip("netns", "add", h.NS)
	n.ip("link", "add", h.dev, "type", "veth", "peer", "name", peer)
	n.ip("link", "set", h.dev, "netns", h.NS)
	n.ip("link", "set", peer, "netns", n.hub)
	n.ip("-n", n.hub, "link", "set", peer, "master", n.bridge)
	n.ip("-n", n.hub, "link", "set", peer, "up")
	n.ip("-n", h.NS, "link", "set", "lo", "up")
	n.ip("-n", h.NS, "addr", "add", h.Addr+"/24", "dev", h.dev)
	n.ip("-n", h.NS, "link", "set", h.dev, "up")
	return h
}

// Cut takes the host off the network, as pulling its cable would: its
// link goes down, and what it sends or is sent is lost, with no error
// either side sees at once.
func (h *Host) Cut(t testing.TB) { t.Helper(); ip(t, "-n", h.NS, "link", "set", h.dev, "down") }

// Heal puts the host back on the network.
func (h *Host) Heal(t testing.TB) { t.Helper(); ip(t, "-n", h.NS, "link", "set", h.dev, "up") }

// Command is name run on the host: `ip netns exec`, which execs it, so the
// command's process is name's own and a signal to it reaches name.
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
}

// remove kills every process inside the network's namespaces and deletes
// them; deleting a namespace deletes the link ends inside it, and with
// them the pairs.
func (n *Network) remove() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, h := range n.hosts {
		killAll(h.NS)
		_ = exec.Command("ip", "netns", "del", h.NS).Run()
		// Left in this machine's namespace only when AddHost failed
		// before moving it.
		_ = exec.Command("ip", "link", "del", h.dev).Run()
	}
	killAll(n.hub)
	_ = exec.Command("ip", "netns", "del", n.hub).Run()
}

// owner matches the namespaces and folders a test process made, with its
// pid.
var owner = regexp.MustCompile(`^(?:mr|millrace-pg-)(\d+)-`)

// sweep removes what test processes that are gone left behind: a test
// killed by go test's -timeout runs no cleanup, and its namespaces, the
// processes in them (PostgreSQL, detached by pg_ctl, among them) and
// PostgreSQL's folder would stay.
func sweep() {
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		ns, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		if m := owner.FindStringSubmatch(ns); m != nil && gone(m[1]) {
			killAll(ns)
			_ = exec.Command("ip", "netns", "del", ns).Run()
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "millrace-pg-*"))
	for _, d := range dirs {
		if m := owner.FindStringSubmatch(filepath.Base(d)); m != nil && gone(m[1]) {
			os.RemoveAll(d)
		}
	}
}

// gone reports whether no process has pid.
func gone(pid string) bool {
	_, err := os.Stat("/proc/" + pid)
	return os.IsNotExist(err)
}

// killAll kills every process in namespace ns.
func killAll(ns string) {
	out, _ := exec.Command("ip", "netns", "pids", ns).Output()
	for _, p := range strings.Fields(string(out)) {
		_ = exec.Command("kill", "-KILL", p).Run()
	}
}

func (n *Network) ip(args ...string) { n.t.Helper(); ip(n.t, args...) }

func ip(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// FreeSubnet picks 10.213.N (for 10.213.N.0/24; N from the pid, then the
// next ones) that no address or route of this machine's namespace
// overlaps.
func FreeSubnet() (string, error) {
	addrs, err := exec.Command("ip", "-o", "addr").Output()
	if err != nil {
		return "", fmt.Errorf("ip -o addr: %w", err)
	}
	routes, err := exec.Command("ip", "route", "show", "table", "all").Output()
	if err != nil {
		return "", fmt.Errorf("ip route: %w", err)
	}
	var used []*net.IPNet
	for _, word := range strings.Fields(string(addrs) + " " + string(routes)) {
		if !strings.Contains(word, "/") {
			word += "/32"
		}
		if _, n, err := net.ParseCIDR(word); err == nil && n.IP.To4() != nil {
			used = append(used, n)
		}
	}
	pid := os.Getpid()
	for i := range 256 {
		subnet := fmt.Sprintf("10.213.%d", (pid+i)%256)
		_, mine, _ := net.ParseCIDR(subnet + ".0/24")
		free := true
		for _, n := range used {
			if n.Contains(mine.IP) || mine.Contains(n.IP) {
				free = false
			}
		}
		if free {
			return subnet, nil
		}
	}
	return "", fmt.Errorf("every 10.213.N.0/24 is in use on this machine")
}
