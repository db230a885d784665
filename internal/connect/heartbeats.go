package connect

import (
	"context"
	"sync"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// Heartbeats records, for each activity task this client heartbeats, when
// the Temporal server last accepted one of its heartbeats and whether the
// server answered that it no longer knows the task. A worker reads it to
// fence itself: the SDK keeps an activity running while its heartbeats
// fail (a network partition), but the server times the attempt out and
// starts a retry elsewhere, so the worker must stop the attempt on its own
// before that retry can start (activities.Activities.Heartbeats).
//
// It sees every heartbeat RPC through a gRPC interceptor
// (WithHeartbeats), each try of the SDK's retries apart. An accepted heartbeat is recorded at the
// moment it was sent: the server recorded it no earlier, so the time a
// fence measures from is never later than the server's.
type Heartbeats struct {
	now   func() time.Time
	mu    sync.Mutex
	tasks map[string]*heartbeatTask
	swept time.Time
}

type heartbeatTask struct {
	first    time.Time // the first heartbeat was sent
	accepted time.Time // the last accepted heartbeat was sent
	gone     error     // the server's NotFound answer
	touched  time.Time // the last heartbeat was answered
	held     int       // Hold calls not yet released
}

// heartbeatsKeep is how long a task nobody holds stays recorded after its
// last heartbeat: the activity records its first heartbeats before it
// holds the task, and its last ones after it released it.
const heartbeatsKeep = 10 * time.Minute

// NewHeartbeats returns an empty record; dial the client WithHeartbeats.
func NewHeartbeats() *Heartbeats {
	return &Heartbeats{now: time.Now, tasks: map[string]*heartbeatTask{}}
}

// WithHeartbeats installs h's interceptor in the client's connection.
func WithHeartbeats(h *Heartbeats) Option {
	return func(o *client.Options) {
		o.ConnectionOptions.DialOptions = append(o.ConnectionOptions.DialOptions, grpc.WithChainUnaryInterceptor(h.Intercept))
	}
}

// Intercept is the gRPC unary client interceptor that records the answers
// to RecordActivityTaskHeartbeat. Activities heartbeat by task token;
// heartbeats by id come from other clients and are not recorded.
func (h *Heartbeats) Intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	r, ok := req.(*workflowservice.RecordActivityTaskHeartbeatRequest)
	if !ok {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	sent := h.now()
	err := invoker(ctx, method, req, reply, cc, opts...)
	h.answered(r.GetTaskToken(), sent, err)
	return err
}

func (h *Heartbeats) answered(token []byte, sent time.Time, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.task(token, sent)
	t.touched = h.now()
	switch {
	case err == nil:
		if sent.After(t.accepted) {
			t.accepted = sent
		}
	case serviceerror.ToStatus(err).Code() == codes.NotFound:
		// The server's answer for an attempt it timed out, or whose run
		// ended: no later heartbeat can be accepted.
		t.gone = err
	}
	h.sweep()
}

// task returns the record of token, created with first as its first
// heartbeat. Callers hold mu.
func (h *Heartbeats) task(token []byte, first time.Time) *heartbeatTask {
	t, ok := h.tasks[string(token)]
	if !ok {
		t = &heartbeatTask{first: first, touched: first}
		h.tasks[string(token)] = t
	}
	return t
}

// sweep forgets tasks nobody holds that have not heartbeated for
// heartbeatsKeep, at most once a minute. Callers hold mu.
func (h *Heartbeats) sweep() {
	now := h.now()
	if now.Sub(h.swept) < time.Minute {
		return
	}
	h.swept = now
	for k, t := range h.tasks {
		if t.held == 0 && now.Sub(t.touched) > heartbeatsKeep {
			delete(h.tasks, k)
		}
	}
}

// Last says when the server last accepted a heartbeat of the task (when
// that heartbeat was sent), or, before any was accepted, when its first
// heartbeat was sent; zero when none was sent. gone is the server's answer
// that it no longer knows the task, nil while it does.
func (h *Heartbeats) Last(token []byte) (at time.Time, gone error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.tasks[string(token)]
	if !ok {
		return time.Time{}, nil
	}
	if t.accepted.IsZero() {
		return t.first, t.gone
	}
	return t.accepted, t.gone
}

// Hold keeps the task's record until release is called (any number of
// times): an activity holds it while it reads it, however long its
// heartbeats fail.
func (h *Heartbeats) Hold(token []byte) (release func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.task(token, h.now()).held++
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			if t, ok := h.tasks[string(token)]; ok {
				t.held--
			}
		})
	}
}
