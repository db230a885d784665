package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"millrace/internal/jobs"
)

// Live resources: a client subscribes to a job's resources and is sent
// notifications/resources/updated when the job's status or progress
// changes.
//
// mcp-go v1.2.1 answers resources/subscribe and resources/unsubscribe once
// the subscribe capability is on, but records nothing and sends nothing:
// none of its sessions implements SessionWithResourceSubscriptions. So the
// bookkeeping is here, on mcp-go's hooks:
//
//   - OnRequestInitialization checks a subscription before mcp-go answers
//     it; it is the only hook that can fail a request, so a bad URI or an
//     unknown job is an error (code -32600, "invalid request", with a
//     message that says what is wrong) instead of a subscription that never
//     fires.
//   - AfterSubscribe and AfterUnsubscribe (protocol 2025-11-25 and earlier)
//     add and drop a session's subscription; its notifications go through
//     MCPServer.SendNotificationToSpecificClient to the session's stream
//     (stdio, or a stateful streamable HTTP session's GET stream).
//   - BeforeSubscriptionsListen (protocol 2026-07-28, where a long-lived
//     subscriptions/listen request replaced resources/subscribe, and which
//     mcp-go's own client speaks by default) subscribes the listen stream
//     for as long as that request lasts.
//   - OnUnregisterSession drops what a session that ended had subscribed.
//
// Stateless streamable HTTP has no stream between requests: subscribing
// there is refused with a message that says so (a 2026-07-28 client's
// subscriptions/listen is its own stream and works).

// maxWatchedJobs bounds how many jobs are watched at once, so subscribers
// cannot make the server poll Temporal without limit.
const maxWatchedJobs = 100

// subscriber is one place notifications/resources/updated go.
type subscriber interface {
	// send queues the notification for uri without blocking.
	send(uri string) error
	// sessionID is the session the subscriber belongs to: when it ends, so
	// does the subscription. "" for a listen stream with no session.
	sessionID() string
}

// sessionSubscriber is a session that called resources/subscribe.
type sessionSubscriber struct {
	srv *server.MCPServer
	id  string
}

func (s sessionSubscriber) send(uri string) error {
	return s.srv.SendNotificationToSpecificClient(s.id, mcp.MethodNotificationResourceUpdated, map[string]any{"uri": uri})
}

func (s sessionSubscriber) sessionID() string { return s.id }

// listenSubscriber is one subscriptions/listen request: its notifications
// go on that request's response stream, which is the session mcp-go put in
// the request's context (an ephemeral one over streamable HTTP).
type listenSubscriber struct {
	session server.ClientSession
}

func (l *listenSubscriber) send(uri string) error {
	n := mcp.JSONRPCNotification{
		JSONRPC: mcp.JSONRPC_VERSION,
		Notification: mcp.Notification{
			Method: mcp.MethodNotificationResourceUpdated,
			Params: mcp.NotificationParams{AdditionalFields: map[string]any{"uri": uri}},
		},
	}
	if h, ok := l.session.(server.SessionWithStreamableHTTPConfig); ok {
		h.UpgradeToSSEWhenReceiveNotification()
	}
	select {
	case l.session.NotificationChannel() <- n:
		return nil
	default:
		return server.ErrNotificationChannelBlocked
	}
}

func (l *listenSubscriber) sessionID() string { return l.session.SessionID() }

// subscriptions records who follows which job resources and runs one
// watcher per job that has a subscriber, shared by all of them.
type subscriptions struct {
	svc    *jobs.Service
	srv    *server.MCPServer
	logger *slog.Logger
	// progressEvery bounds progress-only notifications: at most one per
	// job per progressEvery. See watcher.
	progressEvery time.Duration
	// retryEvery is how long a watcher waits after Temporal failed it.
	retryEvery time.Duration

	mu       sync.Mutex
	watchers map[string]*watcher // by job id
	sessions map[string]bool     // registered sessions: they have a stream between requests
}

func newSubscriptions(svc *jobs.Service, srv *server.MCPServer, logger *slog.Logger) *subscriptions {
	return &subscriptions{
		svc: svc, srv: srv, logger: logger,
		progressEvery: ResourceProgressEvery,
		retryEvery:    5 * time.Second,
		watchers:      map[string]*watcher{},
		sessions:      map[string]bool{},
	}
}

