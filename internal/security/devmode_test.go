package security_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"millrace/internal/config"
	"millrace/internal/connect"
	"millrace/internal/devmode"
	"millrace/internal/jobs"
	"millrace/internal/paths"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// Secrets in the environment of the client that starts the dev service.
var clientSecrets = map[string]string{
	"AWS_SECRET_ACCESS_KEY": "aws-secret-from-the-client",
	"MILLRACE_MCP_TOKEN":    "mcp-token-from-the-client",
	"TEMPORAL_API_KEY":      "temporal-key-from-the-client",
}

// devService is a background dev service started the way users start it:
// by a millrace command in dev mode.
type devService struct {
	dataDir string
	st      devmode.State
	client  client.Client // the owner's, with the token
	jobs    *jobs.Service
	root    string // the owner's notebooks
}

func startDevService(t *testing.T) *devService {
	t.Helper()
	serverBin, err := testenv.ServerBin()
	if err != nil {
		t.Fatal(err)
	}
	d := &devService{dataDir: filepath.Join(t.TempDir(), "data"), root: t.TempDir()}
	t.Cleanup(func() {
		if _, err := devmode.Stop(d.dataDir, 30*time.Second); err != nil && !errors.Is(err, devmode.ErrNotRunning) {
			t.Errorf("stop the dev service: %v", err)
		}
	})
	cmd := exec.Command(bin["millrace"], "jobs", "--json")
	cmd.Dir = d.root
	cmd.Env = append(os.Environ(), "MILLRACE_DATA_DIR="+d.dataDir, "MILLRACE_TEMPORAL_BIN="+serverBin, "TEMPORAL_ADDRESS=", "MILLRACE_EXECUTOR=bundled")
	for k, v := range clientSecrets {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("millrace jobs (starting the dev service): %v\n%s", err, out)
	}
	if d.st, err = devmode.Status(d.dataDir); err != nil {
		t.Fatal(err)
	}
	// As a millrace binary in dev mode: the service's token and codec key.
	cfg := &config.Config{Address: d.st.Address, Namespace: d.st.Namespace, CodecKeyFile: devmode.KeyFile(d.dataDir)}
	dc, err := connect.DataConverter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if d.client, err = connect.Dial(context.Background(), cfg, testenv.Logger(), devmode.ClientOption(d.dataDir)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.client.Close)
	roots, err := paths.NewRoots([]string{d.root})
	if err != nil {
		t.Fatal(err)
	}
	d.jobs = &jobs.Service{Client: d.client, DataConverter: dc, Namespace: d.st.Namespace, TaskQueue: d.st.TaskQueue, DataDir: d.dataDir, Roots: roots}
	return d
}

