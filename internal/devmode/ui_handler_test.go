package devmode

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"

	"millrace/internal/codec"
	"millrace/workflows"
)

// upstream stands in for ui-server: it records what reached it.
type upstream struct {
	got *http.Request
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.got = r
	if r.URL.Path == "/page" { // the UI's page
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, uiTestPage)
		return
	}
	io.WriteString(w, "ui-server "+r.URL.Path)
}

const uiTestPage = `<!doctype html><html><head><title>Temporal</title></head><body></body></html>`

func newTestUI(t *testing.T) (*uiHandler, *upstream, *codec.Codec, string) {
	t.Helper()
	up := &upstream{}
	inner := httptest.NewServer(up)
	t.Cleanup(inner.Close)
	keyFile := filepath.Join(t.TempDir(), "codec.key")
	if _, err := codec.Create(keyFile); err != nil {
		t.Fatal(err)
	}
	c, err := codec.Load(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	token := strings.Repeat("ab", 32)
	h, err := newUIHandler(8233, strings.TrimPrefix(inner.URL, "http://"), token, "default", c)
	if err != nil {
		t.Fatal(err)
	}
	return h, up, c, token
}

func serve(h http.Handler, method, target string, body io.Reader, header map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, body)
	r.Host = "127.0.0.1:8233"
	for k, v := range header {
		if k == "Host" {
			r.Host = v
			continue
		}
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestUITokenBecomesACookie(t *testing.T) {
	h, up, _, token := newTestUI(t)
	if w := serve(h, "GET", "/namespaces/default/workflows", nil, nil); w.Code != http.StatusUnauthorized || up.got != nil {
		t.Fatalf("without the token: %d, upstream reached %v; want 401 and nothing upstream", w.Code, up.got != nil)
	}
	if w := serve(h, "GET", "/?token=wrong", nil, nil); w.Code != http.StatusForbidden || len(w.Result().Cookies()) != 0 {
		t.Fatalf("wrong token: %d cookies %v, want 403 and no cookie", w.Code, w.Result().Cookies())
	}
	w := serve(h, "GET", "/namespaces/default/workflows?token="+token+"&x=1", nil, nil)
	if w.Code != http.StatusSeeOther {
		t.Fatalf("right token: %d, want 303", w.Code)
	}
	if loc := w.Header().Get("Location"); loc != "/namespaces/default/workflows?x=1" {
		t.Errorf("redirect to %q: want the same address without the token", loc)
	}
	if w.Header().Get("Referrer-Policy") != "no-referrer" || w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("the sign-in answer may be cached or leak its address: %v", w.Header())
	}
	cookies := w.Result().Cookies()
	if len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode || cookies[0].Path != "/" {
		t.Fatalf("cookies %+v: want one HttpOnly SameSite=Strict cookie for /", cookies)
	}
	if strings.Contains(cookies[0].Value, token) {
		t.Errorf("the cookie holds the token itself")
	}
	cookie := uiCookie + "=" + cookies[0].Value
	w = serve(h, "GET", "/namespaces/default/workflows", nil, map[string]string{"Cookie": cookie + "; _csrf=c", "Authorization": "Bearer forged"})
	if w.Code != http.StatusOK || up.got == nil {
		t.Fatalf("with the cookie: %d %s, want ui-server's answer", w.Code, w.Body)
	}
	if got := up.got.Header.Get("Authorization"); got != "Bearer "+token {
		t.Errorf("ui-server got Authorization %q, want the service's token", got)
	}
	if got := up.got.Header.Get("Cookie"); got != "_csrf=c" {
		t.Errorf("ui-server got cookies %q, want ui-server's own only", got)
	}
	if up.got.Host != "127.0.0.1:8233" {
		t.Errorf("ui-server got Host %q, want the browser's", up.got.Host)
	}
}

func TestUIRefusesForeignHostsAndCrossOriginWrites(t *testing.T) {
	h, up, _, token := newTestUI(t)
	cookie := uiCookie + "=" + uiCookieValue(token)
	for _, c := range []struct {
		name   string
		method string
		header map[string]string
		want   int
	}{
		{"rebound host", "GET", map[string]string{"Host": "attacker.example:8233", "Cookie": cookie}, http.StatusMisdirectedRequest},
		{"another port", "GET", map[string]string{"Host": "127.0.0.1:9999", "Cookie": cookie}, http.StatusMisdirectedRequest},
		{"cross-origin POST", "POST", map[string]string{"Cookie": cookie, "Origin": "https://attacker.example"}, http.StatusForbidden},
		{"origin of another port", "POST", map[string]string{"Cookie": cookie, "Origin": "http://127.0.0.1:9999"}, http.StatusForbidden},
		{"cross-site POST without Origin", "POST", map[string]string{"Cookie": cookie, "Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"POST with neither", "POST", map[string]string{"Cookie": cookie}, http.StatusForbidden},
		{"same-origin POST without the cookie", "POST", map[string]string{"Origin": "http://127.0.0.1:8233"}, http.StatusUnauthorized},
		{"same-origin POST", "POST", map[string]string{"Cookie": cookie, "Origin": "http://127.0.0.1:8233"}, http.StatusOK},
		{"localhost POST", "POST", map[string]string{"Host": "localhost:8233", "Cookie": cookie, "Origin": "http://localhost:8233"}, http.StatusOK},
		{"same-origin POST by Sec-Fetch-Site", "POST", map[string]string{"Cookie": cookie, "Sec-Fetch-Site": "same-origin"}, http.StatusOK},
	} {
		up.got = nil
		w := serve(h, c.method, "/api/v1/namespaces/default/workflows/x/cancel", strings.NewReader("{}"), c.header)
		if w.Code != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, w.Code, strings.TrimSpace(w.Body.String()), c.want)
		}
		if reached := up.got != nil; reached != (c.want == http.StatusOK) {
			t.Errorf("%s: ui-server reached: %v", c.name, reached)
		}
	}
	big := strings.NewReader(strings.Repeat("x", uiBodyLimit+1))
	if w := serve(h, "POST", "/api/v1/x", big, map[string]string{"Cookie": cookie, "Origin": "http://127.0.0.1:8233"}); w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("a body over %d bytes: %d, want 413", uiBodyLimit, w.Code)
	}
}

