package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"go.temporal.io/sdk/client"

	"millrace/internal/listen"
)

// Path is where the page is served.
const Path = "/metrics"

// TokenEnv names the environment variable holding the bearer token scrapers
// must send. It is read from the environment only, never from a flag, so
// it does not show in the process list.
const TokenEnv = "MILLRACE_METRICS_TOKEN"

// Server serves a Registry at Path. A nil *Server is what Start returns when
// no address is configured: its Handler is nil (the SDK then records
// nothing) and Close does nothing, so callers need no branches.
type Server struct {
	Registry *Registry
	ln       net.Listener
	hs       *http.Server
	done     chan struct{}
}

// Start serves a new registry on addr (host:port, :port or a port; no host
// means 127.0.0.1) until Close. An address that is not loopback is refused
// without a token; with a token, every scrape must send it as a bearer
// token. Start returns nil, nil when addr is "".
func Start(addr, token string, logger *slog.Logger) (*Server, error) {
	if addr == "" {
		return nil, nil
	}
	if logger == nil {
		logger = slog.Default()
	}
	resolved, loopback, err := listen.Addr(addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics %w", err)
	}
	if !loopback && token == "" {
		return nil, fmt.Errorf("refusing to serve metrics on %s, which is not a loopback address, without a token: set %s (scrapers send it as a bearer token), or bind 127.0.0.1", resolved, TokenEnv)
	}
	ln, err := net.Listen("tcp", resolved)
	if err != nil {
		return nil, fmt.Errorf("--metrics: %w", err)
	}
	reg := NewRegistry(logger)
	mux := http.NewServeMux()
	mux.Handle(Path, guard(reg.HTTPHandler(), token))
	s := &Server{
		Registry: reg,
		ln:       ln,
		hs:       listen.NewServer(mux),
		done:     make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics listener stopped", "error", err)
		}
	}()
	auth := "no token (loopback only)"
	if token != "" {
		auth = "bearer token required"
	}
	logger.Info("serving Prometheus metrics", "url", s.URL(), "auth", auth)
	return s, nil
}

// guard demands the bearer token when one is set.
func guard(next http.Handler, token string) http.Handler {
	if token == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !listen.Authorized(r, token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="millrace"`)
			http.Error(w, "Unauthorized: send Authorization: Bearer <"+TokenEnv+">", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Handler is the metrics handler for client.Options and the MCP server;
// nil when s is nil.
func (s *Server) Handler() client.MetricsHandler {
	if s == nil {
		return nil
	}
	return s.Registry.Handler()
}

// URL is the page's address (with the real port when :0 was asked for).
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() + Path }

// Close stops tally's reporting loop and the listener.
func (s *Server) Close() error {
	if s == nil {
		return nil
	}
	err := s.Registry.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := s.hs.Shutdown(ctx); serr != nil {
		_ = s.hs.Close()
	}
	<-s.done
	return err
}
