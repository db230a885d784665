package main

import (
	"os/exec"
	"syscall"
)

// dieWithTest has cmd sent SIGTERM when the test process dies (runuser
// passes it on to postgres, which shuts down).
func dieWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
