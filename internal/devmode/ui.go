package devmode

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/converter"

	"millrace/internal/codec"
	"millrace/internal/listen"
)

// The Temporal Web UI of the dev service.
//
// millrace-temporal serves the UI (ui-server) on an ephemeral loopback port
// and holds no credential for it: each of its API calls reaches the frontend
// with the Authorization header of the HTTP request behind it. The dev
// service owns the listener the user's browser talks to, because it alone
// has the two secrets a browser session needs: the frontend's token and the
// payload codec's key. That listener
//   - lets in only a browser that has shown the token once, as Jupyter does:
//     /?token=T sets an HttpOnly, SameSite=Strict cookie and redirects to
//     strip the token from the address bar and history;
//   - refuses every request whose Host is not 127.0.0.1:<port> or
//     localhost:<port> (DNS rebinding), and every request that may change
//     something (not GET or HEAD) unless it comes from its own origin
//     (Origin, else Sec-Fetch-Site), even with the cookie: a page of another
//     site may make the browser send it, never read the answer;
//   - serves the codec endpoint the UI's pages post payloads to (/codec/decode,
//     /codec/encode), so memos, results and heartbeat details show as JSON
//     while the server still holds only ciphertext;
//   - passes everything else to ui-server with "Authorization: Bearer
//     <token>", and without its own cookie;
//   - adds a script to the UI's page that makes a job's search attributes
//     columns of the workflow list (ui_columns.go).
// The cookie is derived from the token, so it outlives a restart as the
// token and the port do, and an open tab goes on working.

const (
	// DefaultUIPort is the UI's port when it is free: the one
	// `temporal server start-dev` uses, so a user's habits carry over.
	DefaultUIPort = 8233
	// uiPortName is the file under the dev folder remembering the UI's port.
	uiPortName = "ui-port"
	// uiCookie names the session cookie.
	uiCookie = "millrace_ui"
	// uiBodyLimit bounds a request body: the UI posts small JSON (a query,
	// a signal, payloads to decode).
	uiBodyLimit = 4 << 20
	// uiUpstreamTimeout bounds ui-server's answer to one request.
	uiUpstreamTimeout = 2 * time.Minute
)

// UIURL is the address a user opens: the UI's base URL with the token that
// lets the browser in. It is empty when the service serves no UI.
func UIURL(st State) (string, error) {
	if st.UI == "" {
		return "", nil
	}
	tok, err := readToken(st.DataDir)
	if err != nil {
		return "", err
	}
	return st.UI + "/?token=" + url.QueryEscape(tok), nil
}

func readToken(dataDir string) (string, error) {
	b, err := os.ReadFile(TokenFile(dataDir))
	if err != nil {
		return "", fmt.Errorf("read the dev service's token: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// uiPort returns the UI's port: the one used before when it is free, else
// DefaultUIPort or the next free port above it.
func uiPort(dir string) (int, error) { return stablePort(dir, uiPortName, DefaultUIPort) }

// uiBase is the UI's address without the token.
func uiBase(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }

// uiArgs are millrace-temporal's flags serving ui-server on the loopback
// port inner, its pages posting payloads to the codec of the listener on
// public.
func uiArgs(inner, public int) []string {
	return []string{"--ui-port", strconv.Itoa(inner), "--ui-ip", "127.0.0.1", "--ui-codec-endpoint", uiBase(public) + "/codec"}
}

// innerUIPort returns a free loopback port for ui-server. A process may take
// it before the server binds it; the server then exits at start, and Serve
// starts it again, as for its other ports.
func innerUIPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// uiServer is the dev service's UI listener.
type uiServer struct {
	http *http.Server
	l    net.Listener
}

// startUI listens on 127.0.0.1:port and serves the UI of the ui-server at
// inner, the codec at /codec with the key file's codec.
func startUI(port int, inner, token, namespace, keyFile string, logger *slog.Logger) (*uiServer, error) {
	c, err := codec.Load(keyFile)
	if err != nil {
		return nil, err
	}
	h, err := newUIHandler(port, inner, token, namespace, c)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("listen for the UI: %w", err)
	}
	s := listen.NewServer(h)
	// The UI's pages poll; none of its answers streams, so unlike the MCP
	// listener this one can bound a response too.
	s.WriteTimeout = uiUpstreamTimeout + 10*time.Second
	s.ErrorLog = slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
	go func() {
		if err := s.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Warn("the UI listener stopped", "error", err)
		}
	}()
	return &uiServer{http: s, l: l}, nil
}

// Close stops the listener, giving requests in flight a moment.
func (u *uiServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return u.http.Shutdown(ctx)
}

// uiHandler is the UI listener's handler (see the comment at the top).
type uiHandler struct {
	hosts   map[string]bool // the Host values accepted
	token   string
	cookie  string // the session cookie's value
	codec   http.Handler
	proxy   *httputil.ReverseProxy
	columns []byte // columnsScript for the service's namespace
}

func newUIHandler(port int, inner, token, namespace string, c converter.PayloadCodec) (*uiHandler, error) {
	target, err := url.Parse("http://" + inner)
	if err != nil {
		return nil, err
	}
	p := strconv.Itoa(port)
	h := &uiHandler{
		hosts:   map[string]bool{"127.0.0.1:" + p: true, "localhost:" + p: true},
		token:   token,
		cookie:  uiCookieValue(token),
		codec:   http.StripPrefix("/codec", converter.NewPayloadCodecHTTPHandler(c)),
		columns: columnsScript(namespace),
	}
	h.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			// ui-server sees the browser's Host, as if it served it.
			r.Out.Host = r.In.Host
			r.Out.Header.Set("Authorization", "Bearer "+token)
			dropCookie(r.Out, uiCookie)
			// The transport asks for gzip itself and hands over the page
			// uncompressed, for addColumnsScript; loopback needs no gzip.
			r.Out.Header.Del("Accept-Encoding")
		},
		ModifyResponse: addColumnsScript,
		Transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			ResponseHeaderTimeout: uiUpstreamTimeout,
			MaxIdleConns:          16,
			IdleConnTimeout:       listen.IdleTimeout,
		},
	}
	return h, nil
}

