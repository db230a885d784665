package reliability_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"millrace/internal/config"
	"millrace/internal/connect"
	"millrace/internal/devmode"
	"millrace/internal/jobs"
	"millrace/internal/nbworker"
	"millrace/internal/paths"
	"millrace/internal/runopts"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// ownServer is an embedded Temporal server this scenario may kill: its own
// process on its own database file and port.
type ownServer struct {
	bin, db string
	port    int
	cmd     *exec.Cmd
}

func (s *ownServer) start(t *testing.T) {
	t.Helper()
	args := devmode.ServerArgs(s.bin, false, "127.0.0.1", s.port, "default", s.db, "")
	s.cmd = exec.Command(args[0], args[1:]...)
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stderr = os.Stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "ready") {
				ready <- true
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("the server exited before it was ready")
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the server was not ready within 2 minutes")
	}
}

func (s *ownServer) kill() {
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	_ = s.cmd.Wait()
}

// TestServerKilledMidRun kills the embedded server with SIGKILL while runs
// execute, restarts it on the same database and port, and expects every
// run to finish and every job to stay listed.
func TestServerKilledMidRun(t *testing.T) {
	const name = "SIGKILL of the embedded server mid-run, then restart"
	longOnly(t, name)
	sc := begin(t, name)
	bin, err := testenv.ServerBin()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &ownServer{bin: bin, db: filepath.Join(t.TempDir(), "temporal.db"), port: l.Addr().(*net.TCPAddr).Port}
	l.Close()
	srv.start(t)
	t.Cleanup(srv.kill)

	root := t.TempDir()
	nb := testenv.CopyFile(t, "testdata/slow.ipynb", root)
	cfg := &config.Config{Address: "127.0.0.1:" + strconv.Itoa(srv.port), Namespace: "default", TaskQueue: "server-kill",
		DataDir: t.TempDir(), MaxRuns: 5, Executor: "bundled", Grace: 3 * time.Second}
	c, err := connect.Dial(context.Background(), cfg, testenv.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w, err := nbworker.Start(c, cfg, testenv.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	roots, _ := paths.NewRoots([]string{root})
	svc := &jobs.Service{Client: c, Namespace: "default", TaskQueue: cfg.TaskQueue, DataDir: cfg.DataDir, Roots: roots}

	const runs = 3
	var ids []string
	var kvs []string
	for i := 0; i < runs; i++ {
		env, kv := marker()
		st, err := svc.Start(context.Background(), jobs.StartRequest{Path: nb, Options: runopts.Options{Parameters: slowParams(40, 0.25)}, Direct: runopts.Direct{Env: env}})
		if err != nil {
			t.Fatal(err)
		}
		ids, kvs = append(ids, st.JobID), append(kvs, kv)
		sc.run()
	}
	for _, id := range ids {
		if _, ok := waitRunning(svc, id, 2, 2*time.Minute); !ok {
			t.Fatalf("%s never ran", id)
		}
	}
	time.Sleep(jitter(2 * time.Second))
	killed := time.Now()
	srv.kill()
	time.Sleep(2 * time.Second) // down for a moment, runs going on
	srv.start(t)
	sc.note("server down %.1fs, restarted on the same file and port", time.Since(killed).Seconds())

	attempts := map[int]int{}
	for i, id := range ids {
		st := waitEnd(t, svc, id, 4*time.Minute)
		if st.Status == workflows.StatusSucceeded {
			sc.ok()
			attempts[st.Attempt]++
		} else if !st.Ended() {
			sc.lost()
		}
		sc.orphans(leftover(kvs[i]))
	}
	list, err := svc.List(context.Background(), jobs.ListRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Jobs) != runs {
		t.Errorf("list_jobs shows %d jobs after the restart, want %d", len(list.Jobs), runs)
		sc.note("list_jobs lost %d", runs-len(list.Jobs))
	}
	sc.note("finished on attempt: %v; list_jobs shows all %d", fmt.Sprint(attempts), len(list.Jobs))
	if sc.row.AsExpected != runs {
		t.Errorf("%d of %d runs succeeded", sc.row.AsExpected, runs)
	}
}