// workflowIDs lists every workflow of the namespace, seen by the owner.
func (d *devService) workflowIDs(t *testing.T) []string {
	t.Helper()
	var ids []string
	var token []byte
	for {
		resp, err := d.client.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{Namespace: d.st.Namespace, NextPageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range resp.GetExecutions() {
			ids = append(ids, e.GetExecution().GetWorkflowId())
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return ids
		}
	}
}

// visible waits until the listing shows workflow id (visibility lags a
// start) and returns the listing.
func (d *devService) visible(t *testing.T, id string) []string {
	t.Helper()
	var ids []string
	testenv.Eventually(t, 30*time.Second, "workflow "+id+" in the listing", func() bool {
		ids = d.workflowIDs(t)
		return slices.Contains(ids, id)
	})
	return ids
}

// checkNothingStarted checks, as the owner, that no workflow was added
// since the listing before. A sentinel run started now, once listed,
// shows that the listing has caught up with anything started earlier.
func (d *devService) checkNothingStarted(t *testing.T, before []string) {
	t.Helper()
	after := d.visible(t, startRun(t, d, "trivial.ipynb"))
	if len(after) != len(before)+1 {
		t.Errorf("workflows %v after the attack (with the sentinel), %v before", after, before)
	}
}

// TestDevService attacks one background dev service from outside its
// user: another local user, a forged token, web pages, the files it
// leaves, and what it inherits from the client that started it.
func TestDevService(t *testing.T) {
	d := startDevService(t)
	t.Run("environment", func(t *testing.T) { devServiceEnvironment(t, d) })
	t.Run("cross-origin POST to every port", func(t *testing.T) { devServiceCrossOrigin(t, d) })
	t.Run("forged token", func(t *testing.T) { devServiceForgedToken(t, d) })
	t.Run("another local user", func(t *testing.T) { devServiceOtherUser(t, d) })
	t.Run("files", func(t *testing.T) { devServiceFiles(t, d) })
	t.Run("web UI", func(t *testing.T) { devServiceUI(t, d) })
}

func devServiceEnvironment(t *testing.T, d *devService) {
	o := attack(t, "a secret in the environment of the client that started the dev service (AWS_SECRET_ACCESS_KEY, MILLRACE_MCP_TOKEN, TEMPORAL_API_KEY) reaches the service, its server and every notebook it runs")
	for _, pid := range []int{d.st.PID, d.st.ServerPID} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			t.Fatal(err)
		}
		env := strings.Split(string(b), "\x00")
		hasPath := false
		for _, kv := range env {
			k, _, _ := strings.Cut(kv, "=")
			hasPath = hasPath || k == "PATH"
			if _, secret := clientSecrets[k]; secret {
				t.Errorf("pid %d has %s", pid, kv)
			}
		}
		if !hasPath {
			t.Errorf("pid %d has no PATH: %q", pid, env)
		}
	}
	o.saw("none of the 3 secrets in /proc/<pid>/environ of the service and its server (PATH is)")
}

func devServiceCrossOrigin(t *testing.T, d *devService) {
	o := attack(t, "a web page posts a cross-origin text/plain request (Origin: https://attacker.example) to every TCP port the dev service and its Temporal server listen on, to start a notebook run")
	before := d.workflowIDs(t)
	var ports []int
	for _, pid := range []int{d.st.PID, d.st.ServerPID} {
		ports = append(ports, listeningPorts(t, pid)...)
	}
	_, frontPort, _ := strings.Cut(d.st.Address, ":")
	if !strings.Contains(fmt.Sprint(ports), frontPort) || len(ports) < 5 {
		t.Fatalf("listening ports %v: want the frontend %s and the 4 internal services", ports, frontPort)
	}
	body := fmt.Sprintf(`{"workflowId":"nb-x","workflowType":{"name":%q},"taskQueue":{"name":%q},"input":{"payloads":[]}}`, workflows.NotebookRunWorkflow, d.st.TaskQueue)
	noHTTP := 0
	for _, p := range ports {
		req, _ := http.NewRequest("POST", "http://127.0.0.1:"+strconv.Itoa(p)+"/api/v1/namespaces/default/workflows/nb-x", strings.NewReader(body))
		req.Header.Set("Origin", "https://attacker.example")
		req.Header.Set("Content-Type", "text/plain")
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			noHTTP++
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Errorf("port %d accepted the POST: %s %s", p, resp.Status, b)
		}
	}
	_, err := d.client.DescribeWorkflow(context.Background(), "nb-x", "")
	var notFound *serviceerror.NotFound
	if !errors.As(err, &notFound) {
		t.Errorf("workflow nb-x: %v, want NotFound", err)
	}
	d.checkNothingStarted(t, before)
	o.saw("%d ports, %d of them speak no HTTP at all, the others answered 4xx; no workflow started", len(ports), noHTTP)
}

