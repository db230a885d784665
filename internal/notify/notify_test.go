package notify

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
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

func TestSignVerify(t *testing.T) {
	body := []byte(`{"job_id":"nb-1"}`)
	sig := Sign([]byte("k"), body)
	// Computed independently: printf '{"job_id":"nb-1"}' | openssl dgst -sha256 -hmac k
	if sig != "sha256=cce50dba9a873dfbe34319f3b195280b334eac1cf323fd4b0a9395360c47abf8" {
		t.Fatalf("signature %q", sig)
	}
	if !Verify([]byte("k"), body, sig) || Verify([]byte("other"), body, sig) || Verify([]byte("k"), append(body, ' '), sig) {
		t.Error("Verify accepts what it should not, or refuses the right signature")
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
		got, err := Post(context.Background(), Client, d)
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
	if _, err := Post(context.Background(), Client, d); err == nil || errors.As(err, new(*RejectedError)) {
		t.Errorf("receiver down: %v, want a retryable error", err)
	}
}
