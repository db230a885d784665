package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// syncBuffer is a bytes.Buffer safe for the server's logging goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// instance is run() serving in this test process.
type instance struct {
	addr   string
	ready  string
	cancel context.CancelFunc
	done   chan error
}

// start calls run() in-process and waits for its ready line.
func start(t *testing.T, args ...string) *instance {
	t.Helper()
	port := mustFreePort(t)
	args = append([]string{"server", "start-dev", "--port", strconv.Itoa(port)}, args...)
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	stderr := &syncBuffer{}
	in := &instance{addr: "127.0.0.1:" + strconv.Itoa(port), cancel: cancel, done: make(chan error, 1)}
	began := time.Now()
	go func() {
		err := run(ctx, args, pw, stderr)
		pw.Close()
		in.done <- err
	}()
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	select {
	case line, ok := <-lines:
		if !ok {
			t.Fatalf("run ended before ready: %v\nstderr:\n%s", <-in.done, stderr.String())
		}
		in.ready = line
	case <-time.After(90 * time.Second):
		cancel()
		t.Fatalf("not ready after 90s\nstderr:\n%s", stderr.String())
	}
	t.Logf("start to ready: %v (%s)", time.Since(began).Round(time.Millisecond), in.ready)
	t.Cleanup(func() { in.stop(t) })
	return in
}

func (in *instance) stop(t *testing.T) {
	t.Helper()
	if in.cancel == nil {
		return
	}
	in.cancel()
	in.cancel = nil
	select {
	case err := <-in.done:
		if err != nil {
			t.Errorf("run returned %v after stop", err)
		}
	case <-time.After(60 * time.Second):
		t.Errorf("server did not stop within 60s")
	}
}

