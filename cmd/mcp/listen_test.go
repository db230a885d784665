package main

import (
	"testing"

	"millrace/internal/mcpserver"
)

func TestListenAddr(t *testing.T) {
	cases := []struct {
		in       string
		addr     string
		loopback bool
	}{
		{"8080", "127.0.0.1:8080", true},
		{":8080", "127.0.0.1:8080", true},
		{"localhost:0", "localhost:0", true},
		{"[::1]:9000", "[::1]:9000", true},
		{"0.0.0.0:8080", "0.0.0.0:8080", false},
		{"192.168.1.5:80", "192.168.1.5:80", false},
		{"example.com:80", "example.com:80", false},
	}
	for _, c := range cases {
		addr, loopback, err := mcpserver.ListenAddr(c.in)
		if err != nil || addr != c.addr || loopback != c.loopback {
			t.Errorf("mcpserver.ListenAddr(%q) = %q, %v, %v; want %q, %v", c.in, addr, loopback, err, c.addr, c.loopback)
		}
	}
	for _, bad := range []string{"host:", "a:b:c"} {
		if _, _, err := mcpserver.ListenAddr(bad); err == nil {
			t.Errorf("mcpserver.ListenAddr(%q): no error", bad)
		}
	}
}
