package security_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"millrace/internal/devmode"
)

// The dev service's Web UI: its listener (127.0.0.1, the port `millrace ui`
// opens) lets in only a browser that showed the token, and ui-server's own
// port behind it holds no credential.

// uiClient makes requests as a browser would, without following redirects
// (a redirect is an answer to check).
var uiClient = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func uiDo(t *testing.T, method, target string, header map[string]string, body string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := uiClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b), resp.Header
}

// uiSession signs in with the token, as the user's browser does, and
// returns the Cookie header it got.
func uiSession(t *testing.T, d *devService) string {
	t.Helper()
	login, err := devmode.UIURL(d.st)
	if err != nil || login == "" {
		t.Fatalf("the dev service has no UI address: %q %v", login, err)
	}
	code, body, h := uiDo(t, "GET", login, nil, "")
	if code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d %s", code, body)
	}
	c := (&http.Response{Header: h}).Cookies()
	if len(c) != 1 {
		t.Fatalf("sign-in set cookies %v", c)
	}
	return c[0].Name + "=" + c[0].Value
}

func devServiceUI(t *testing.T, d *devService) {
	victim := startRun(t, d, "slow.ipynb")
	d.visible(t, victim)
	list := d.st.UI + "/api/v1/namespaces/" + d.st.Namespace + "/workflows"
	cancel := d.st.UI + "/api/v1/namespaces/" + d.st.Namespace + "/workflows/" + victim + "/cancel"
	cookie := uiSession(t, d)
	// The control: the signed-in browser, from the UI's own pages, lists
	// the runs. Every refusal below is a refusal, not a broken UI.
	if code, body, _ := uiDo(t, "GET", list, map[string]string{"Cookie": cookie}, ""); code != http.StatusOK || !strings.Contains(body, victim) {
		t.Fatalf("the signed-in browser cannot list runs: %d %s", code, body)
	}

	t.Run("without the token", func(t *testing.T) {
		o := attack(t, "a local process or a web page opens the dev service's Web UI (its pages, its API, its codec endpoint) without the token, or with a wrong one")
		before := d.workflowIDs(t)
		var saw []string
		for _, try := range []struct{ label, method, target string }{
			{"the UI", "GET", d.st.UI + "/"},
			{"the run list", "GET", list},
			{"cancel", "POST", cancel},
			{"the codec's decode", "POST", d.st.UI + "/codec/decode"},
			{"a wrong token", "GET", d.st.UI + "/?token=" + strings.Repeat("0", 64)},
		} {
			code, body, h := uiDo(t, try.method, try.target, map[string]string{"Origin": d.st.UI}, `{"payloads":[]}`)
			if code != http.StatusUnauthorized && code != http.StatusForbidden || strings.Contains(body, victim) || h.Get("Set-Cookie") != "" {
				t.Errorf("%s: %d %s (cookie %q)", try.label, code, body, h.Get("Set-Cookie"))
			}
			saw = append(saw, fmt.Sprintf("%s %d", try.label, code))
		}
		checkUntouched(t, d, victim, before)
		o.saw("%s; no cookie set, the run not canceled", strings.Join(saw, ", "))
	})

	t.Run("cross-origin POST with the user's cookie", func(t *testing.T) {
		o := attack(t, "a web page the signed-in user opens makes the browser POST to the Web UI (cancel a run, decode payloads through the codec endpoint): cross-origin, or cross-site without an Origin")
		before := d.workflowIDs(t)
		var saw []string
		for _, h := range []map[string]string{
			{"Cookie": cookie, "Origin": "https://attacker.example", "Content-Type": "text/plain"},
			{"Cookie": cookie, "Origin": "null"},
			{"Cookie": cookie, "Sec-Fetch-Site": "cross-site"},
		} {
			for _, target := range []string{cancel, d.st.UI + "/codec/decode"} {
				code, body, _ := uiDo(t, "POST", target, h, `{"payloads":[]}`)
				if code != http.StatusForbidden {
					t.Errorf("POST %s with %v: %d %s", target, h, code, body)
				}
			}
			saw = append(saw, fmt.Sprintf("Origin %q Sec-Fetch-Site %q: 403", h["Origin"], h["Sec-Fetch-Site"]))
		}
		checkUntouched(t, d, victim, before)
		o.saw("%s (cancel and decode alike); the run not canceled", strings.Join(saw, "; "))
	})

	t.Run("DNS rebinding", func(t *testing.T) {
		o := attack(t, "DNS rebinding: a page of attacker.example, its name now resolving to 127.0.0.1, reads the Web UI's run list with the user's cookie")
		u, _ := url.Parse(d.st.UI)
		code, body, _ := uiDo(t, "GET", list, map[string]string{"Cookie": cookie, "Host": "attacker.example:" + u.Port()}, "")
		if code != http.StatusMisdirectedRequest || strings.Contains(body, victim) {
			t.Errorf("Host attacker.example: %d %s", code, body)
		}
		o.saw("Host attacker.example:%s: %d, nothing listed", u.Port(), code)
	})

	t.Run("ui-server's own port", func(t *testing.T) {
		o := attack(t, "another local user connects to ui-server's own port (behind the dev service's listener, inside the Temporal server) to list or cancel runs")
		before := d.workflowIDs(t)
		inner := innerUIPort(t, d)
		// A loopback TCP port makes no difference between users: what this
		// process sends without the token, any local user can.
		base := "http://127.0.0.1:" + strconv.Itoa(inner)
		code, body, _ := uiDo(t, "GET", base+"/api/v1/namespaces/"+d.st.Namespace+"/workflows", nil, "")
		if code < 400 || strings.Contains(body, victim) || !strings.Contains(body, "unauthorized") {
			t.Errorf("list on ui-server's port %d: %d %s", inner, code, body)
		}
		ccode, cbody, _ := uiDo(t, "POST", base+"/api/v1/namespaces/"+d.st.Namespace+"/workflows/"+victim+"/cancel", map[string]string{"Sec-Fetch-Site": "same-origin"}, "{}")
		if ccode < 400 {
			t.Errorf("cancel on ui-server's port %d: %d %s", inner, ccode, cbody)
		}
		checkUntouched(t, d, victim, before)
		o.saw("list: %d Request unauthorized (ui-server holds no credential: the frontend wants the token); cancel: %d; the run not canceled", code, ccode)
	})
}

// innerUIPort reads ui-server's port from the Temporal server's command
// line.
func innerUIPort(t *testing.T, d *devService) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", d.st.ServerPID))
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Split(string(b), "\x00")
	for i, a := range args {
		if a == "--ui-port" && i+1 < len(args) {
			p, err := strconv.Atoi(args[i+1])
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
	}
	t.Fatalf("the Temporal server serves no UI: %q", args)
	return 0
}
