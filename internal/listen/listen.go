// Package listen holds the one rule every millrace network listener
// follows (the MCP server's --http, millrace dev --mcp, --metrics): bind
// loopback unless told otherwise, and then demand a bearer token. Keeping it
// in one place keeps the listeners from drifting apart.
package listen

import (
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"strings"
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
