package proc

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// A running child is alive; killed and not yet reaped (a zombie) it is
// not, nor once reaped; this process is, and pid 0 is never.
func TestAlive(t *testing.T) {
	if !Alive(os.Getpid()) || Alive(0) || Alive(-1) {
		t.Fatalf("Alive(self) = %v, Alive(0) = %v, Alive(-1) = %v", Alive(os.Getpid()), Alive(0), Alive(-1))
	}
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if !Alive(pid) {
		t.Error("a running child is not alive")
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for Alive(pid) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if Alive(pid) {
		t.Error("a killed child not yet reaped (a zombie) is alive")
	}
	_ = cmd.Wait()
	if Alive(pid) {
		t.Error("a reaped child is alive")
	}
}
