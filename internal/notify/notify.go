// Package notify sends completion webhooks: a JSON POST whose timestamp
// and body are signed with HMAC-SHA256 under a shared secret, only to
// http(s) hosts an allow-list permits, and only to public addresses unless
// the operator allows more. The allow-list and the address check are what
// keep notify_url from turning the worker into a way to reach internal
// services (SSRF): the job service checks the host at start, the worker
// checks it before each POST, and the worker's dialer checks every address
// it connects to, so a name that resolves (or is rebound) to 127.0.0.1 or
// 169.254.169.254 is refused.
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
	"strconv"
	"strings"
	"time"
)

// Headers of a delivery.
const (
	// SignatureHeader carries "sha256=" and the hex HMAC-SHA256, under
	// the secret, of TimestampHeader's value, a ".", and the raw body (the
	// scheme Stripe's webhooks use): a receiver that refuses old
	// timestamps refuses a replayed delivery.
	SignatureHeader = "X-Millrace-Signature"
	// TimestampHeader is when the delivery attempt was signed, in Unix
	// seconds.
	TimestampHeader = "X-Millrace-Timestamp"
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
		return fmt.Errorf("%s is not a URL", Redact(raw))
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%s: only http and https URLs are allowed", Redact(raw))
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("%s has no host", Redact(raw))
	case u.User != nil:
		return fmt.Errorf("the URL carries credentials (user:password@); webhooks are authenticated by their %s header instead", SignatureHeader)
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

// Redact shows a notify_url without what may be secret in it (the path
// and query often carry a receiver's token): scheme://host/… . Status,
// lists and logs show this form only.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(a notify_url that is not a URL)"
	}
	out := u.Scheme + "://" + u.Host
	if u.User != nil {
		out = u.Scheme + "://" + u.Hostname()
		if u.Port() != "" {
			out += ":" + u.Port()
		}
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		out += "/…"
	}
	return out
}

// Sign returns the SignatureHeader value of a delivery signed at
// timestamp (TimestampHeader's value) with body, under secret.
func Sign(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte("."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether sig is the signature of timestamp and body under
// secret, in constant time. Receivers written in Go can use it; they
// should also refuse a timestamp more than a few minutes old.
func Verify(secret []byte, timestamp string, body []byte, sig string) bool {
	return hmac.Equal([]byte(Sign(secret, timestamp, body)), []byte(sig))
}

// RejectedError is an answer that retrying cannot change: a 4xx other than
// 408 and 429, or a redirect (not followed: it could lead off the
// allow-list).
type RejectedError struct {
	Code int
	Msg  string
}

func (e *RejectedError) Error() string { return e.Msg }

// Delivery is one POST.
type Delivery struct {
	URL    string
	Body   []byte
	Secret []byte
	ID     string // DeliveryHeader
	Event  string // EventHeader
}

// Post sends d and returns the status code of a 2xx answer. Any other
// outcome is an error: a *RejectedError when retrying cannot help. No
// error holds the receiver's answer (its body or its reason phrase): the
// error reaches every client through the job's status, and a receiver
// must not be able to speak to them, nor an internal service leak through
// it. Errors name the URL redacted.
func Post(ctx context.Context, c *http.Client, d Delivery) (int, error) {
	where := Redact(d.URL)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(d.Body))
	if err != nil {
		return 0, &RejectedError{Msg: "POST " + where + ": not a valid request URL"}
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "millrace-webhook")
	req.Header.Set(TimestampHeader, ts)
	req.Header.Set(SignatureHeader, Sign(d.Secret, ts, d.Body))
	req.Header.Set(DeliveryHeader, d.ID)
	req.Header.Set(EventHeader, d.Event)
	resp, err := c.Do(req)
	if err != nil {
		return 0, fmt.Errorf("POST %s: %s", where, connectionError(err))
	}
	defer resp.Body.Close()
	// Drained (a little) so the connection closes cleanly; never shown.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return code, nil
	}
	msg := fmt.Sprintf("POST %s: the receiver answered %d %s", where, code, http.StatusText(code))
	switch {
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code >= 500:
		return code, errors.New(msg)
	case code >= 300 && code < 400:
		return code, &RejectedError{Code: code, Msg: msg + " (redirects are not followed: set notify_url to the final URL)"}
	}
	return code, &RejectedError{Code: code, Msg: msg}
}

// connectionError says why a POST got no answer, in words of millrace or
// of this machine's network stack, never in the receiver's: a malformed
// answer's bytes would otherwise show in the message.
func connectionError(err error) string {
	var blocked *BlockedAddressError
	var op *net.OpError
	var ne net.Error
	switch {
	case errors.As(err, &blocked):
		return blocked.Error()
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("no answer within %s", Timeout)
	case errors.As(err, &op) && op.Op == "dial":
		return "could not connect: " + op.Err.Error()
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "the connection failed before a complete HTTP answer"
}
