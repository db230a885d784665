//go:build !linux

package main

import "os/exec"

// dieWithTest does nothing: only Linux has Pdeathsig. A test killed before
// its cleanup leaves its PostgreSQL running (in a millrace-pg-* temp dir).
func dieWithTest(*exec.Cmd) {}
