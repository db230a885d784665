package main

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestUIForwardsTheCallersToken serves the UI beside a frontend that wants
// a token: the UI's pages are there for anyone, its API answers only a
// request that carries the token, which it passes on to the frontend.
func TestUIForwardsTheCallersToken(t *testing.T) {
	ui := mustFreePort(t)
	in := start(t, "--auth-token-file", writeToken(t, 0o600), "--ui-port", strconv.Itoa(ui), "--ui-codec-endpoint", "http://127.0.0.1:1/codec")
	if !strings.Contains(in.ready, " ui=127.0.0.1:"+strconv.Itoa(ui)) {
		t.Errorf("ready line %q does not name the UI", in.ready)
	}
	base := "http://127.0.0.1:" + strconv.Itoa(ui)
	get := func(path, token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/", ""); code != http.StatusOK || !strings.Contains(body, "<html") {
		t.Errorf("the UI's page: %d %.200s", code, body)
	}
	if code, body := get("/api/v1/settings", ""); code != http.StatusOK || !strings.Contains(body, `"Endpoint":"http://127.0.0.1:1/codec"`) {
		t.Errorf("settings: %d %s: want the codec endpoint", code, body)
	}
	list := "/api/v1/namespaces/default/workflows"
	for name, tok := range map[string]string{"no token": "", "wrong token": strings.Repeat("f", len(testToken))} {
		if code, body := get(list, tok); code == http.StatusOK || !strings.Contains(body, "unauthorized") {
			t.Errorf("%s: list = %d %s, want the frontend's refusal", name, code, body)
		}
	}
	if code, body := get(list, testToken); code != http.StatusOK {
		t.Errorf("with the token: list = %d %s", code, body)
	}
}
