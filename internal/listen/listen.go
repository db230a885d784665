// Package listen holds the one rule every millrace network listener
// follows (the MCP server's --http, millrace dev --mcp, --metrics): bind
// loopback unless told otherwise, and then demand a bearer token. Keeping it
// in one place keeps the listeners from drifting apart.
package listen

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// Addr resolves a listener flag's value (host:port, :port or a bare port)
// to a host:port, binding 127.0.0.1 when no host is given, and says whether
// it is loopback only.
func Addr(s string) (string, bool, error) {
	if !strings.Contains(s, ":") {
		s = ":" + s
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", false, fmt.Errorf("%q: want host:port, :port or a port: %w", s, err)
	}
	if port == "" {
		return "", false, fmt.Errorf("%q: no port", s)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), IsLoopbackHost(host), nil
}

// IsLoopbackHost reports whether host (a name or an IP, without port)
// names this machine's loopback interface.
func IsLoopbackHost(host string) bool {
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Authorized reports whether r carries "Authorization: Bearer <token>",
// compared in constant time so the token cannot be guessed byte by byte.
func Authorized(r *http.Request, token string) bool {
	scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(token)) == 1
}

// Limits every millrace HTTP listener applies, so that no client (a slow
// one, an idle one or a malicious one) can hold memory or a connection
// without bound.
const (
	// ReadHeaderTimeout cuts a client that has not finished its request
	// headers (a slowloris).
	ReadHeaderTimeout = 10 * time.Second
	// IdleTimeout closes a keep-alive connection with no request in
	// flight. An open response (the MCP event stream) is a request in
	// flight, so it is not cut.
	IdleTimeout = 30 * time.Second
	// BodyReadTimeout bounds the reading of one request body. It is set per
	// request, not as http.Server.ReadTimeout, which would also cut
	// long-lived event streams.
	BodyReadTimeout = 30 * time.Second
	// MaxHeaderBytes bounds request headers.
	MaxHeaderBytes = 64 << 10
)

// NewServer returns an http.Server for h with the limits above. There is no
// WriteTimeout: it would end the MCP event stream, which stays open for as
// long as its client listens.
func NewServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
	}
}

// ErrBodyTooLarge is what ReadBody returns for a body over its limit.
var ErrBodyTooLarge = errors.New("request body too large")

// ReadBody reads r's whole body, at most limit bytes, within
// BodyReadTimeout, and puts it back as r.Body for the next handler. A body
// that is larger (by its Content-Length, or as it is read) is refused with
// ErrBodyTooLarge before more than limit+1 bytes are held in memory.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64) error {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	if r.ContentLength > limit {
		return ErrBodyTooLarge
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(BodyReadTimeout))
	// Cleared afterwards: a streamed answer must not be cut by it.
	defer func() { _ = rc.SetReadDeadline(time.Time{}) }()
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return fmt.Errorf("read request body: %w", err)
	}
	if int64(len(body)) > limit {
		return ErrBodyTooLarge
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return nil
}
