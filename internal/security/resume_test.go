package security_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"millrace/internal/executor/runner"
	"millrace/internal/rundir"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// TestResumeForgedCheckpointPathRefused: a workflow input forged with the
// Temporal client names, as the checkpoint to resume from, a pickle that
// runs a command when loaded: outside the data dir, and inside another
// job's folder under a job id that does not own it. The hash is the
// pickle's own, so only the path rule stands between it and the kernel.
func TestResumeForgedCheckpointPathRefused(t *testing.T) {
	o := attack(t, "forge a workflow input (Temporal client) that resumes from a pickle that runs a command when loaded, outside the data dir or in another job's folder, with that pickle's own sha256")
	cfg := server.Config(t)
	root := t.TempDir()
	wcfg := *cfg
	wcfg.Roots = []string{root}
	server.StartWorker(t, &wcfg)
	nb := testenv.WriteNotebook(t, root, "nb.ipynb", `open("ran.txt", "w").write("x")`)
	marker := filepath.Join(root, "pwned")
	evilPickle := func(path string) string {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		script := `import os, pickle, sys, hashlib
class E:
    def __reduce__(self):
        return (os.system, ("touch " + sys.argv[2],))
b = pickle.dumps(E())
open(sys.argv[1], "wb").write(b)
print(hashlib.sha256(b).hexdigest())`
		out, err := exec.Command(runner.DefaultPython, "-c", script, path, marker).Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out))
	}
	outside := filepath.Join(t.TempDir(), "cell-1.ckpt")
	victim := workflows.RunIDPrefix + uuid.NewString()
	foreign := filepath.Join(rundir.CheckpointsDir(cfg.DataDir, victim, 1), "cell-1.ckpt")
	ctx := context.Background()
	var msgs []string
	for _, c := range []struct {
		what, path, owner, want string
	}{
		{"outside the data dir", outside, victim, "is not a checkpoint of job"},
		{"another job's folder, under a job id that does not own it", foreign, workflows.RunIDPrefix + uuid.NewString(), "is not a checkpoint of job"},
	} {
		sum := evilPickle(c.path)
		in := workflows.RunInput{Notebook: nb, Cwd: root, Output: filepath.Join(root, "o.ipynb"), MaxAttempts: 1,
			Resume: &workflows.Resume{Job: c.owner, FromCell: 1, Checkpoint: workflows.Checkpoint{Cell: 0, Path: c.path, SHA256: sum}}}
		run, err := server.Client.ExecuteWorkflow(ctx, clientOptions(workflows.RunIDPrefix+uuid.NewString(), cfg.TaskQueue), workflows.NotebookRunWorkflow, in)
		if err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		err = run.Get(wctx, nil)
		cancel()
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "cannot resume as asked") {
			t.Errorf("%s: %v; want the run refused saying %q", c.what, err, c.want)
			continue
		}
		msgs = append(msgs, c.what)
	}
	for _, p := range []string{marker, filepath.Join(root, "ran.txt")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s exists: the forged run loaded the pickle or ran the notebook", p)
		}
	}
	o.saw("both forged runs FAILED BadInput before any kernel started (%s: \"cannot resume as asked: not resumed from the checkpoint after cell 0: … is not a checkpoint of job …\"); the pickle's command did not run", strings.Join(msgs, "; "))
}
