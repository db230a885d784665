package main

import (
	"os"
	"strconv"
	"strings"
)

// ephemeralLow is the first port of the kernel's ephemeral range, from
// /proc/sys/net/ipv4/ip_local_port_range (Linux's default 32768 when it
// cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 32768
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return lo
}