// register hooks the subscriptions into mcp-go.
func (s *subscriptions) register(h *server.Hooks) {
	h.AddOnRegisterSession(func(_ context.Context, session server.ClientSession) {
		s.mu.Lock()
		s.sessions[session.SessionID()] = true
		s.mu.Unlock()
	})
	h.AddOnUnregisterSession(func(_ context.Context, session server.ClientSession) {
		id := session.SessionID()
		if id == "" {
			return // not a session anything subscribed through
		}
		s.mu.Lock()
		delete(s.sessions, id)
		s.mu.Unlock()
		s.dropWhere(func(sub subscriber) bool { return sub.sessionID() == id })
	})
	h.AddOnRequestInitialization(s.check)
	h.AddAfterSubscribe(func(ctx context.Context, _ any, req *mcp.SubscribeRequest, _ *mcp.EmptyResult) {
		if session := server.ClientSessionFromContext(ctx); session != nil {
			s.subscribe(ctx, sessionSubscriber{srv: s.srv, id: session.SessionID()}, []string{req.Params.URI})
		}
	})
	h.AddAfterUnsubscribe(func(ctx context.Context, _ any, req *mcp.UnsubscribeRequest, _ *mcp.EmptyResult) {
		if session := server.ClientSessionFromContext(ctx); session != nil {
			s.unsubscribe(sessionSubscriber{srv: s.srv, id: session.SessionID()}, req.Params.URI)
		}
	})
	h.AddBeforeSubscriptionsListen(func(ctx context.Context, _ any, req *mcp.SubscriptionsListenRequest) {
		uris := req.Params.Notifications.ResourceSubscriptions
		session := server.ClientSessionFromContext(ctx)
		if len(uris) == 0 || session == nil {
			return
		}
		l := &listenSubscriber{session: session}
		s.subscribe(ctx, l, uris)
		// mcp-go cancels the request's context when the listen request
		// ends, however it ends (the client closed it, the connection
		// dropped, the handler failed).
		context.AfterFunc(ctx, func() { s.dropWhere(func(sub subscriber) bool { return sub == l }) })
	})
}

// subscribeMessage is what check reads of a request.
type subscribeMessage struct {
	Method string `json:"method"`
	Params struct {
		Meta          *mcp.Meta              `json:"_meta"`
		URI           string                 `json:"uri"`
		Notifications mcp.SubscriptionFilter `json:"notifications"`
	} `json:"params"`
}

// check refuses a subscription that could never be served. It runs before
// mcp-go handles any request, so it only parses those that subscribe.
func (s *subscriptions) check(ctx context.Context, _ any, message any) error {
	raw, ok := message.(json.RawMessage)
	if !ok || !bytes.Contains(raw, []byte(`"resources/subscribe"`)) && !bytes.Contains(raw, []byte(`"subscriptions/listen"`)) {
		return nil
	}
	var m subscribeMessage
	if json.Unmarshal(raw, &m) != nil {
		return nil // mcp-go reports a malformed request
	}
	switch m.Method {
	case string(mcp.MethodResourcesSubscribe):
		if m.Params.URI == "" || mcp.IsModernProtocol(m.Params.Meta.ProtocolVersion()) {
			return nil // mcp-go answers: uri is required; removed in 2026-07-28
		}
		session := server.ClientSessionFromContext(ctx)
		s.mu.Lock()
		stateful := session != nil && s.sessions[session.SessionID()]
		s.mu.Unlock()
		if !stateful {
			return errors.New("this connection has no session to send notifications on (stateless streamable HTTP): read the resource again, or call get_job_status, to follow the job")
		}
		return s.checkURIs(ctx, []string{m.Params.URI})
	case string(mcp.MethodSubscriptionsListen):
		return s.checkURIs(ctx, m.Params.Notifications.ResourceSubscriptions)
	}
	return nil
}

