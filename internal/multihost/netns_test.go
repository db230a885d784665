//go:build linux

package multihost_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"go.temporal.io/sdk/client"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"

	"millrace/internal/connect"
)

// link is two network namespaces joined by a veth pair: host a at
// addrA, host b at addrB.
type link struct {
	nsA, nsB     string // namespace names
	vethA, vethB string // the pair's ends, in nsA and nsB
	addrA, addrB string
}

// newLink makes the two namespaces with loopback up (kernels talk to
// their runner over it) and the pair between them on a private /30 that
// no interface of this host uses. They are removed when the test ends,
// after the processes still inside them are killed.
func newLink(t *testing.T) *link {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test makes network namespaces: run it as root (CI does)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("this test needs iproute2's ip: apt-get install iproute2")
	}
	pid := os.Getpid()
	l := &link{
		nsA: fmt.Sprintf("mr-%d-a", pid), nsB: fmt.Sprintf("mr-%d-b", pid),
		vethA: fmt.Sprintf("mr%da", pid), vethB: fmt.Sprintf("mr%db", pid),
	}
	subnet := freeSubnet(t, pid)
	l.addrA, l.addrB = subnet+".1", subnet+".2"
	t.Cleanup(func() {
		for _, ns := range []string{l.nsA, l.nsB} {
			out, _ := exec.Command("ip", "netns", "pids", ns).Output()
			for _, p := range strings.Fields(string(out)) {
				_ = exec.Command("kill", "-KILL", p).Run()
			}
			// Deleting a namespace deletes the veth end inside it, and
			// with it the pair.
			_ = exec.Command("ip", "netns", "del", ns).Run()
		}
		_ = exec.Command("ip", "link", "del", l.vethA).Run()
	})
	ip(t, "netns", "add", l.nsA)
	ip(t, "netns", "add", l.nsB)
	ip(t, "link", "add", l.vethA, "type", "veth", "peer", "name", l.vethB)
	ip(t, "link", "set", l.vethA, "netns", l.nsA)
	ip(t, "link", "set", l.vethB, "netns", l.nsB)
	for _, end := range []struct{ ns, dev, addr string }{{l.nsA, l.vethA, l.addrA}, {l.nsB, l.vethB, l.addrB}} {
		ip(t, "-n", end.ns, "link", "set", "lo", "up")
		ip(t, "-n", end.ns, "addr", "add", end.addr+"/30", "dev", end.dev)
		ip(t, "-n", end.ns, "link", "set", end.dev, "up")
	}
	return l
}

// freeSubnet picks 10.213.N.0/30 (N from the pid, then the next ones)
// that no address or route of this host's namespace overlaps.
func freeSubnet(t *testing.T, pid int) string {
	t.Helper()
	addrs, err := exec.Command("ip", "-o", "addr").Output()
	if err != nil {
		t.Fatalf("ip -o addr: %v", err)
	}
	routes, err := exec.Command("ip", "route", "show", "table", "all").Output()
	if err != nil {
		t.Fatalf("ip route: %v", err)
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
	for i := range 256 {
		subnet := fmt.Sprintf("10.213.%d", (pid+i)%256)
		_, mine, _ := net.ParseCIDR(subnet + ".0/30")
		free := true
		for _, n := range used {
			if n.Contains(mine.IP) || mine.Contains(n.IP) {
				free = false
			}
		}
		if free {
			return subnet
		}
	}
	t.Fatal("every 10.213.N.0/30 is in use on this host")
	return ""
}

// cut takes host a off the link; heal puts it back.
func (l *link) cut(t *testing.T)  { t.Helper(); ip(t, "-n", l.nsA, "link", "set", l.vethA, "down") }
func (l *link) heal(t *testing.T) { t.Helper(); ip(t, "-n", l.nsA, "link", "set", l.vethA, "up") }

// command runs name in namespace ns.
func command(ns, name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

func ip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// inNamespace makes a client open its connections inside namespace ns,
// as a client on that host would: the socket is made on a thread that
// entered ns for just that call, and stays in ns. The test's other
// threads never leave its own namespace.
func inNamespace(ns string) connect.Option {
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		target, err := os.Open("/run/netns/" + ns)
		if err != nil {
			return nil, err
		}
		defer target.Close()
		runtime.LockOSThread()
		home, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			return nil, err
		}
		defer home.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			return nil, fmt.Errorf("enter network namespace %s: %w", ns, err)
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if herr := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); herr != nil {
			// The thread stays locked, so it ends with this goroutine
			// instead of running other code in ns.
			if conn != nil {
				conn.Close()
			}
			return nil, fmt.Errorf("leave network namespace %s: %w", ns, herr)
		}
		runtime.UnlockOSThread()
		return conn, err
	}
	return func(o *client.Options) {
		o.ConnectionOptions.DialOptions = append(o.ConnectionOptions.DialOptions, grpc.WithContextDialer(dial))
	}
}