func devServiceForgedToken(t *testing.T, d *devService) {
	o := attack(t, "a client presents a forged bearer token to the dev service's Temporal frontend to start, list or cancel runs")
	victim := startRun(t, d, "slow.ipynb")
	before := d.visible(t, victim)
	forged := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(forged, []byte(strings.Repeat("f", 64)), 0o600); err != nil {
		t.Fatal(err)
	}
	// A lazy client skips the dial's own check, so that each call below
	// reaches the frontend.
	opts, err := connect.Options(&config.Config{Address: d.st.Address, Namespace: d.st.Namespace}, testenv.Logger(), connect.WithBearerTokenFile(forged))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.NewLazyClient(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	var denied *serviceerror.PermissionDenied
	_, err = c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "nb-forged", TaskQueue: d.st.TaskQueue}, workflows.NotebookRunWorkflow, workflows.RunInput{})
	if !errors.As(err, &denied) {
		t.Errorf("start: %v, want PermissionDenied", err)
	}
	_, err = c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: d.st.Namespace})
	if !errors.As(err, &denied) {
		t.Errorf("list: %v, want PermissionDenied", err)
	}
	if err = c.CancelWorkflow(ctx, victim, ""); !errors.As(err, &denied) {
		t.Errorf("cancel: %v, want PermissionDenied", err)
	}
	checkUntouched(t, d, victim, before)
	o.saw("start, list and cancel: PermissionDenied; no workflow started, the run not canceled")
}

func devServiceOtherUser(t *testing.T, d *devService) {
	o := attack(t, "another local user (nobody) points the millrace CLI at the dev service's port (TEMPORAL_ADDRESS) to run a notebook as the service's user, list its runs or cancel one, or reads its token")
	victim := startRun(t, d, "slow.ipynb")
	before := d.visible(t, victim)

	// A folder nobody can use: the millrace binary and a notebook that
	// leaves a mark if it ever runs.
	pub, err := os.MkdirTemp("", "millrace-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(pub) })
	mark := filepath.Join(pub, "pwned")
	for _, step := range []error{os.Chmod(pub, 0o777), copyExec(bin["millrace"], filepath.Join(pub, "millrace")),
		os.WriteFile(filepath.Join(pub, "pwn.ipynb"), []byte(markNotebook(mark)), 0o644)} {
		if step != nil {
			t.Fatal(step)
		}
	}
	asNobody := func(args ...string) (string, error) {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = pub
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + pub, "MILLRACE_DATA_DIR=" + filepath.Join(pub, "data"), "TEMPORAL_ADDRESS=" + d.st.Address}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	millrace := filepath.Join(pub, "millrace")
	if out, err := asNobody(millrace, "version"); err != nil {
		t.Fatalf("nobody cannot run millrace at all, so the test proves nothing: %v\n%s", err, out)
	}
	var saw []string
	for _, try := range []struct {
		label string
		args  []string
	}{
		{"millrace run", []string{millrace, "run", "--detach", "pwn.ipynb"}},
		{"millrace jobs", []string{millrace, "jobs", "--json"}},
		{"millrace cancel", []string{millrace, "cancel", victim}},
		{"cat the token", []string{"/bin/cat", devmode.TokenFile(d.dataDir)}},
	} {
		out, err := asNobody(try.args...)
		if err == nil {
			t.Errorf("as nobody, %s succeeded:\n%s", try.label, out)
			continue
		}
		what := ""
		switch {
		case strings.Contains(out, "unauthorized"):
			what = "Request unauthorized"
		case strings.Contains(out, "Permission denied") && try.args[0] == "/bin/cat":
			what = "Permission denied"
		default:
			t.Errorf("as nobody, %s failed, but not on the credential or the file's mode: %s", try.label, out)
		}
		saw = append(saw, try.label+": "+what)
	}
	checkUntouched(t, d, victim, before)
	if _, err := os.Stat(mark); err == nil {
		t.Errorf("the attacker's notebook ran: %s exists", mark)
	}
	o.saw("%s; no workflow started, the run not canceled", strings.Join(saw, "; "))
}

func devServiceFiles(t *testing.T, d *devService) {
	o := attack(t, "another local user reads the dev service's files: its Temporal database (every run's inputs and results), token, state, logs, and a run's parameters, logs and output notebook")
	id := startRun(t, d, "trivial.ipynb")
	end, err := d.jobs.WaitEnded(context.Background(), id, 2*time.Minute, nil)
	if err != nil || end.Status != workflows.StatusSucceeded {
		t.Fatalf("run: %s %v %+v", end.Status, err, end.Error)
	}
	want := map[string]os.FileMode{d.dataDir: 0o700, devmode.Dir(d.dataDir): 0o700}
	for _, f := range []string{devmode.DBName, devmode.DBName + "-wal"} {
		want[filepath.Join(d.dataDir, f)] = 0o600
	}
	for _, f := range []string{"token", "service.json", "port", "ui-port", "service.log", "service.lock", "spawn.lock"} {
		want[filepath.Join(devmode.Dir(d.dataDir), f)] = 0o600
	}
	runDir := filepath.Join(d.dataDir, "runs", id)
	var runFiles []string
	err = filepath.WalkDir(runDir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if rel, _ := filepath.Rel(runDir, p); !e.IsDir() {
			runFiles = append(runFiles, rel)
		}
		want[p] = 0o600
		if e.IsDir() {
			want[p] = 0o700
		}
		return nil
	})
	if err != nil || len(runFiles) < 3 {
		t.Fatalf("run folder %s: files %v, %v", runDir, runFiles, err)
	}
	if _, ok := want[filepath.Join(runDir, "output.ipynb")]; !ok {
		t.Errorf("no output notebook in %s", runDir)
	}
	for p, mode := range want {
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: %#o, want %#o", p, fi.Mode().Perm(), mode)
		}
	}
	o.saw("%d paths checked: the data dir and every folder 0700; temporal.db and its WAL, token, state, port, log, locks, and the run's files (%s) 0600", len(want), strings.Join(runFiles, ", "))
}

