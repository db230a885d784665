package executor

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"millrace/internal/portable"
)

// Marked lists the pids of processes whose environment carries MarkerEnv set
// to marker. It sees only this machine and processes this user may inspect:
// enough for the kernels a worker started. On Linux it reads /proc; with the
// portable supervisor it asks ps (markedPS).
func Marked(marker string) []int {
	if marker == "" {
		return nil
	}
	if portable.Enabled() {
		return markedPS(marker)
	}
	return markedNative(marker)
}

// KillMarked sends SIGKILL to every process carrying the marker, and to its
// process group (a kernel leads a session of its own and may have children).
func KillMarked(marker string) int { return killMarked(marker, 0) }

// killMarked is KillMarked sparing the process group spare from a group
// kill: the watchdog's own, which it kills last.
func killMarked(marker string, spare int) int {
	pids := Marked(marker)
	for _, pid := range pids {
		if pgid, err := syscall.Getpgid(pid); err == nil && pgid == pid && pgid != spare {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	return len(pids)
}

// psArgs makes ps print every process as "pid command env...", with no
// width limit: macOS's ps shows the environment with -E, procps's (Linux)
// with the BSD-style e.
func psArgs() []string {
	if runtime.GOOS == "linux" {
		return []string{"axeww", "-o", "pid=,args="}
	}
	return []string{"-A", "-E", "-ww", "-o", "pid=,command="}
}

// markedPS finds marked processes in ps's output. Environment entries are
// separated by spaces there, so the marker counts only as a whole word
// " MILLRACE_ATTEMPT_ID=<marker>": markers are job ids and attempt numbers,
// which hold no spaces. A process that puts that word in its arguments is
// taken as marked too; it can only be one this user may signal.
func markedPS(marker string) []int {
	ps, err := exec.LookPath("ps")
	if err != nil {
		ps = "/bin/ps"
	}
	out, err := exec.Command(ps, psArgs()...).Output()
	if err != nil && len(out) == 0 {
		return nil
	}
	return parsePS(out, marker, os.Getpid())
}

// parsePS picks the marked pids out of ps output, leaving out self.
func parsePS(out []byte, marker string, self int) []int {
	want := " " + MarkerEnv + "=" + marker
	var pids []int
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := strings.TrimLeft(sc.Text(), " ")
		num, rest, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(num)
		if err != nil || pid == self {
			continue
		}
		rest = " " + rest + " "
		if strings.Contains(rest, want+" ") {
			pids = append(pids, pid)
		}
	}
	return pids
}
