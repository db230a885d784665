package main

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	schedulepb "go.temporal.io/api/schedule/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

const testToken = "0123456789abcdef0123456789abcdef"

func writeToken(t *testing.T, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(testToken+"\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// client dials the frontend sending token ("" sends none).
func (in *instance) clientWithToken(t *testing.T, token string) workflowservice.WorkflowServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(in.addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(bearer(token)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return workflowservice.NewWorkflowServiceClient(conn)
}

// TestAuthToken checks that with --auth-token-file the frontend serves only
// callers with the token, and that the server's own system workflows (the
// scheduler, run by the worker service through the internal frontend) still
// work.
func TestAuthToken(t *testing.T) {
	in := start(t, "--auth-token-file", writeToken(t, 0o600), "--http-port", strconv.Itoa(mustFreePort(t)))
	ctx := context.Background()
	for name, tok := range map[string]string{"no token": "", "wrong token": strings.Repeat("f", len(testToken))} {
		_, err := in.clientWithToken(t, tok).ListWorkflowExecutions(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: "default"})
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("%s: list = %v, want PermissionDenied", name, err)
		}
		_, err = in.clientWithToken(t, tok).StartWorkflowExecution(ctx, &workflowservice.StartWorkflowExecutionRequest{
			Namespace: "default", WorkflowId: "pwn", RequestId: "pwn-" + name,
			WorkflowType: &commonpb.WorkflowType{Name: "X"}, TaskQueue: &taskqueuepb.TaskQueue{Name: "q"},
		})
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("%s: start = %v, want PermissionDenied", name, err)
		}
	}

	wf := in.clientWithToken(t, testToken)
	// A schedule that starts a workflow every second: only the scheduler
	// system workflow, on the worker service's own client, can take its
	// actions.
	_, err := wf.CreateSchedule(ctx, &workflowservice.CreateScheduleRequest{
		Namespace: "default", ScheduleId: "tick", RequestId: "tick",
		Schedule: &schedulepb.Schedule{
			Spec: &schedulepb.ScheduleSpec{Interval: []*schedulepb.IntervalSpec{{Interval: durationpb.New(time.Second)}}},
			Action: &schedulepb.ScheduleAction{Action: &schedulepb.ScheduleAction_StartWorkflow{StartWorkflow: &workflowpb.NewWorkflowExecutionInfo{
				WorkflowId: "ticked", WorkflowType: &commonpb.WorkflowType{Name: "X"}, TaskQueue: &taskqueuepb.TaskQueue{Name: "q"},
			}}},
		},
	})
	if err != nil {
		t.Fatalf("create schedule with the token: %v", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		d, err := wf.DescribeSchedule(ctx, &workflowservice.DescribeScheduleRequest{Namespace: "default", ScheduleId: "tick"})
		if err == nil && d.GetInfo().GetActionCount() > 0 {
			t.Logf("the scheduler took %d actions", d.GetInfo().GetActionCount())
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the scheduler took no action within 60s: %v, %v", d.GetInfo(), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	checkPorts(t, in.addr)
}

// checkPorts checks every TCP port this process listens on: none answers
// HTTP, and every one but the public frontend refuses a gRPC client without
// the internal certificate, in plain text or over TLS.
func checkPorts(t *testing.T, frontend string) {
	t.Helper()
	ports := listeningPorts(t)
	if len(ports) < 5 {
		t.Fatalf("found %d listening ports (%v), want the frontend, the internal frontend, history, matching and worker", len(ports), ports)
	}
	tlsNoCert := credentials.NewTLS(&tls.Config{InsecureSkipVerify: true})
	for _, p := range ports {
		addr := "127.0.0.1:" + strconv.Itoa(p)
		resp, err := (&http.Client{Timeout: 3 * time.Second}).Post("http://"+addr+"/api/v1/namespaces/default/workflows/nb-x", "text/plain", strings.NewReader(`{"workflowType":{"name":"X"},"taskQueue":{"name":"q"}}`))
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			t.Errorf("port %d answers HTTP: %s %s", p, resp.Status, body)
		}
		for name, creds := range map[string]credentials.TransportCredentials{"plain": insecure.NewCredentials(), "TLS without a certificate": tlsNoCert} {
			err := healthCheck(addr, creds)
			switch {
			case addr == frontend && name == "plain" && err != nil:
				t.Errorf("frontend %s: health check: %v", addr, err)
			case addr != frontend && status.Code(err) != codes.Unavailable:
				// Any answer but a failed connection (even Unimplemented)
				// means the call got through.
				t.Errorf("internal port %d: a %s gRPC client got %v, want the connection refused", p, name, err)
			}
		}
	}
}

func healthCheck(addr string, creds credentials.TransportCredentials) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

// listeningPorts lists the TCP ports this process listens on, from
// /proc/self/net/tcp and the socket inodes among /proc/self/fd.
func listeningPorts(t *testing.T) []int {
	t.Helper()
	inodes := map[string]bool{}
	fds, _ := os.ReadDir("/proc/self/fd")
	for _, fd := range fds {
		l, err := os.Readlink("/proc/self/fd/" + fd.Name())
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	var ports []int
	for _, f := range []string{"/proc/self/net/tcp", "/proc/self/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 10 || fs[3] != "0A" || !inodes[fs[9]] {
				continue
			}
			_, port, _ := strings.Cut(fs[1], ":")
			p, _ := strconv.ParseInt(port, 16, 32)
			ports = append(ports, int(p))
		}
	}
	return ports
}

func TestAuthTokenFileRefused(t *testing.T) {
	for name, tc := range map[string]struct {
		path, want string
	}{
		"world-readable": {writeToken(t, 0o644), "others can read it"},
		"missing":        {filepath.Join(t.TempDir(), "nope"), "no such file"},
		"short": {func() string {
			p := filepath.Join(t.TempDir(), "t")
			os.WriteFile(p, []byte("abc"), 0o600)
			return p
		}(), "at least 16"},
	} {
		err := run(context.Background(), []string{"--port", strconv.Itoa(mustFreePort(t)), "--auth-token-file", tc.path}, io.Discard, io.Discard)
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: run = %v, want status 2 and %q", name, err, tc.want)
		}
	}
}