// uiCookieValue derives the session cookie from the token: a cookie that
// leaks (a browser profile copied) is not the frontend's token itself.
func uiCookieValue(token string) string {
	sum := sha256.Sum256([]byte("millrace ui session\x00" + token))
	return hex.EncodeToString(sum[:])
}

func (h *uiHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.hosts[strings.ToLower(r.Host)] {
		http.Error(w, "unknown host: open the address `millrace ui` prints", http.StatusMisdirectedRequest)
		return
	}
	if tok, ok := r.URL.Query()["token"]; ok {
		h.login(w, r, tok)
		return
	}
	if !h.hasCookie(r) {
		http.Error(w, "not signed in: open the address `millrace ui` or `millrace dev status` prints (it carries the token)", http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if !h.sameOrigin(r) {
			http.Error(w, "cross-origin request refused", http.StatusForbidden)
			return
		}
		if err := listen.ReadBody(w, r, uiBodyLimit); err != nil {
			status := http.StatusBadRequest
			if errors.Is(err, listen.ErrBodyTooLarge) {
				status = http.StatusRequestEntityTooLarge
			}
			http.Error(w, err.Error(), status)
			return
		}
	}
	if strings.HasPrefix(r.URL.Path, "/codec/") {
		h.codec.ServeHTTP(w, r)
		return
	}
	if r.URL.Path == uiColumnsPath {
		h.serveColumns(w)
		return
	}
	h.proxy.ServeHTTP(w, r)
}

// login exchanges a right token for the cookie and redirects to the same
// address without it; a wrong one is refused.
func (h *uiHandler) login(w http.ResponseWriter, r *http.Request, tok []string) {
	if len(tok) != 1 || subtle.ConstantTimeCompare([]byte(tok[0]), []byte(h.token)) != 1 {
		http.Error(w, "wrong token: open the address `millrace ui` prints", http.StatusForbidden)
		return
	}
	// The address with the token must not stay in a cache or leave in a
	// Referer.
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.SetCookie(w, &http.Cookie{
		Name: uiCookie, Value: h.cookie, Path: "/",
		HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
	q := r.URL.Query()
	q.Del("token")
	to := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
	if to.Path == "" {
		to.Path = "/"
	}
	http.Redirect(w, r, to.String(), http.StatusSeeOther)
}

func (h *uiHandler) hasCookie(r *http.Request) bool {
	for _, c := range r.CookiesNamed(uiCookie) {
		if subtle.ConstantTimeCompare([]byte(c.Value), []byte(h.cookie)) == 1 {
			return true
		}
	}
	return false
}

// sameOrigin reports whether a request comes from a page of this listener:
// its Origin names one of the accepted hosts, or, with no Origin, the
// browser marks it same-origin. A request with neither is refused: every
// browser this UI supports sends one of them on a POST.
func (h *uiHandler) sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		return err == nil && u.Scheme == "http" && h.hosts[strings.ToLower(u.Host)] && u.Path == ""
	}
	return r.Header.Get("Sec-Fetch-Site") == "same-origin"
}

// dropCookie removes the cookie name from r's Cookie headers.
func dropCookie(r *http.Request, name string) {
	cookies := r.Cookies()
	r.Header.Del("Cookie")
	for _, c := range cookies {
		if c.Name != name {
			r.AddCookie(c)
		}
	}
}