// startRun starts a testdata notebook as the owner and returns its job id.
func startRun(t *testing.T, d *devService, name string) string {
	t.Helper()
	nb := testenv.CopyFile(t, filepath.Join(testenv.RepoRoot(), "activities", "testdata", name), d.root)
	run, err := d.jobs.Start(context.Background(), jobs.StartRequest{Path: nb})
	if err != nil {
		t.Fatal(err)
	}
	return run.JobID
}

// checkUntouched checks, as the owner, that no workflow was added and the
// victim run was not canceled.
func checkUntouched(t *testing.T, d *devService, victim string, before []string) {
	t.Helper()
	d.checkNothingStarted(t, before)
	desc, err := d.client.DescribeWorkflow(context.Background(), victim, "")
	if err != nil {
		t.Fatal(err)
	}
	if s := desc.RawResponse.GetWorkflowExecutionInfo().GetStatus().String(); s != "Running" && s != "Completed" {
		t.Errorf("the victim run is %s", s)
	}
	if err := d.client.CancelWorkflow(context.Background(), victim, ""); err != nil {
		var done *serviceerror.NotFound
		if !errors.As(err, &done) && !strings.Contains(err.Error(), "already completed") {
			t.Errorf("the owner cannot cancel: %v", err)
		}
	}
}

// listeningPorts lists the TCP ports process pid listens on: the LISTEN
// entries of its network namespace's tables whose socket inode is one of
// its file descriptors.
func listeningPorts(t *testing.T, pid int) []int {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	var ports []int
	for _, table := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] { // 0A: LISTEN
				continue
			}
			_, hex, _ := strings.Cut(f[1], ":")
			p, _ := strconv.ParseInt(hex, 16, 32)
			ports = append(ports, int(p))
		}
	}
	return ports
}

func copyExec(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o755)
}

// markNotebook is a notebook whose one cell creates path.
func markNotebook(path string) string {
	src, _ := json.Marshal(fmt.Sprintf("open(%q, 'w').write('ran')", path))
	return fmt.Sprintf(`{"cells":[{"cell_type":"code","execution_count":null,"metadata":{},"outputs":[],"source":[%s]}],
"metadata":{"kernelspec":{"name":"python3","display_name":"Python 3","language":"python"}},"nbformat":4,"nbformat_minor":5}`, src)
}
