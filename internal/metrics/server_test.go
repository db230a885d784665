package metrics_test

import (
	"net"
	"net/http"
	"strings"
	"testing"

	"millrace/internal/metrics"
	"millrace/internal/metrics/metricstest"
	"millrace/internal/testenv"
)

func TestStartWithoutAddressServesNothing(t *testing.T) {
	s, err := metrics.Start("", "", testenv.Logger())
	if s != nil || err != nil {
		t.Fatalf("Start(\"\") = %v, %v; want nil, nil", s, err)
	}
	if h := s.Handler(); h != nil {
		t.Errorf("nil server's handler = %v, want nil (the SDK's no-op)", h)
	}
	if err := s.Close(); err != nil {
		t.Errorf("nil server's Close: %v", err)
	}
}

func TestNonLoopbackNeedsToken(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "[::]:0"} {
		s, err := metrics.Start(addr, "", testenv.Logger())
		if err == nil {
			s.Close()
			t.Fatalf("Start(%q) without a token: no error", addr)
		}
		if !strings.Contains(err.Error(), metrics.TokenEnv) || !strings.Contains(err.Error(), "not a loopback address") {
			t.Errorf("Start(%q) error %q does not say what to do", addr, err)
		}
	}
	for _, bad := range []string{"host:", "a:b:c"} {
		if s, err := metrics.Start(bad, "", testenv.Logger()); err == nil {
			s.Close()
			t.Errorf("Start(%q): no error", bad)
		}
	}
}

func TestLoopbackByDefault(t *testing.T) {
	s, err := metrics.Start("0", "", testenv.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
		t.Errorf("a bare port bound %s, want 127.0.0.1", s.URL())
	}
	page, err := metricstest.Scrape(s.URL(), "")
	if err != nil {
		t.Fatal(err)
	}
	// The process collectors are there before anything is recorded.
	if !page.Has("go_goroutines", nil) || !page.Has("process_cpu_seconds_total", nil) {
		t.Errorf("no Go runtime or process metrics on the page: %d samples", len(page))
	}
}

func TestTokenRequired(t *testing.T) {
	const token = "s3cret-metrics-token"
	for _, addr := range []string{"0.0.0.0:0", "127.0.0.1:0"} {
		s, err := metrics.Start(addr, token, testenv.Logger())
		if err != nil {
			t.Fatal(err)
		}
		// Reach a wildcard bind through loopback: tests talk to this
		// machine only.
		_, port, _ := net.SplitHostPort(strings.TrimSuffix(strings.TrimPrefix(s.URL(), "http://"), metrics.Path))
		url := "http://127.0.0.1:" + port + metrics.Path
		for _, c := range []struct {
			auth string
			want int
		}{
			{"", http.StatusUnauthorized},
			{"Bearer wrong", http.StatusUnauthorized},
			{"Basic " + token, http.StatusUnauthorized},
			{"Bearer " + token, http.StatusOK},
		} {
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			if c.auth != "" {
				req.Header.Set("Authorization", c.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Errorf("%s with Authorization %q: %d, want %d", addr, c.auth, resp.StatusCode, c.want)
			}
		}
		if _, err := metricstest.Scrape(url, token); err != nil {
			t.Errorf("%s: scrape with the token: %v", addr, err)
		}
		s.Close()
	}
}
