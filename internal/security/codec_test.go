package security_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"millrace/internal/codec"
	"millrace/internal/config"
	"millrace/internal/connect"
	"millrace/internal/jobs"
	"millrace/internal/nbworker"
	"millrace/internal/paths"
	"millrace/internal/runopts"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// codecJobs is a worker and a job service on the shared server, with the
// client a millrace binary configured by cfg would have.
func codecJobs(t *testing.T, cfg *config.Config, root string) *jobs.Service {
	t.Helper()
	c, err := connect.Dial(context.Background(), cfg, testenv.Logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	dc, err := connect.DataConverter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w, err := nbworker.Start(c, cfg, testenv.Logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	roots, err := paths.NewRoots([]string{root})
	if err != nil {
		t.Fatal(err)
	}
	return &jobs.Service{Client: c, DataConverter: dc, Namespace: cfg.Namespace, TaskQueue: cfg.TaskQueue, DataDir: cfg.DataDir, Roots: roots}
}

// serverFiles reads the shared server's SQLite database and its
// write-ahead log, as a local user who can read them would.
func serverFiles(t *testing.T) []byte {
	t.Helper()
	var all []byte
	for _, f := range []string{"temporal.db", "temporal.db-wal"} {
		b, err := os.ReadFile(filepath.Join(server.Dir, f))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

// codecRun runs the notebook with SECRET=secret and checks the kernel got
// it (the log shows its SHA-256, never the value).
func codecRun(t *testing.T, svc *jobs.Service, nb, secret string) jobs.Status {
	t.Helper()
	ctx := context.Background()
	started, err := svc.Start(ctx, jobs.StartRequest{Path: nb, Options: runopts.Options{MaxAttempts: 1}, Direct: runopts.Direct{Env: map[string]string{"SECRET": secret}}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := svc.WaitEnded(ctx, started.JobID, 2*time.Minute, nil)
	if err != nil || st.Status != workflows.StatusSucceeded {
		t.Fatalf("run: %s %s %v", st.Status, st.Message, err)
	}
	logs, err := svc.Logs(ctx, jobs.LogsRequest{JobID: started.JobID})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(secret))
	found := false
	for _, l := range logs.Lines {
		found = found || strings.Contains(l.Text, hex.EncodeToString(sum[:]))
	}
	if !found {
		t.Fatalf("the kernel did not get SECRET: log %+v", logs.Lines)
	}
	list, err := svc.List(ctx, jobs.ListRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, answer := range []any{st, list, logs} {
		if b, _ := json.Marshal(answer); bytes.Contains(b, []byte(secret)) {
			t.Fatalf("status, list or logs show the env value: %s", b)
		}
	}
	return st
}

func randomSecret(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "sk-" + hex.EncodeToString(b)
}

// TestCodecBinaryWithoutKeyGetsAClearError runs the built binaries on a
// cluster address: a worker and the CLI given MILLRACE_CODEC_KEY_FILE run
// a notebook and read its status; the CLI without the key is refused with
// an error naming the key file, and shows no plaintext.
func TestCodecBinaryWithoutKeyGetsAClearError(t *testing.T) {
	o := attack(t, "read an encrypted run's input with a millrace binary that lacks the codec key")
	dir := t.TempDir()
	nb := testenv.WriteNotebook(t, dir, "env.ipynb", `import os
print("HAS SECRET", len(os.environ["SECRET"]))`)
	cfg := server.Config(t)
	key := filepath.Join(t.TempDir(), "codec.key")
	if _, err := codec.Create(key); err != nil {
		t.Fatal(err)
	}
	base := append(os.Environ(), "TEMPORAL_ADDRESS="+server.Address, "MILLRACE_TASK_QUEUE="+cfg.TaskQueue,
		"MILLRACE_DATA_DIR="+cfg.DataDir, "MILLRACE_ROOTS="+dir, "MILLRACE_EXECUTOR=bundled")
	withKey := append(base[:len(base):len(base)], "MILLRACE_CODEC_KEY_FILE="+key)
	noKey := append(base[:len(base):len(base)], "MILLRACE_CODEC_KEY_FILE=")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	worker := exec.CommandContext(ctx, bin["millrace-worker"], "--log-level", "error")
	worker.Env = withKey
	if err := worker.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = worker.Wait() })

	secret := randomSecret(t)
	run := exec.Command(bin["millrace"], "run", "--json", "--env", "SECRET="+secret, nb)
	run.Env = withKey
	out, err := run.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"succeeded"`) && !strings.Contains(string(out), "SUCCEEDED") {
		t.Fatalf("millrace run with the key: %v\n%s", err, out)
	}
	var st struct {
		JobID string `json:"job_id"`
	}
	if err := json.Unmarshal(out[bytes.IndexByte(out, '{'):], &st); err != nil || st.JobID == "" {
		t.Fatalf("no job id in %s: %v", out, err)
	}
	if bytes.Contains(out, []byte(secret)) {
		t.Fatalf("millrace run prints the env value: %s", out)
	}

	rerun := exec.Command(bin["millrace"], "rerun", st.JobID)
	rerun.Env = noKey
	out, err = rerun.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no codec key") || !strings.Contains(string(out), "MILLRACE_CODEC_KEY_FILE") || bytes.Contains(out, []byte(secret)) {
		t.Fatalf("millrace rerun without the key: %v\n%s\nwant a failure naming the missing key file", err, out)
	}
	o.saw("the CLI without the key failed: %s", firstLine(out))
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}

func TestCodecEnvValueNotInHistoryAtRest(t *testing.T) {
	o := attack(t, "read a run's env value (an API key given with --env) from the Temporal server's database and WAL at rest, or from status and list")
	dir := t.TempDir()
	nb := testenv.WriteNotebook(t, dir, "env.ipynb", `import os, hashlib
print("SECRET sha256", hashlib.sha256(os.environ["SECRET"].encode()).hexdigest())`)

	on := server.Config(t)
	on.CodecKeyFile = filepath.Join(t.TempDir(), "codec.key")
	if _, err := codec.Create(on.CodecKeyFile); err != nil {
		t.Fatal(err)
	}
	secret := randomSecret(t)
	svc := codecJobs(t, on, dir)
	codecRun(t, svc, nb, secret)
	// A cell error that quotes the value: the failure's message is sealed
	// in history too, and status still reads it.
	failing := testenv.WriteNotebook(t, dir, "quote.ipynb", `import os
raise RuntimeError("leaked " + os.environ["SECRET"])`)
	ctx := context.Background()
	started, err := svc.Start(ctx, jobs.StartRequest{Path: failing, Options: runopts.Options{MaxAttempts: 1}, Direct: runopts.Direct{Env: map[string]string{"SECRET": secret}}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := svc.WaitEnded(ctx, started.JobID, 2*time.Minute, nil)
	if err != nil || st.Status != workflows.StatusFailed || st.Error == nil || !strings.Contains(st.Error.Message, "leaked "+secret) {
		t.Fatalf("failing run: %s %+v %v; want its cell error read back through the codec", st.Status, st.Error, err)
	}

	// The control: the same run without a key file, on its own task queue.
	off := server.Config(t)
	off.TaskQueue += "-plain"
	plain := randomSecret(t)
	codecRun(t, codecJobs(t, off, dir), nb, plain)

	db := serverFiles(t)
	if !bytes.Contains(db, []byte(plain)) {
		t.Fatalf("control: the env value of a run without the codec is not in the server's files (%d bytes): this test cannot see history at rest", len(db))
	}
	if bytes.Contains(db, []byte(secret)) {
		t.Fatalf("the env value of a run with the codec is in the server's files")
	}
	o.saw("with a codec key the value is absent from temporal.db and its WAL (%d bytes read) and from status, list and logs; the control run without a key has it in the clear there", len(db))
}