func (in *instance) clients(t *testing.T) (workflowservice.WorkflowServiceClient, operatorservice.OperatorServiceClient) {
	t.Helper()
	conn, err := grpc.NewClient(in.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return workflowservice.NewWorkflowServiceClient(conn), operatorservice.NewOperatorServiceClient(conn)
}

func mustFreePort(t *testing.T) int {
	t.Helper()
	p, err := freePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func checkRetention(t *testing.T, wf workflowservice.WorkflowServiceClient, want time.Duration) {
	t.Helper()
	desc, err := wf.DescribeNamespace(context.Background(), &workflowservice.DescribeNamespaceRequest{Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	if got := desc.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration(); got != want {
		t.Errorf("retention = %v, want %v", got, want)
	}
}

func checkSearchAttributes(t *testing.T, op operatorservice.OperatorServiceClient, want map[string]enumspb.IndexedValueType) {
	t.Helper()
	list, err := op.ListSearchAttributes(context.Background(), &operatorservice.ListSearchAttributesRequest{Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	for name, typ := range want {
		if got, ok := list.GetCustomAttributes()[name]; !ok || got != typ {
			t.Errorf("search attribute %s = %v (present %v), want %v; have %v", name, got, ok, typ, list.GetCustomAttributes())
		}
	}
}

// TestPersistentDB covers a new DB, a restart on it (with a changed retention
// and one more search attribute), the lock against a second instance and the
// files written beside the DB.
func TestPersistentDB(t *testing.T) {
	db := filepath.Join(t.TempDir(), "millrace.db")
	sa := []string{"--db-filename", db,
		"--search-attribute", "MillraceStatus=Keyword",
		"--search-attribute", "MillraceLabels=KeywordList",
		"--dynamic-config-value", "frontend.enableServerVersionCheck=false",
	}
	first := start(t, sa...)
	if want := "millrace-temporal ready address=" + first.addr + " namespace=default db=" + db + " version=" + serverVersion; first.ready != want {
		t.Errorf("ready line\n got %q\nwant %q", first.ready, want)
	}
	wf, op := first.clients(t)
	checkRetention(t, wf, 30*24*time.Hour)
	checkSearchAttributes(t, op, map[string]enumspb.IndexedValueType{
		"MillraceStatus": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		"MillraceLabels": enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST,
	})
	if b, _ := os.ReadFile(db + ".server-version"); string(b) != serverVersion+"\n" {
		t.Errorf("version record = %q", b)
	}
	lockText, _ := os.ReadFile(db + ".lock")
	if want := "pid=" + strconv.Itoa(os.Getpid()) + "\naddress=" + first.addr + "\n"; string(lockText) != want {
		t.Errorf("lock file = %q, want %q", lockText, want)
	}

	// A run started now must survive the restart.
	_, err := wf.StartWorkflowExecution(context.Background(), &workflowservice.StartWorkflowExecutionRequest{
		Namespace:    "default",
		WorkflowId:   "persist-1",
		RequestId:    "persist-1-request",
		WorkflowType: &commonpb.WorkflowType{Name: "Nothing"},
		TaskQueue:    &taskqueuepb.TaskQueue{Name: "nobody-polls"},
		SearchAttributes: &commonpb.SearchAttributes{IndexedFields: map[string]*commonpb.Payload{
			"MillraceStatus": {Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"queued"`)},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}

	// A second instance on the same file is refused at once.
	began := time.Now()
	err = run(context.Background(), []string{"--db-filename", db, "--port", strconv.Itoa(mustFreePort(t))}, io.Discard, io.Discard)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 3 {
		t.Fatalf("second instance: err = %v, want exit status 3", err)
	}
	wantMsg := "another millrace-temporal (pid " + strconv.Itoa(os.Getpid()) + ") owns " + db + " and serves " + first.addr + "; connect to it instead"
	if err.Error() != wantMsg {
		t.Errorf("second instance message\n got %q\nwant %q", err, wantMsg)
	}
	t.Logf("second instance refused in %v", time.Since(began))
	checkBinaryRefuses(t, db, wantMsg)

	first.stop(t)
	if b, _ := os.ReadFile(db + ".lock"); len(b) != 0 {
		t.Errorf("lock file after stop = %q, want empty", b)
	}

	second := start(t, append(sa, "--search-attribute", "MillraceNotebook=text",
		"--search-attribute", "MillraceCell=INDEXED_VALUE_TYPE_INT", "--retention", "1440h")...)
	wf, op = second.clients(t)
	checkRetention(t, wf, 60*24*time.Hour)
	checkSearchAttributes(t, op, map[string]enumspb.IndexedValueType{
		"MillraceStatus":   enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		"MillraceLabels":   enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST,
		"MillraceNotebook": enumspb.INDEXED_VALUE_TYPE_TEXT,
		"MillraceCell":     enumspb.INDEXED_VALUE_TYPE_INT,
	})
	desc, err := wf.DescribeWorkflowExecution(context.Background(), &workflowservice.DescribeWorkflowExecutionRequest{
		Namespace: "default", Execution: &commonpb.WorkflowExecution{WorkflowId: "persist-1"},
	})
	if err != nil {
		t.Fatalf("workflow lost across restart: %v", err)
	}
	if st := desc.GetWorkflowExecutionInfo().GetStatus(); st != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Errorf("workflow status = %v", st)
	}
	// Visibility must still map the attribute (eventually consistent).
	deadline := time.Now().Add(10 * time.Second)
	for {
		list, err := wf.ListWorkflowExecutions(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: "default", Query: `MillraceStatus = "queued"`,
		})
		if err == nil && len(list.GetExecutions()) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("list by search attribute: %v, %d executions", err, len(list.GetExecutions()))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkBinaryRefuses runs the real binary against a locked DB to see the exit
// status and message that reach a parent process. Skipped with -short because
// linking the binary takes a while.
func checkBinaryRefuses(t *testing.T, db, wantMsg string) {
	t.Helper()
	if testing.Short() {
		t.Log("-short: not building the binary")
		return
	}
	bin := filepath.Join(t.TempDir(), "millrace-temporal")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "server", "start-dev", "--db-filename", db, "--port", strconv.Itoa(mustFreePort(t)))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var xe *exec.ExitError
	if !errors.As(err, &xe) || xe.ExitCode() != 3 {
		t.Errorf("binary: err = %v, want exit status 3; stderr:\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), wantMsg) {
		t.Errorf("binary stderr = %q, want it to contain %q", stderr.String(), wantMsg)
	}
}

func TestVersionMismatch(t *testing.T) {
	db := filepath.Join(t.TempDir(), "old.db")
	if err := os.WriteFile(db, []byte("not opened"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(db+".server-version", []byte("1.20.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := run(context.Background(), []string{"--db-filename", db, "--port", strconv.Itoa(mustFreePort(t))}, io.Discard, io.Discard)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 4 {
		t.Fatalf("err = %v, want exit status 4", err)
	}
	want := db + " was created by Temporal server 1.20.0; this binary is " + serverVersion +
		"; there is no SQLite schema migration: use a " + serverVersion + "-compatible data dir or the 1.20.0 binary"
	if err.Error() != want {
		t.Errorf("message\n got %q\nwant %q", err, want)
	}
	if b, _ := os.ReadFile(db); string(b) != "not opened" {
		t.Errorf("DB file was touched")
	}
}

func TestBadInput(t *testing.T) {
	ee := func(err error) int {
		var e *exitError
		if errors.As(err, &e) {
			return e.code
		}
		return -1
	}
	err := run(context.Background(), []string{"--db-filename", "/nonexistent-dir/x/m.db"}, io.Discard, io.Discard)
	if ee(err) != 2 || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing dir: %v", err)
	}
	for _, args := range [][]string{
		{"--no-such-flag"},
		{"--search-attribute", "X=Blob"},
		{"--dynamic-config-value", "a.b=not json"},
		{"--log-level", "loud"},
		{"stray"},
	} {
		if err := run(context.Background(), args, io.Discard, io.Discard); ee(err) != 2 {
			t.Errorf("%v: err = %v, want exit status 2", args, err)
		}
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	err = run(context.Background(), []string{"--port", port}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "port "+port+" on 127.0.0.1 is not available") {
		t.Errorf("port in use: %v", err)
	}

	var out bytes.Buffer
	if err := run(context.Background(), []string{"--version"}, &out, io.Discard); err != nil || out.String() != "millrace-temporal version="+serverVersion+"\n" {
		t.Errorf("--version: %q, %v", out.String(), err)
	}
}

func TestParseArgs(t *testing.T) {
	o, err := parseArgs([]string{"server", "start-dev", "--ip", "0.0.0.0", "--namespace", "a", "--namespace", "b",
		"--search-attribute", "K=INDEXED_VALUE_TYPE_KEYWORD_LIST", "--search-attribute", "D=datetime",
		"--dynamic-config-value", `n=5`, "--dynamic-config-value", `f=1.5`, "--dynamic-config-value", `m={"x":[1]}`,
		"--log-format", "pretty", "--ui-port", "8233", "--headless"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.namespaces, ",") != "a,b" || o.ip != "0.0.0.0" || o.port != 7233 || o.retention != 720*time.Hour {
		t.Errorf("options = %+v", o)
	}
	if o.searchAttrs["K"] != enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST || o.searchAttrs["D"] != enumspb.INDEXED_VALUE_TYPE_DATETIME {
		t.Errorf("search attributes = %v", o.searchAttrs)
	}
	if o.dynConfig["n"] != 5 || o.dynConfig["f"] != 1.5 || o.dynConfig["m"].(map[string]any)["x"].([]any)[0] != 1 {
		t.Errorf("dynamic config = %#v", o.dynConfig)
	}
	if o.ui.port != 0 {
		t.Errorf("--headless still serves the UI on %d", o.ui.port)
	}
	if o, err := parseArgs([]string{"--ui-port", "8233"}, io.Discard); err != nil || o.ui != (uiOptions{ip: "127.0.0.1", port: 8233}) {
		t.Errorf("--ui-port 8233: %+v %v", o, err)
	}
	if dialHost("0.0.0.0") != "127.0.0.1" || dialHost("::") != "::1" || dialHost("10.1.2.3") != "10.1.2.3" {
		t.Error("dialHost")
	}
}

// TestInMemory checks the default, file-less mode the SDK test suite uses.
func TestInMemory(t *testing.T) {
	in := start(t, "--namespace", "other", "--search-attribute", "MillraceStatus=Keyword")
	if !strings.Contains(in.ready, " namespace=other db=:memory: ") {
		t.Errorf("ready line %q", in.ready)
	}
	wf, op := in.clients(t)
	if _, err := wf.DescribeNamespace(context.Background(), &workflowservice.DescribeNamespaceRequest{Namespace: "other"}); err != nil {
		t.Fatal(err)
	}
	list, err := op.ListSearchAttributes(context.Background(), &operatorservice.ListSearchAttributesRequest{Namespace: "other"})
	if err != nil || list.GetCustomAttributes()["MillraceStatus"] != enumspb.INDEXED_VALUE_TYPE_KEYWORD {
		t.Errorf("search attributes: %v, %v", list.GetCustomAttributes(), err)
	}
}
