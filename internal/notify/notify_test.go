package notify

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os/exec"
	"strings"
	"testing"
)

func TestAllowed(t *testing.T) {
	allow := []string{"hooks.example.com", "*.corp.test", "127.0.0.1:8080", "[::1]"}
	for raw, want := range map[string]bool{
		"https://hooks.example.com/x":      true,
		"http://HOOKS.example.com:9000/x":  true, // any port when the entry has none
		"https://a.b.corp.test/x":          true,
		"https://corp.test/x":              false, // *.corp.test is subdomains only
		"https://evilcorp.test/x":          false,
		"http://127.0.0.1:8080/x":          true,
		"http://127.0.0.1:8081/x":          false,
		"http://127.0.0.1/x":               false, // port 80 is not 8080
		"http://[::1]:5/x":                 true,
		"https://hooks.example.com.evil/x": false,
	} {
		u, _ := url.Parse(raw)
		if got := Allowed(u, allow); got != want {
			t.Errorf("Allowed(%s) = %v, want %v", raw, got, want)
		}
	}
	u, _ := url.Parse("https://anything.test/")
	if !Allowed(u, []string{"*"}) {
		t.Error(`"*" should allow any host`)
	}
}

func TestCheckURL(t *testing.T) {
	allow := []string{"hooks.test"}
	if err := CheckURL("https://hooks.test/a?b=c", allow); err != nil {
		t.Error(err)
	}
	for raw, want := range map[string]string{
		"file:///etc/passwd":         "only http and https",
		"https://u:p@hooks.test/":    "credentials",
		"https://other.test/":        "not in the allow-list",
		"https:///x":                 "no host",
		"%%%":                        "not a URL",
		"javascript:alert(1)":        "only http and https",
		"https://hooks.test:99999/x": "",
	} {
		err := CheckURL(raw, allow)
		if want == "" {
			continue // the port is the receiver's business
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckURL(%q) = %v, want %q", raw, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "u:p") {
			t.Errorf("the error repeats the credentials: %v", err)
		}
	}
	if err := CheckURL("https://hooks.test/", nil); err == nil || !strings.Contains(err.Error(), "MILLRACE_NOTIFY_ALLOW") {
		t.Errorf("empty allow-list: %v", err)
	}
}

// TestSignVerify checks the signature against openssl's HMAC of the
// same "timestamp.body" string, an implementation millrace does not share.
func TestSignVerify(t *testing.T) {
	body := []byte(`{"job_id":"nb-1"}`)
	const ts = "1700000000"
	sig := Sign([]byte("k"), ts, body)
	cmd := exec.Command("openssl", "dgst", "-sha256", "-hmac", "k")
	cmd.Stdin = strings.NewReader(ts + "." + string(body))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl: %v", err)
	}
	// openssl prints "HMAC-SHA2-256(stdin)= <hex>" (older: "(stdin)= <hex>").
	f := strings.Fields(string(out))
	if want := "sha256=" + f[len(f)-1]; sig != want {
		t.Fatalf("signature %q, openssl says %q", sig, want)
	}
	if !Verify([]byte("k"), ts, body, sig) || Verify([]byte("other"), ts, body, sig) ||
		Verify([]byte("k"), ts, append(body, ' '), sig) || Verify([]byte("k"), "1700000001", body, sig) {
		t.Error("Verify accepts what it should not, or refuses the right signature")
	}
}

func TestRedact(t *testing.T) {
	for raw, want := range map[string]string{
		"https://hooks.test/t/SECRET?k=SECRET": "https://hooks.test/…",
		"http://hooks.test:8080":               "http://hooks.test:8080",
		"http://hooks.test/":                   "http://hooks.test",
		"https://u:SECRET@hooks.test/":         "https://hooks.test",
		"https://hooks.test?SECRET":            "https://hooks.test/…",
		"%%%SECRET":                            "(a notify_url that is not a URL)",
	} {
		if got := Redact(raw); got != want {
			t.Errorf("Redact(%q) = %q, want %q", raw, got, want)
		}
	}
}

// loopback lets deliveries reach the test's receivers on 127.0.0.1.
var loopback = NewClient(mustNetworks("127.0.0.1/32"))

