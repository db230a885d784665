// Package notify sends completion webhooks: a JSON POST whose body is
// signed with HMAC-SHA256 under a shared secret, only to http(s) hosts an
// allow-list permits. The allow-list is what keeps notify_url from turning
// the worker into a way to reach internal services (SSRF), so both the job
// service (at start) and the worker (before each POST) check it.
package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Headers of a delivery.
const (
	// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the
	// raw body under the secret (the form GitHub's webhooks use, so
	// existing verifiers work).
	SignatureHeader = "X-Millrace-Signature"
	// DeliveryHeader is the same on every attempt of one delivery.
	DeliveryHeader = "X-Millrace-Delivery"
	// EventHeader is "run.ended" or "batch.ended".
	EventHeader = "X-Millrace-Event"
)

// Timeout bounds one POST: a receiver should answer at once and do its
// work afterwards.
const Timeout = 30 * time.Second

// CheckURL accepts an absolute http or https URL without credentials whose
// host the allow-list permits.
func CheckURL(raw string, allow []string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("%q is not a URL", raw)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q: only http and https URLs are allowed", raw)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("%q has no host", raw)
	case u.User != nil:
		return fmt.Errorf("%q carries credentials; webhooks are authenticated by their %s header instead", redact(u), SignatureHeader)
	case len(allow) == 0:
		return fmt.Errorf("no host is allowed: set MILLRACE_NOTIFY_ALLOW (or --notify-allow) on the server and the workers to a list that includes %s", u.Hostname())
	case !Allowed(u, allow):
		return fmt.Errorf("host %s is not in the allow-list (%s); ask the operator to add it to MILLRACE_NOTIFY_ALLOW", u.Host, strings.Join(allow, ", "))
	}
	return nil
}

// Allowed reports whether u's host matches an allow-list entry: "host"
// (any port), "host:port", "*.example.com" (subdomains, not the domain
// itself) or "*" (anything).
func Allowed(u *url.URL, allow []string) bool {
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	for _, a := range allow {
		a = strings.ToLower(strings.TrimSpace(a))
		ah, ap := a, ""
		if h, p, err := net.SplitHostPort(a); err == nil {
			ah, ap = h, p
		}
		ah = strings.Trim(ah, "[]")
		if ap != "" && ap != port {
			continue
		}
		switch {
		case ah == "*", ah == host:
			return true
		case strings.HasPrefix(ah, "*.") && strings.HasSuffix(host, ah[1:]):
			return true
		}
	}
	return false
}

func redact(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

// Sign returns the SignatureHeader value of body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether sig is body's signature under secret, in
// constant time. Receivers written in Go can use it.
func Verify(secret, body []byte, sig string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(sig))
}

// RejectedError is an answer that retrying cannot change: a 4xx other than
// 408 and 429, or a redirect (not followed: it could lead off the
// allow-list).
type RejectedError struct {
	Code int
	Msg  string
}

func (e *RejectedError) Error() string { return e.Msg }

// Client is the HTTP client deliveries use: no redirects, bounded time.
var Client = &http.Client{
	Timeout: Timeout,
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// Delivery is one POST.
type Delivery struct {
	URL    string
	Body   []byte
	Secret []byte
	ID     string // DeliveryHeader
	Event  string // EventHeader
}

// Post sends d and returns the status code of a 2xx answer. Any other
// outcome is an error: a *RejectedError when retrying cannot help.
func Post(ctx context.Context, c *http.Client, d Delivery) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(d.Body))
	if err != nil {
		return 0, &RejectedError{Msg: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "millrace-webhook")
	req.Header.Set(SignatureHeader, Sign(d.Secret, d.Body))
	req.Header.Set(DeliveryHeader, d.ID)
	req.Header.Set(EventHeader, d.Event)
	resp, err := c.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, fmt.Errorf("POST %s: %v", d.URL, err)
	}
	defer resp.Body.Close()
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, nil
	}
	msg := fmt.Sprintf("POST %s: the receiver answered %s", d.URL, resp.Status)
	if s := strings.TrimSpace(string(excerpt)); s != "" {
		msg += ": " + s
	}
	switch c := resp.StatusCode; {
	case c == http.StatusRequestTimeout, c == http.StatusTooManyRequests, c >= 500:
		return c, errors.New(msg)
	case c >= 300 && c < 400:
		return c, &RejectedError{Code: c, Msg: msg + " (redirects are not followed: set notify_url to the final URL)"}
	}
	return resp.StatusCode, &RejectedError{Code: resp.StatusCode, Msg: msg}
}
