package reliability_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"millrace/internal/failure"
	"millrace/internal/jobs"
	"millrace/internal/runopts"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// TestTimeouts: a run timeout and a per-cell timeout both end TIMED_OUT
// with nothing left running.
func TestTimeouts(t *testing.T) {
	const name = "run timeout and per-cell timeout"
	longOnly(t, name)
	sc := begin(t, name)
	root := t.TempDir()
	nb := testenv.CopyFile(t, "testdata/slow.ipynb", root)
	_, svc := setup(t, root)
	for _, c := range []struct {
		what string
		req  jobs.StartRequest
		typ  failure.Type
	}{
		{"run timeout 6 s", jobs.StartRequest{Path: nb, Options: runopts.Options{Parameters: slowParams(400, 0.25), TimeoutSeconds: 6}}, ""},
		{"cell timeout 3 s", jobs.StartRequest{Path: nb, Options: runopts.Options{Parameters: slowParams(400, 0.25), CellTimeoutSeconds: 3}}, failure.TypeCellTimeout},
	} {
		env, kv := marker()
		c.req.Env = env
		sc.run()
		run, err := svc.Start(context.Background(), c.req)
		if err != nil {
			t.Fatal(err)
		}
		st := waitEnd(t, svc, run.JobID, 2*time.Minute)
		left := leftover(kv)
		sc.orphans(left)
		switch {
		case !st.Ended():
			sc.lost()
			t.Errorf("%s: still %s", c.what, st.Status)
		case st.Status != workflows.StatusTimedOut || c.typ != "" && (st.Error == nil || st.Error.Type != c.typ) || left > 0:
			t.Errorf("%s: %s %+v, %d processes left; want TIMED_OUT %s, none left", c.what, st.Status, st.Error, left, c.typ)
			sc.note("%s: %s", c.what, st.Status)
		default:
			sc.ok()
			sc.note("%s: TIMED_OUT after %.1fs", c.what, st.Duration)
		}
	}
}

// TestKernelDiesEveryTime: a kernel that calls os._exit on every attempt is
// retried per policy (3 attempts), then FAILED with the cause.
func TestKernelDiesEveryTime(t *testing.T) {
	const name = "kernel dies (os._exit) on every attempt"
	longOnly(t, name)
	t.Parallel()
	sc := begin(t, name)
	root := t.TempDir()
	nb := testenv.WriteNotebookFor(t, root, "dies.ipynb", "python3", "print('about to die', flush=True)", "import os\nos._exit(1)")
	_, svc := setup(t, root)
	env, kv := marker()
	sc.run()
	run, err := svc.Start(context.Background(), jobs.StartRequest{Path: nb, Direct: runopts.Direct{Env: env}})
	if err != nil {
		t.Fatal(err)
	}
	st := waitEnd(t, svc, run.JobID, 5*time.Minute)
	left := leftover(kv)
	sc.orphans(left)
	if !st.Ended() {
		sc.lost()
		t.Fatalf("still %s", st.Status)
	}
	if st.Status != workflows.StatusFailed || st.Attempt != st.MaxAttempts || st.Error == nil || st.Error.Type != failure.TypeKernelDied || len(st.Attempts) != st.MaxAttempts {
		t.Fatalf("got %s attempt %d/%d %+v attempts %+v, want FAILED by %s after every attempt", st.Status, st.Attempt, st.MaxAttempts, st.Error, st.Attempts, failure.TypeKernelDied)
	}
	sc.ok()
	sc.note("FAILED after %d/%d attempts in %.0fs: %s: %s", st.Attempt, st.MaxAttempts, st.Duration, st.Error.Type, firstLine(st.Error.Message))
}

// TestKernelHangsAtStart: a kernelspec whose argv sleeps never answers;
// the start timeout (60 s) ends each attempt, retried, then FAILED.
func TestKernelHangsAtStart(t *testing.T) {
	const name = "kernel hangs at start (kernelspec argv sleeps)"
	longOnly(t, name)
	t.Parallel()
	sc := begin(t, name)
	root := t.TempDir()
	nb := testenv.WriteNotebookFor(t, root, "hang.ipynb", "hang", "print('never')")
	jupyter := t.TempDir()
	spec := filepath.Join(jupyter, "kernels", "hang")
	if err := os.MkdirAll(spec, 0o755); err != nil {
		t.Fatal(err)
	}
	k, _ := json.Marshal(map[string]any{"argv": []string{"sleep", "3600"}, "display_name": "hangs", "language": "python"})
	if err := os.WriteFile(filepath.Join(spec, "kernel.json"), k, 0o644); err != nil {
		t.Fatal(err)
	}
	_, svc := setup(t, root)
	env, kv := marker()
	env["JUPYTER_PATH"] = jupyter
	sc.run()
	run, err := svc.Start(context.Background(), jobs.StartRequest{Path: nb, Options: runopts.Options{MaxAttempts: 2}, Direct: runopts.Direct{Env: env}})
	if err != nil {
		t.Fatal(err)
	}
	st := waitEnd(t, svc, run.JobID, 6*time.Minute)
	left := leftover(kv)
	sc.orphans(left)
	if !st.Ended() {
		sc.lost()
		t.Fatalf("still %s", st.Status)
	}
	if st.Status != workflows.StatusFailed || st.Attempt != 2 || st.Error == nil || left > 0 {
		t.Fatalf("got %s attempt %d %+v attempts %+v, %d processes left; want FAILED after 2 attempts, none left", st.Status, st.Attempt, st.Error, st.Attempts, left)
	}
	sc.ok()
	sc.note("max_attempts 2: FAILED after %d attempts in %.0fs: %s: %s", st.Attempt, st.Duration, st.Error.Type, firstLine(st.Error.Message))
}

// TestUnwritableDataDir: when the run's log directory cannot be created
// (runs/ is a file), the run fails with a clear error and its record stays.
func TestUnwritableDataDir(t *testing.T) {
	const name = "unwritable data dir for the logs"
	longOnly(t, name)
	sc := begin(t, name)
	root := t.TempDir()
	nb := testenv.CopyFile(t, "testdata/trivial.ipynb", root)
	cfg, svc := setup(t, root)
	if err := os.WriteFile(filepath.Join(cfg.DataDir, "runs"), []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	env, kv := marker()
	sc.run()
	run, err := svc.Start(context.Background(), jobs.StartRequest{Path: nb, Direct: runopts.Direct{Env: env}})
	if err != nil {
		if jobs.IsUserError(err) || strings.Contains(err.Error(), "runs") {
			sc.ok()
			sc.note("refused at start: %s", firstLine(err.Error()))
			return
		}
		t.Fatal(err)
	}
	st := waitEnd(t, svc, run.JobID, 3*time.Minute)
	sc.orphans(leftover(kv))
	if !st.Ended() {
		sc.lost()
		t.Fatalf("still %s (%+v)", st.Status, st.Attempts)
	}
	l, err := svc.List(context.Background(), jobs.ListRequest{})
	if err != nil || len(l.Jobs) != 1 || l.Jobs[0].JobID != run.JobID {
		sc.lost()
		t.Fatalf("list after: %+v %v, want the run's record", l, err)
	}
	if st.Status != workflows.StatusFailed || st.Error == nil {
		t.Fatalf("got %s %+v, want FAILED with the cause", st.Status, st.Error)
	}
	sc.ok()
	sc.note("FAILED on attempt %d in %.0fs, listed: %s: %s", st.Attempt, st.Duration, st.Error.Type, firstLine(st.Error.Message))
}
