package mcpserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"millrace/internal/listen"
)

// EndpointPath is where the streamable HTTP transport answers.
const EndpointPath = "/mcp"

// sessionIdleTTL is how long an HTTP session may stay silent before its
// state (and its stored events) is dropped.
const sessionIdleTTL = time.Hour

// MaxRequestBytes bounds the body of one HTTP request. A JSON-RPC message
// this large is already far beyond any tool's arguments (a batch of
// workflows.MaxBatchNodes nodes with parameters fits many times over);
// the body is read whole before anything parses it, so the limit is also
// what one request can make the server hold.
const MaxRequestBytes = 4 << 20

// HTTPOptions secure the streamable HTTP transport. mcp-go has no
// authentication of its own, so the handler is wrapped.
type HTTPOptions struct {
	// Token, when set, must come with every request as
	// "Authorization: Bearer <token>".
	Token string
	// AllowOrigins are browser origins (scheme://host[:port]) allowed
	// besides the server's own (http://127.0.0.1:<port>,
	// http://localhost:<port>, http://[::1]:<port>); "*" allows any.
	AllowOrigins []string
	Logger       *slog.Logger
}

// HTTPHandler serves s over streamable HTTP at EndpointPath. Requests from
// a browser page of a foreign origin get 403 (a web page must not drive
// local notebooks), requests without the token, when one is set, 401, and
// bodies over MaxRequestBytes 413. An event store keeps the notifications
// sent just before a tool returns, which mcp-go otherwise drops.
func HTTPHandler(s *server.MCPServer, opts HTTPOptions) http.Handler {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	mcpHTTP := server.NewStreamableHTTPServer(s,
		server.WithEndpointPath(EndpointPath),
		server.WithEventStore(server.NewInMemoryEventStore()),
		server.WithStreamableHTTPLogger(logger),
		// With an event store, a session's state outlives its client's
		// connection; reclaim sessions left without a DELETE.
		server.WithSessionIdleTTL(sessionIdleTTL),
	)
	mux := http.NewServeMux()
	mux.Handle(EndpointPath, withTasks(s, mcpHTTP))
	allowed := map[string]bool{}
	for _, o := range opts.AllowOrigins {
		allowed[normalizeOrigin(o)] = true
	}
	return &guard{next: mux, token: opts.Token, origins: allowed, logger: logger}
}

type guard struct {
	next    http.Handler
	token   string
	origins map[string]bool
	logger  *slog.Logger
}

func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if origin := r.Header.Get("Origin"); origin != "" && !g.originAllowed(r, origin) {
		g.logger.Warn("refused a request from a foreign origin", "origin", origin, "remote", r.RemoteAddr)
		http.Error(w, "Forbidden: origin "+origin+" is not allowed (start the server with --allow-origin to allow it)", http.StatusForbidden)
		return
	}
	if g.token != "" && !g.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="millrace"`)
		http.Error(w, "Unauthorized: send Authorization: Bearer <token>", http.StatusUnauthorized)
		return
	}
	// Read whole, within a bound, before mcp-go sees it: mcp-go reads a
	// body without limit.
	switch err := listen.ReadBody(w, r, MaxRequestBytes); {
	case errors.Is(err, listen.ErrBodyTooLarge):
		g.logger.Warn("refused an oversized request", "content_length", r.ContentLength, "remote", r.RemoteAddr)
		w.Header().Set("Connection", "close")
		http.Error(w, fmt.Sprintf("Request Entity Too Large: a request body may hold at most %d bytes (%d MiB)", MaxRequestBytes, MaxRequestBytes>>20), http.StatusRequestEntityTooLarge)
		return
	case err != nil:
		http.Error(w, "Bad Request: "+err.Error(), http.StatusBadRequest)
		return
	}
	g.next.ServeHTTP(w, r)
}

func (g *guard) authorized(r *http.Request) bool { return listen.Authorized(r, g.token) }

// originAllowed accepts the origins the operator listed and pages served
// by this server itself: a loopback host on the port the request came in
// on. Another local port is another program (a dev server, a page any
// local user started), which must not drive notebooks through this one.
func (g *guard) originAllowed(r *http.Request, origin string) bool {
	if g.origins["*"] || g.origins[normalizeOrigin(origin)] {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Scheme != "http" || !listen.IsLoopbackHost(u.Hostname()) {
		return false
	}
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	_, port, err := net.SplitHostPort(local.String())
	return err == nil && u.Port() == port
}

func normalizeOrigin(o string) string {
	return strings.ToLower(strings.TrimRight(strings.TrimSpace(o), "/"))
}

// ServeHTTP serves srv over streamable HTTP on addr until ctx ends, saying
// where on stderr. The millrace-mcp binary and `millrace dev --mcp` use it.
func ServeHTTP(ctx context.Context, srv *server.MCPServer, addr string, opts HTTPOptions, stderr io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	hs := listen.NewServer(HTTPHandler(srv, opts))
	// Said whatever the log level: the operator needs the address (the
	// port, when :0 was asked for).
	auth := "no token (loopback only)"
	if opts.Token != "" {
		auth = "bearer token required"
	}
	fmt.Fprintf(stderr, "millrace-mcp: serving MCP over streamable HTTP at http://%s%s (%s)\n", ln.Addr(), EndpointPath, auth)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Open event streams never end on their own: give requests a moment,
	// then close.
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		_ = hs.Close()
	}
	return nil
}

// ListenAddr resolves --http's value to a host:port to listen on, binding
// 127.0.0.1 when no host is given, and says whether it is loopback only.
func ListenAddr(s string) (string, bool, error) {
	addr, loopback, err := listen.Addr(s)
	if err != nil {
		return "", false, fmt.Errorf("--http %w", err)
	}
	return addr, loopback, nil
}
