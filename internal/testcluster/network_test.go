//go:build linux

package testcluster_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"millrace/internal/testcluster"
	"millrace/internal/testenv"
)

// TestNetwork checks that hosts reach each other through the bridge, that
// a cut host reaches nobody and is reached by nobody until it heals, and
// that a client dials from the host it names.
func TestNetwork(t *testing.T) {
	n := testcluster.NewNetwork(t)
	a, b := n.AddHost("a"), n.AddHost("b")
	ln := listen(t, b)
	dial := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c, err := a.DialContext(ctx, "tcp", ln.Addr().String())
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial(); err != nil {
		t.Fatalf("a to b: %v", err)
	}
	// This machine's own namespace has no route to the hosts.
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Errorf("dialled %s from this machine's namespace, want no route", ln.Addr())
	}
	a.Cut(t)
	if err := dial(); err == nil {
		t.Fatal("a reached b while cut off")
	}
	a.Heal(t)
	// The link takes a moment to come up, and a to find b again (ARP).
	testenv.Eventually(t, 10*time.Second, "a to reach b after healing", func() bool { return dial() == nil })
	out, err := b.Command("ip", "-o", "addr", "show").CombinedOutput()
	if err != nil || !strings.Contains(string(out), b.Addr+"/24") {
		t.Errorf("b's addresses: %v\n%s; want %s/24", err, out, b.Addr)
	}
}

// listen listens on host h, port 0, and accepts (and closes) connections
// until the test ends.
func listen(t *testing.T, h *testcluster.Host) net.Listener {
	t.Helper()
	ln, err := testcluster.ListenIn(h.NS, h.Addr+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln
}
