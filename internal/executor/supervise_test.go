package executor

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"millrace/internal/portable"
)

// fakeWorkerEnv makes this test binary a worker that starts one process
// tree through Start and waits to be killed (TestWorkerDeathTakesChildren).
const fakeWorkerEnv = "MILLRACE_TEST_FAKE_WORKER"

func TestMain(m *testing.M) {
	if marker := os.Getenv(fakeWorkerEnv); marker != "" {
		os.Exit(fakeWorker(marker))
	}
	os.Exit(m.Run())
}

// treeProg starts a child in the executor's group and one in a session of
// its own (as jupyter_client starts a kernel), then sleeps.
const treeProg = `import subprocess, sys
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
print("ready", flush=True)
import time; time.sleep(600)`

func fakeWorker(marker string) int {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, fakeWorkerEnv+"=") })
	p, err := Start([]string{"/usr/bin/python3", "-c", treeProg}, os.TempDir(), env, marker)
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	if line, err := bufio.NewReader(p.Stdout).ReadString('\n'); err != nil || line != "ready\n" {
		fmt.Println("error", line, err)
		return 1
	}
	fmt.Println(p.Pid(), p.WatchdogPid())
	select {}
}

// waitMarked polls until cond holds for the marked processes or the
// deadline passes, and returns the last list.
func waitMarked(marker string, d time.Duration, cond func([]int) bool) []int {
	deadline := time.Now().Add(d)
	for {
		m := Marked(marker)
		if cond(m) || time.Now().After(deadline) {
			return m
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestWorkerDeathTakesChildren SIGKILLs a worker (this binary as
// fakeWorker) whose executor has a child in its group and one in a new
// session. The executor must die with the worker in both supervisors; the
// portable one's watchdog also kills the whole group and the marked
// process in its own session, and then itself. (Native Linux relies on
// Pdeathsig, which reaches the executor only: there the kernel's own
// parent watch and the next attempt's sweep end the rest.)
func TestWorkerDeathTakesChildren(t *testing.T) {
	marker := "test-" + filepath.Base(t.TempDir())
	t.Cleanup(func() { KillMarked(marker) })
	w := exec.Command(os.Args[0])
	w.Env = append(os.Environ(), fakeWorkerEnv+"="+marker)
	w.Stderr = os.Stderr
	out, err := w.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	var exe, dog int
	if _, serr := fmt.Sscan(line, &exe, &dog); err != nil || serr != nil {
		_ = w.Process.Kill()
		t.Fatalf("fake worker said %q (%v, %v)", line, err, serr)
	}
	if got := waitMarked(marker, 10*time.Second, func(m []int) bool { return len(m) >= 3 }); len(got) < 3 || !slices.Contains(got, exe) {
		_ = w.Process.Kill()
		t.Fatalf("marked processes %v, want the executor %d and its two children", got, exe)
	}
	if portable.Enabled() != (dog != 0) {
		t.Fatalf("watchdog pid %d with the %s supervisor", dog, portable.Name())
	}
	if err := w.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = w.Wait()
	if !portable.Enabled() {
		if left := waitMarked(marker, 10*time.Second, func(m []int) bool { return !slices.Contains(m, exe) }); slices.Contains(left, exe) {
			t.Fatalf("the executor %d outlived its worker (Pdeathsig)", exe)
		}
		return
	}
	if left := waitMarked(marker, 10*time.Second, func(m []int) bool { return len(m) == 0 }); len(left) > 0 {
		t.Fatalf("processes %v outlived their worker (portable watchdog)", left)
	}
	deadline := time.Now().Add(5 * time.Second)
	for alive(dog) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if alive(dog) {
		t.Fatalf("the watchdog %d outlived its work", dog)
	}
}

// alive reports whether pid is a live process (a zombie is not).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := exec.Command("ps", "-o", "stat=", "-p", strconv.Itoa(pid)).Output()
	return err == nil && !strings.HasPrefix(strings.TrimSpace(string(b)), "Z")
}

// TestStopWithoutMarkerLeavesNoWatchdog stops a child started without a
// marker (as the dev service's Temporal server is) and checks that the
// child and its watchdog are gone, and that Stop says nothing went wrong.
func TestStopWithoutMarkerLeavesNoWatchdog(t *testing.T) {
	p, err := StartWith(Launch{Args: []string{"/bin/sleep", "600"}, Env: os.Environ(), DeathSignal: syscall.SIGTERM})
	if err != nil {
		t.Fatal(err)
	}
	dog := p.WatchdogPid()
	if portable.Enabled() != (dog != 0) {
		t.Fatalf("watchdog pid %d with the %s supervisor", dog, portable.Name())
	}
	if err := p.Stop(time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if code := p.ExitCode(); code != 128+int(syscall.SIGTERM) {
		t.Fatalf("exit code %d, want %d (SIGTERM)", code, 128+int(syscall.SIGTERM))
	}
	p.Cleanup()
	deadline := time.Now().Add(5 * time.Second)
	for dog != 0 && alive(dog) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if dog != 0 && alive(dog) {
		t.Fatalf("watchdog %d left after Stop", dog)
	}
}

// TestParsePS checks the portable sweep's reading of ps output: the
// marker counts as a whole environment word only, and self is left out.
func TestParsePS(t *testing.T) {
	out := []byte(`    1 /sbin/init
  200 python3 runner.py MILLRACE_ATTEMPT_ID=job-a.1 PATH=/bin
  201 python3 -m ipykernel PATH=/bin MILLRACE_ATTEMPT_ID=job-a.1
  202 python3 kernel.py MILLRACE_ATTEMPT_ID=job-a.10
  203 sh MILLRACE_ATTEMPT_ID=job-a.1x
  300 worker MILLRACE_ATTEMPT_ID=job-a.1
`)
	got := parsePS(out, "job-a.1", 300)
	if want := []int{200, 201}; !slices.Equal(got, want) {
		t.Fatalf("parsePS = %v, want %v", got, want)
	}
}

// TestBadSupervisorSettingRefusesToStart: a typo in MILLRACE_SUPERVISOR
// must not silently pick a supervisor. The setting is read once per
// process, so a child process of this test binary checks it.
func TestBadSupervisorSettingRefusesToStart(t *testing.T) {
	if os.Getenv(portable.EnvVar) == "bogus" {
		_, err := Start([]string{"/bin/true"}, "", os.Environ(), "")
		if err == nil || !strings.Contains(err.Error(), `MILLRACE_SUPERVISOR="bogus" is not a supervisor`) {
			t.Fatalf("Start with a bad setting: %v", err)
		}
		return
	}
	c := exec.Command(os.Args[0], "-test.run", "^TestBadSupervisorSettingRefusesToStart$", "-test.count=1")
	c.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, portable.EnvVar+"=") })
	c.Env = append(c.Env, portable.EnvVar+"=bogus")
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}