func (s *subscriptions) checkURIs(ctx context.Context, uris []string) error {
	for _, uri := range uris {
		jobID, err := parseJobURI(uri)
		if err != nil {
			return fmt.Errorf("cannot subscribe: %w", err)
		}
		if _, err := s.svc.Status(ctx, jobID); err != nil {
			if !jobs.IsUserError(err) {
				s.logger.Error("subscription check failed", "uri", uri, "error", err)
			}
			return fmt.Errorf("cannot subscribe to %s: %w", uri, err)
		}
		s.mu.Lock()
		full := s.watchers[jobID] == nil && len(s.watchers) >= maxWatchedJobs
		s.mu.Unlock()
		if full {
			return fmt.Errorf("cannot subscribe to %s: this server already follows %d jobs, its limit; poll get_job_status instead", uri, maxWatchedJobs)
		}
	}
	return nil
}

// subscribe adds sub to the jobs of uris, which check accepted. Each job's
// status is read now, before the client has its answer, so a change
// between the client's next read and the watcher's first poll is not lost.
// A job that has ended is not watched: nothing about it will change.
func (s *subscriptions) subscribe(ctx context.Context, sub subscriber, uris []string) {
	baselines := map[string]jobs.Status{}
	for _, uri := range uris {
		jobID, err := parseJobURI(uri)
		if err != nil {
			continue
		}
		st, seen := baselines[jobID]
		if !seen {
			var err error
			if st, err = s.svc.Status(ctx, jobID); err != nil {
				// Unknown baseline: the watcher's first poll notifies,
				// and the client reads again.
				s.logger.Warn("subscription baseline", "uri", uri, "error", err)
				st = jobs.Status{JobID: jobID}
			}
			baselines[jobID] = st
		}
		if st.Ended() && st.Status != "" {
			continue
		}
		s.mu.Lock()
		w := s.watchers[jobID]
		if w == nil {
			w = s.startWatcher(jobID, st)
		}
		if w.subs[sub] == nil {
			w.subs[sub] = map[string]bool{}
		}
		w.subs[sub][uri] = true
		s.mu.Unlock()
	}
}

// unsubscribe drops sub's subscription to uri.
func (s *subscriptions) unsubscribe(sub subscriber, uri string) {
	jobID, err := parseJobURI(uri)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.watchers[jobID]
	if w == nil || w.subs[sub] == nil {
		return
	}
	delete(w.subs[sub], uri)
	if len(w.subs[sub]) == 0 {
		delete(w.subs, sub)
	}
	s.stopIfUnwatched(w)
}

// dropWhere drops every subscription of the subscribers that match.
func (s *subscriptions) dropWhere(match func(subscriber) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.watchers {
		for sub := range w.subs {
			if match(sub) {
				delete(w.subs, sub)
			}
		}
		s.stopIfUnwatched(w)
	}
}

// stopIfUnwatched stops w when no one is subscribed to it. s.mu is held.
func (s *subscriptions) stopIfUnwatched(w *watcher) {
	if len(w.subs) == 0 && s.watchers[w.jobID] == w {
		delete(s.watchers, w.jobID)
		w.cancel()
	}
}

// notification is one notifications/resources/updated to send.
type notification struct {
	to  subscriber
	uri string
}

// send delivers notifications outside s.mu (sending never blocks, but
// mcp-go takes its own locks). A subscriber whose session is gone is
// dropped; one whose queue is full misses this notification, and the next
// change's tells it to read again.
func (s *subscriptions) send(jobID string, ns []notification) {
	for _, n := range ns {
		err := n.to.send(n.uri)
		switch {
		case err == nil:
		case errors.Is(err, server.ErrSessionNotFound), errors.Is(err, server.ErrSessionNotInitialized):
			s.dropWhere(func(sub subscriber) bool { return sub == n.to })
		default:
			s.logger.Warn("resource update not sent", "job", jobID, "uri", n.uri, "error", err)
		}
	}
}

// notifications lists what to send for a change of w's job, by
// subscriber, URIs in order. s.mu is held.
func (w *watcher) notifications() []notification {
	var ns []notification
	for sub, uris := range w.subs {
		sorted := make([]string, 0, len(uris))
		for uri := range uris {
			sorted = append(sorted, uri)
		}
		slices.Sort(sorted)
		for _, uri := range sorted {
			ns = append(ns, notification{to: sub, uri: uri})
		}
	}
	return ns
}
