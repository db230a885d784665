package connect

import (
	"context"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const heartbeatMethod = "/temporal.api.workflowservice.v1.WorkflowService/RecordActivityTaskHeartbeat"

// answering is a gRPC invoker that answers err after taking d on clock.
func answering(now *time.Time, d time.Duration, err error) grpc.UnaryInvoker {
	return func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error {
		*now = now.Add(d)
		return err
	}
}

func TestHeartbeatsRecordWhenTheServerLastAcceptedOne(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	start := now
	h := NewHeartbeats()
	h.now = func() time.Time { return now }
	token := []byte("task-1")
	beat := func(d time.Duration, err error) error {
		req := &workflowservice.RecordActivityTaskHeartbeatRequest{TaskToken: token}
		return h.Intercept(context.Background(), heartbeatMethod, req, &workflowservice.RecordActivityTaskHeartbeatResponse{}, nil, answering(&now, d, err))
	}
	if at, gone := h.Last(token); !at.IsZero() || gone != nil {
		t.Fatalf("before any heartbeat: %v %v", at, gone)
	}
	// A heartbeat that times out (the server out of reach): only its
	// first try is known.
	if err := beat(time.Second, status.Error(codes.DeadlineExceeded, "context deadline exceeded")); err == nil {
		t.Fatal("the interceptor swallowed the error")
	}
	if at, gone := h.Last(token); !at.Equal(start) || gone != nil {
		t.Fatalf("after a failed first heartbeat: %v %v, want its sending %v", at, gone, start)
	}
	// An accepted one is recorded at its sending, not its answer.
	sent := now
	if err := beat(300*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	if at, _ := h.Last(token); !at.Equal(sent) {
		t.Fatalf("accepted heartbeat recorded at %v, want its sending %v", at, sent)
	}
	// Failures after it leave it the last accepted.
	_ = beat(time.Second, status.Error(codes.Unavailable, "connection refused"))
	if at, gone := h.Last(token); !at.Equal(sent) || gone != nil {
		t.Fatalf("after an unavailable server: %v %v", at, gone)
	}
	// NotFound: the server no longer knows the attempt.
	_ = beat(10*time.Millisecond, status.Error(codes.NotFound, "activity already timed out"))
	if _, gone := h.Last(token); gone == nil {
		t.Fatal("a NotFound answer is not recorded as gone")
	}
	// Other tasks and other calls are apart.
	if at, _ := h.Last([]byte("task-2")); !at.IsZero() {
		t.Fatalf("another task: %v", at)
	}
	calls := 0
	err := h.Intercept(context.Background(), "/x/PollActivityTaskQueue", &workflowservice.PollActivityTaskQueueRequest{}, nil, nil,
		func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error {
			calls++
			return nil
		})
	if err != nil || calls != 1 || len(h.tasks) != 1 {
		t.Fatalf("another call: err %v, %d calls, %d tasks recorded", err, calls, len(h.tasks))
	}
}

func TestHeartbeatsForgetTasksNobodyHolds(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	h := NewHeartbeats()
	h.now = func() time.Time { return now }
	beat := func(token string) {
		req := &workflowservice.RecordActivityTaskHeartbeatRequest{TaskToken: []byte(token)}
		_ = h.Intercept(context.Background(), heartbeatMethod, req, nil, nil, answering(&now, 0, status.Error(codes.DeadlineExceeded, "")))
	}
	beat("ended")
	beat("held")
	release := h.Hold([]byte("held"))
	now = now.Add(heartbeatsKeep + time.Minute)
	beat("other")
	if _, ok := h.tasks["ended"]; ok {
		t.Error("a task nobody holds is kept after heartbeatsKeep")
	}
	if _, ok := h.tasks["held"]; !ok {
		t.Fatal("a held task was forgotten while its heartbeats fail")
	}
	release()
	release()
	if h.tasks["held"].held != 0 {
		t.Errorf("released twice: held %d", h.tasks["held"].held)
	}
	now = now.Add(2 * time.Minute)
	beat("other")
	if _, ok := h.tasks["held"]; ok {
		t.Error("a released task is kept after heartbeatsKeep")
	}
}
