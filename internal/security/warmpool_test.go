package security_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"millrace/internal/executor"
	"millrace/internal/runenv"
	"millrace/internal/testenv"
	"millrace/internal/warmpool"
)

// probeZygote is Python that connects to a zygote's socket (argv[1]) and
// sends a request, then prints what came back: "connect: <error>" when the
// socket cannot be reached, "answer: <text>" otherwise (empty when the
// zygote hung up without a word; "answer error: ..." with a connection
// reset or a broken pipe when it hung up before or after the request was
// sent, unread).
const probeZygote = `
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.settimeout(5)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("connect: %s" % e.strerror)
    sys.exit(0)
req = {"argv": ["/bin/true"], "env": {}, "umask": 18, "fds": []}
try:
    greeting = s.recv(4096).decode()
    if greeting != "ready":
        print("answer: %s" % greeting)
        sys.exit(0)
    socket.send_fds(s, [json.dumps(req).encode()], [0])
    print("answer: %s" % s.recv(4096).decode())
except OSError as e:
    print("answer error: %s" % e)
`

// TestWarmPoolSocketRefusesOtherUsers: a zygote forks runs as the
// worker's user, so whoever could hand it a request would run code as
// that user. Its socket lives in a 0700 folder; and even were that folder
// opened, the zygote checks the caller's uid (SO_PEERCRED) before it reads
// a request.
func TestWarmPoolSocketRefusesOtherUsers(t *testing.T) {
	o := attack(t, "another local user (nobody) connects to a worker's warm-pool zygote socket to have it fork a run as the worker's user")
	// A data dir others may enter, as a user's home often is: only the
	// pool's own folder protects the socket.
	dir, err := os.MkdirTemp("", "millrace-warm-attack-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe, err := executor.Config{Kind: executor.ChooseBundled}.Resolve(dir)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := warmpool.Start(context.Background(), warmpool.Config{
		Python: exe.Path, Runner: exe.Script(), DataDir: dir, Logger: testenv.Logger(),
		Env: runenv.Kernel(os.Environ(), nil, nil),
	})
	if err != nil {
		t.Fatalf("start the warm pool: %v", err)
	}
	t.Cleanup(func() { pool.Close() })
	args := pool.Attach([]string{"cold"})
	sock := ""
	for i, a := range args {
		if a == "--" && i > 0 {
			sock = args[i-1]
		}
	}
	if sock == "" {
		t.Fatalf("no zygote socket in the attach command %q", args)
	}
	probe := func(uid uint32) string {
		cmd := exec.Command(exe.Path, "-I", "-S", "-c", probeZygote, sock)
		cmd.Dir = "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("probe as uid %d: %v\n%s", uid, err, out)
		}
		return strings.TrimSpace(string(out))
	}

	// The owner's control: the zygote reads its request and answers (it
	// refuses a request for another program, and says so).
	if got := probe(uint32(os.Getuid())); !strings.HasPrefix(got, "answer: cold ") {
		t.Fatalf("the owner's probe got %q, want the zygote's answer: the test would prove nothing", got)
	}
	const nobody = 65534
	folder := probe(nobody)
	if !strings.Contains(folder, "connect: Permission denied") {
		t.Errorf("nobody reached the zygote's socket through its folder: %q", folder)
	}

	// Were the folder and the socket opened to everyone, the uid check
	// still hangs up before it greets the caller or reads anything.
	for _, p := range []struct {
		path string
		mode os.FileMode
	}{{filepath.Dir(sock), 0o755}, {sock, 0o777}} {
		if err := os.Chmod(p.path, p.mode); err != nil {
			t.Fatal(err)
		}
	}
	opened := probe(nobody)
	if hungUp := opened == "answer:" || strings.Contains(opened, "Connection reset") || strings.Contains(opened, "Broken pipe"); !hungUp {
		t.Errorf("with its folder opened, the zygote answered nobody: %q", opened)
	}
	if pool.Zygote() == 0 {
		t.Error("the zygote is gone after the probes")
	}
	o.saw("the socket's folder is 0700: connect as nobody got Permission denied; with the folder and socket opened to all, the zygote hung up on nobody without reading the request (the owner's probe got an answer)")
}