func TestUICodecDecodesForTheSignedInBrowserOnly(t *testing.T) {
	h, _, c, token := newTestUI(t)
	sealed, err := c.Encode([]*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`{"cells_done":3}`)}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(sealed[0].GetData()), "cells_done") {
		t.Fatal("the test payload is not sealed")
	}
	body, _ := json.Marshal(map[string]any{"payloads": []map[string]any{{"metadata": sealed[0].GetMetadata(), "data": sealed[0].GetData()}}})
	post := func(header map[string]string) *httptest.ResponseRecorder {
		return serve(h, "POST", "/codec/decode", strings.NewReader(string(body)), header)
	}
	if w := post(map[string]string{"Origin": "http://127.0.0.1:8233", "X-Namespace": "default"}); w.Code != http.StatusUnauthorized {
		t.Errorf("decode without the cookie: %d, want 401", w.Code)
	}
	cookie := uiCookie + "=" + uiCookieValue(token)
	if w := post(map[string]string{"Cookie": cookie, "Origin": "https://attacker.example"}); w.Code != http.StatusForbidden {
		t.Errorf("cross-origin decode: %d, want 403", w.Code)
	}
	w := post(map[string]string{"Cookie": cookie, "Origin": "http://127.0.0.1:8233", "X-Namespace": "default", "Content-Type": "application/json"})
	if w.Code != http.StatusOK {
		t.Fatalf("decode: %d %s", w.Code, w.Body)
	}
	var out commonpb.Payloads
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || len(out.Payloads) != 1 || string(out.Payloads[0].GetData()) != `{"cells_done":3}` {
		t.Fatalf("decoded %s (%v): want the heartbeat's JSON", w.Body, err)
	}
}

func TestStablePortPrefersTheRememberedThenTheFirstFree(t *testing.T) {
	dir := t.TempDir()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	first := busy.Addr().(*net.TCPAddr).Port
	p, err := stablePort(dir, "ui-port", first)
	if err != nil {
		t.Fatal(err)
	}
	if p == first {
		t.Fatalf("got the busy port %d", p)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "ui-port"))
	if strings.TrimSpace(string(b)) != strconv.Itoa(p) {
		t.Errorf("remembered %q, want %d", b, p)
	}
	if again, _ := stablePort(dir, "ui-port", first); again != p {
		t.Errorf("next start: port %d, want the remembered %d", again, p)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "ui-port")); fi.Mode().Perm() != 0o600 {
		t.Errorf("port file mode %#o, want 0600", fi.Mode().Perm())
	}
}

// TestUIPageGetsTheColumnsScript: the UI's page (and nothing else) gets the
// script that stores millrace's list columns, served behind the cookie.
func TestUIPageGetsTheColumnsScript(t *testing.T) {
	h, up, _, token := newTestUI(t)
	signedIn := map[string]string{"Cookie": uiCookie + "=" + uiCookieValue(token), "Accept-Encoding": "br, zstd"}
	page := serve(h, "GET", "/page", nil, signedIn)
	want := `<head><script src="` + uiColumnsPath + `"></script><title>`
	if page.Code != http.StatusOK || !strings.Contains(page.Body.String(), want) {
		t.Fatalf("the UI's page: %d %q, want it to hold %q", page.Code, page.Body.String(), want)
	}
	if n := page.Header().Get("Content-Length"); n != strconv.Itoa(page.Body.Len()) {
		t.Errorf("Content-Length %s for a %d-byte page", n, page.Body.Len())
	}
	// The browser's encodings stay here; the transport asks for gzip and
	// decompresses.
	if ae := up.got.Header.Get("Accept-Encoding"); ae != "gzip" {
		t.Errorf("ui-server was asked for %q, want the transport's gzip", ae)
	}
	if other := serve(h, "GET", "/api/v1/settings", nil, signedIn); other.Body.String() != "ui-server /api/v1/settings" {
		t.Errorf("a non-HTML answer changed: %q", other.Body.String())
	}
	js := serve(h, "GET", uiColumnsPath, nil, signedIn)
	for _, part := range []string{uiColumnsKey, `"default"`, `{"label":"` + workflows.AttrNotebook + `"}`, `{"label":"` + workflows.AttrBatchID + `"}`, "if (!all["} {
		if !strings.Contains(js.Body.String(), part) {
			t.Errorf("the columns script lacks %s:\n%s", part, js.Body.String())
		}
	}
	if ct := js.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
		t.Errorf("the script's Content-Type is %q", ct)
	}
	if w := serve(h, "GET", uiColumnsPath, nil, nil); w.Code != http.StatusUnauthorized {
		t.Errorf("the script without the cookie: %d, want 401", w.Code)
	}
}