func mustNetworks(list ...string) Networks {
	n, err := ParseNetworks(list)
	if err != nil {
		panic(err)
	}
	return n
}

// TestDialRefusesNonPublic: a name that resolves to loopback is refused
// when the connection is made (the receiver sees nothing), unless the
// operator allows that address; the allow-list's host check alone would
// have let "localhost" through.
func TestDialRefusesNonPublic(t *testing.T) {
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++ }))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	d := Delivery{URL: "http://localhost:" + u.Port() + "/hook?token=SECRET", Body: []byte("{}"), Secret: []byte("k")}
	for _, c := range []struct {
		allow []string
		want  string
	}{
		{nil, "refused to connect to 127.0.0.1, a loopback address"},
		{[]string{"10.0.0.0/8", "::1"}, "refused to connect"},
	} {
		_, err := Post(context.Background(), NewClient(mustNetworks(c.allow...)), d)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), AllowPrivateEnv) {
			t.Errorf("allow %v: %v, want %q naming %s", c.allow, err, c.want, AllowPrivateEnv)
		}
		if err != nil && strings.Contains(err.Error(), "SECRET") {
			t.Errorf("the error shows the URL's secret: %v", err)
		}
	}
	if hits != 0 {
		t.Fatalf("the receiver got %d requests through a refused dial", hits)
	}
	for _, allow := range [][]string{{"127.0.0.0/8"}, {"*"}} {
		if _, err := Post(context.Background(), NewClient(mustNetworks(allow...)), d); err != nil {
			t.Errorf("allowed by %v: %v", allow, err)
		}
	}
	for _, a := range []string{"169.254.169.254", "10.1.2.3", "192.168.0.1", "172.16.0.1", "100.64.0.1", "0.0.0.0", "224.0.0.1", "fc00::1", "fe80::1", "::1", "::ffff:127.0.0.1"} {
		if nonPublic(netip.MustParseAddr(a)) == "" {
			t.Errorf("%s counted as public", a)
		}
	}
	for _, a := range []string{"8.8.8.8", "2001:4860:4860::8888", "93.184.216.34"} {
		if k := nonPublic(netip.MustParseAddr(a)); k != "" {
			t.Errorf("%s counted as %s", a, k)
		}
	}
	if _, err := ParseNetworks([]string{"10.0.0.0/33"}); err == nil {
		t.Error("a bad prefix was accepted")
	}
}

// TestReceiverAnswerNotShown: nothing a receiver says (its body, its
// reason phrase) reaches the error that clients see.
func TestReceiverAnswerNotShown(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte("INTERNAL-SECRET-FROM-RECEIVER"))
	}))
	defer srv.Close()
	_, err := Post(context.Background(), loopback, Delivery{URL: srv.URL, Body: []byte("{}"), Secret: []byte("k")})
	if err == nil || strings.Contains(err.Error(), "INTERNAL-SECRET") || !strings.Contains(err.Error(), "400 Bad Request") {
		t.Fatalf("error %v: want the status only", err)
	}
}

func TestPostClassifiesAnswers(t *testing.T) {
	code := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if code == http.StatusFound {
			http.Redirect(w, r, "http://elsewhere.test/", code)
			return
		}
		w.WriteHeader(code)
	}))
	defer srv.Close()
	d := Delivery{URL: srv.URL, Body: []byte("{}"), Secret: []byte("k"), ID: "d1", Event: "run.ended"}
	for c, want := range map[int]string{200: "ok", 204: "ok", 503: "retry", 500: "retry", 429: "retry", 408: "retry", 404: "reject", 401: "reject", 302: "reject"} {
		code = c
		got, err := Post(context.Background(), loopback, d)
		var rejected *RejectedError
		switch {
		case want == "ok" && (err != nil || got != c):
			t.Errorf("%d: %d %v, want delivered", c, got, err)
		case want == "retry" && (err == nil || errors.As(err, &rejected)):
			t.Errorf("%d: %v, want a retryable error", c, err)
		case want == "reject" && !errors.As(err, &rejected):
			t.Errorf("%d: %v, want a RejectedError", c, err)
		}
	}
	srv.Close()
	if _, err := Post(context.Background(), loopback, d); err == nil || errors.As(err, new(*RejectedError)) {
		t.Errorf("receiver down: %v, want a retryable error", err)
	}
}
