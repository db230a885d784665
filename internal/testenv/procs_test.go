package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"
)

// The process table helpers see a real child by its environment and its
// arguments, tell it alive, and tell it dead once it is a zombie and once
// it is reaped: on Linux through /proc, on macOS through sysctl.
func TestProcessTable(t *testing.T) {
	mark := fmt.Sprintf("MILLRACE_TESTENV_MARK=%d-%d", os.Getpid(), time.Now().UnixNano())
	arg := fmt.Sprintf("%d.%d", 3000+os.Getpid()%1000, time.Now().UnixNano()%1000000) // a unique sleep length
	cmd := exec.Command("sleep", arg)
	cmd.Env = append(os.Environ(), mark)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	defer cmd.Process.Kill()

	deadline := time.Now().Add(10 * time.Second)
	var found []Process
	for time.Now().Before(deadline) {
		if found = ProcessesWithEnv(mark); len(found) > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond) // until exec has replaced the forked Go child
	}
	if len(found) != 1 || found[0].PID != pid || found[0].Cmdline != "sleep "+arg {
		t.Errorf("ProcessesWithEnv = %+v, want pid %d running sleep %s", found, pid, arg)
	}
	if got := ProcessWithArg(arg); got != pid {
		t.Errorf("ProcessWithArg = %d, want %d", got, pid)
	}
	if !Alive(pid) {
		t.Error("a running child is not Alive")
	}
	if mb := MemoryMB(pid, "VmRSS"); mb <= 0 {
		t.Errorf("MemoryMB(VmRSS) = %v for a running process", mb)
	}
	if s := CPUSeconds(pid); s < 0 {
		t.Errorf("CPUSeconds = %v", s)
	}

	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	for time.Now().Before(deadline.Add(10*time.Second)) && Alive(pid) {
		time.Sleep(20 * time.Millisecond)
	}
	if Alive(pid) {
		t.Error("a killed, unreaped child (a zombie) is Alive")
	}
	if got := ProcessesWithEnv(mark); len(got) != 0 {
		t.Errorf("ProcessesWithEnv lists a zombie: %+v", got)
	}
	_ = cmd.Wait()
	if Alive(pid) || ProcessWithArg(arg) != 0 {
		t.Error("a reaped child is still seen")
	}
}
