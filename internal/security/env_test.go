package security_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"
	"go.temporal.io/api/workflowservice/v1"

	"millrace/internal/failure"
	"millrace/internal/jobs"
	"millrace/internal/runopts"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// TestEnvKernelSeesNoServiceSecrets runs the real millrace-worker binary
// with millrace's, Temporal's and a cloud provider's secrets in its
// environment, and a notebook that prints its whole environment: none of
// them reaches the kernel, even one the operator lists in --pass-env.
func TestEnvKernelSeesNoServiceSecrets(t *testing.T) {
	o := attack(t, "a notebook prints the worker's environment to read millrace's and Temporal's secrets (then get_job_logs)")
	cfg := server.Config(t)
	secrets := map[string]string{
		"MILLRACE_MCP_TOKEN":          "mcp-token-" + uuid.NewString(),
		"MILLRACE_NOTIFY_SECRET":      "notify-secret-" + uuid.NewString(),
		"MILLRACE_METRICS_TOKEN":      "metrics-token-" + uuid.NewString(),
		"TEMPORAL_TLS_KEY_PASSPHRASE": "tls-key-" + uuid.NewString(),
		"TEMPORAL_CLOUD_API_KEY":      "api-key-" + uuid.NewString(),
		"AWS_SECRET_ACCESS_KEY":       "aws-" + uuid.NewString(),
	}
	env := append(os.Environ(), "MY_PASSED=passed-ok")
	for k, v := range secrets {
		env = append(env, k+"="+v)
	}
	testenv.StartBinary(t, bin["millrace-worker"], []string{
		"--temporal-address", server.Address, "--namespace", cfg.Namespace, "--task-queue", cfg.TaskQueue,
		"--data-dir", cfg.DataDir, "--executor", "bundled", "--log-level", "info",
		// The operator lists a secret by mistake: it still must not pass.
		"--pass-env", "MY_PASSED,MILLRACE_MCP_TOKEN,TEMPORAL_*",
	}, env, regexp.MustCompile(`worker started`))

	root := t.TempDir()
	svc := server.Service(t, cfg, root)
	testenv.WriteNotebook(t, root, "env.ipynb", "import os\nfor k, v in sorted(os.environ.items()):\n    print('ENV', k, '=', v)")
	started, err := svc.Start(context.Background(), jobs.StartRequest{Path: "env.ipynb", Direct: runopts.Direct{Env: map[string]string{"RUN_VAR": "run-ok"}}})
	if err != nil {
		t.Fatal(err)
	}
	if st := waitEnded(t, svc, started.JobID); st.Status != workflows.StatusSucceeded {
		t.Fatalf("run: %s %+v", st.Status, st.Error)
	}
	logs, err := svc.Logs(context.Background(), jobs.LogsRequest{JobID: started.JobID, Limit: jobs.MaxLogLines})
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	names := 0
	for _, l := range logs.Lines {
		text.WriteString(l.Text + "\n")
		if strings.HasPrefix(l.Text, "ENV ") {
			names++
		}
	}
	got := text.String()
	// The printout works: what should pass does.
	for _, want := range []string{"ENV MY_PASSED = passed-ok", "ENV RUN_VAR = run-ok", "ENV PATH = "} {
		if !strings.Contains(got, want) {
			t.Errorf("the notebook's environment lacks %q:\n%s", want, got)
		}
	}
	for k, v := range secrets {
		if strings.Contains(got, v) || strings.Contains(got, "ENV "+k+" ") {
			t.Errorf("the notebook saw %s", k)
		}
	}
	o.saw("the kernel saw %d variables, none of the 6 secrets (2 listed in --pass-env); MY_PASSED and the run's env did pass", names)
}

// TestEnvLoaderAndServiceNamesRefused: a run env that sets LD_PRELOAD or
// a MILLRACE_ variable is refused at start by the job service, and when
// forged straight into a workflow input, by the worker.
func TestEnvLoaderAndServiceNamesRefused(t *testing.T) {
	o := attack(t, "set LD_PRELOAD, MILLRACE_* or a NAME=VALUE name in a run's env (start_notebook, and a forged workflow input)")
	cfg := server.Config(t)
	server.StartWorker(t, cfg)
	root := t.TempDir()
	svc := server.Service(t, cfg, root)
	nb := testenv.WriteNotebook(t, root, "nb.ipynb", `open("ran.txt", "w").write("x")`)
	ctx := context.Background()
	bad := []map[string]string{
		{"LD_PRELOAD": "/tmp/evil.so"}, {"LD_LIBRARY_PATH": "/tmp"}, {"MILLRACE_ATTEMPT_ID": "other"},
		{"MILLRACE_X": "1"}, {"TEMPORAL_ADDRESS": "evil:7233"}, {"PYTHONSTARTUP": "/tmp/x.py"}, {"A=B": "1"}, {"A\x00B": "1"},
	}
	for _, env := range bad {
		_, err := svc.Start(ctx, jobs.StartRequest{Path: "nb.ipynb", Direct: runopts.Direct{Env: env}})
		if err == nil || !jobs.IsUserError(err) {
			t.Errorf("start with env %q: %v; want a user error", keys(env), err)
		}
	}
	count, err := server.Client.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: cfg.Namespace, Query: fmt.Sprintf("TaskQueue = '%s'", cfg.TaskQueue)})
	if err != nil || count.GetCount() != 0 {
		t.Errorf("%d workflows started by refused starts (%v)", count.GetCount(), err)
	}
	var refusals []string
	for _, env := range bad[:5] {
		id := workflows.RunIDPrefix + uuid.NewString()
		run, err := server.Client.ExecuteWorkflow(ctx, clientOptions(id, cfg.TaskQueue), workflows.NotebookRunWorkflow,
			workflows.RunInput{Notebook: nb, Cwd: root, Output: filepath.Join(root, id+".ipynb"), Env: env, MaxAttempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		err = run.Get(ctx, nil)
		name := keys(env)
		if err == nil || !strings.Contains(err.Error(), "refused by the worker") || !strings.Contains(err.Error(), name) {
			t.Errorf("forged env %s: %v; want the worker's refusal naming it", name, err)
			continue
		}
		refusals = append(refusals, rootCause(err))
	}
	if _, err := os.Stat(filepath.Join(root, "ran.txt")); err == nil {
		t.Error("a refused run executed its notebook")
	}
	if len(refusals) > 0 {
		o.saw("8 env names refused at start, no workflow started; %d forged inputs failed %s at the worker, e.g. %q", len(refusals), failure.TypeBadInput, refusals[0])
	}
}

func keys(m map[string]string) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return strings.Join(ks, ",")
}
