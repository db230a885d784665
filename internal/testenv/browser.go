package testenv

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Browser is Debian's chromium, headless, for tests that look at a page as
// a user's browser shows it: the Temporal Web UI of the dev service, and
// HTML that millrace renders. Each call starts a browser with a new
// profile: nothing (a cookie, a cache) carries from one call to the next.
type Browser struct {
	t    testing.TB
	path string
	// budget is the virtual time a page gets to run its scripts (fetch,
	// render) before the DOM is read or the screenshot taken.
	budget time.Duration
}

// BrowserEnv names the browser binary when it is not chromium on PATH.
const BrowserEnv = "MILLRACE_TEST_CHROMIUM"

// NewBrowser finds chromium, and fails the test, saying how to install it,
// when there is none: .ci/run and `make test-prereqs` install it.
func NewBrowser(t testing.TB) *Browser {
	t.Helper()
	name := os.Getenv(BrowserEnv)
	if name == "" {
		name = "chromium"
	}
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("no %s to test the pages with (%v): install Debian's chromium (apt-get install chromium; make test-prereqs does), or set %s to a Chromium binary", name, err, BrowserEnv)
	}
	return &Browser{t: t, path: p, budget: 4 * time.Second}
}

// args are the flags of every run: headless, no first-run work, no traffic
// of the browser's own (updates, sync, safe browsing), a new profile.
func (b *Browser) args(extra ...string) []string {
	profile := b.t.TempDir()
	return append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + profile,
		"--virtual-time-budget=" + strconv.Itoa(int(b.budget.Milliseconds())),
	}, extra...)
}

func (b *Browser) run(args ...string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), b.budget+45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.path, b.args(args...)...)
	var stderr SyncBuffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		b.t.Fatalf("chromium %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// DOM loads url and returns the page's DOM as HTML once its scripts had
// their time: a file:// URL of a rendered notebook as well as a page of a
// server.
func (b *Browser) DOM(url string) string {
	b.t.Helper()
	return b.run("--dump-dom", url)
}

// Screenshot loads url in a window of width×height and saves a PNG at
// path.
func (b *Browser) Screenshot(url, path string, width, height int) {
	b.t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		b.t.Fatal(err)
	}
	b.run("--hide-scrollbars", "--window-size="+strconv.Itoa(width)+","+strconv.Itoa(height), "--screenshot="+path, url)
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		b.t.Fatalf("chromium wrote no screenshot of %s at %s: %v", url, path, err)
	}
}
