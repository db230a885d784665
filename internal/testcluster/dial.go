//go:build linux

package testcluster

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"

	"go.temporal.io/sdk/client"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"

	"millrace/internal/connect"
)

// DialContext opens a connection from the host, as a client on it would.
func (h *Host) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return DialIn(ctx, h.NS, network, addr)
}

// DialOption makes a Temporal client open its connections from the host.
func (h *Host) DialOption() connect.Option { return InNamespace(h.NS) }

// HTTPClient is an HTTP client whose connections start on the host.
func (h *Host) HTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = h.DialContext
	tr.Proxy = nil
	return &http.Client{Transport: tr}
}

// InNamespace makes a Temporal client open its connections inside network
// namespace ns (its name under /run/netns), as a client on that host
// would.
func InNamespace(ns string) connect.Option {
	dial := func(ctx context.Context, addr string) (net.Conn, error) { return DialIn(ctx, ns, "tcp", addr) }
	return func(o *client.Options) {
		o.ConnectionOptions.DialOptions = append(o.ConnectionOptions.DialOptions, grpc.WithContextDialer(dial))
	}
}

// DialIn dials addr from inside network namespace ns.
func DialIn(ctx context.Context, ns, network, addr string) (net.Conn, error) {
	var conn net.Conn
	var err error
	if werr := within(ns, func() {
		var d net.Dialer
		conn, err = d.DialContext(ctx, network, addr)
	}); werr != nil {
		if conn != nil {
			conn.Close()
		}
		return nil, werr
	}
	return conn, err
}

// ListenIn listens on TCP addr inside network namespace ns, for a test
// that serves something on a host itself.
func ListenIn(ns, addr string) (net.Listener, error) {
	var ln net.Listener
	var err error
	if werr := within(ns, func() { ln, err = net.Listen("tcp", addr) }); werr != nil {
		if ln != nil {
			ln.Close()
		}
		return nil, werr
	}
	return ln, err
}

// within runs f on a thread that entered network namespace ns for just
// that call: a socket f makes stays in ns. The caller's other threads
// never leave their own namespace.
func within(ns string, f func()) error {
	target, err := os.Open("/run/netns/" + ns)
	if err != nil {
		return err
	}
	defer target.Close()
	runtime.LockOSThread()
	home, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer home.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter network namespace %s: %w", ns, err)
	}
	f()
	if err := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread stays locked, so it ends with its goroutine instead
		// of running other code in ns.
		return fmt.Errorf("leave network namespace %s: %w", ns, err)
	}
	runtime.UnlockOSThread()
	return nil
}
