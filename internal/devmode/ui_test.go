package devmode_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"millrace/internal/devmode"
	"millrace/internal/jobs"
	"millrace/internal/runopts"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// ScreenshotEnv, set to 1, makes TestWebUIShowsABatch write its screenshot
// of a batch into the repository (docs/ui-batch.png), for the README: the
// picture there is made by this test, not by hand.
const ScreenshotEnv = "MILLRACE_UI_SCREENSHOT_WRITE"

// TestWebUIShowsABatch looks at the dev service's Web UI as its user does,
// in a real browser: the service started by a dev-mode command, a small
// batch run, the address `millrace ui` opens. The batch's page names it and
// shows its input decoded by the service's codec endpoint (the history
// holds only ciphertext); the same page without the token is refused.
func TestWebUIShowsABatch(t *testing.T) {
	browser := testenv.NewBrowser(t)
	dataDir := t.TempDir()
	stopService(t, dataDir)
	startDevWorker(t, dataDir)
	st := waitService(t, dataDir)
	if st.UI == "" {
		t.Fatalf("the dev service serves no UI: state %+v", st)
	}

	dir := t.TempDir()
	greeting := testenv.CopyFile(t, testenv.Testdata("greeting.ipynb"), dir)
	plot := testenv.CopyFile(t, testenv.Testdata("plot.ipynb"), dir)
	svc := service(t, st, dir)
	node := func(id, greeting, nb string) jobs.BatchNodeRequest {
		return jobs.BatchNodeRequest{ID: id, Path: nb, Options: runopts.Options{Parameters: map[string]any{"greeting": greeting}}}
	}
	started, err := svc.StartBatch(context.Background(), jobs.BatchRequest{
		Name: "greetings", Labels: []string{"docs"},
		// Two nodes side by side: the test waits for one kernel's time.
		Nodes: []jobs.BatchNodeRequest{node("hello", "hello", greeting), node("world", "world", plot)},
	})
	if err != nil {
		t.Fatal(err)
	}
	var bs jobs.BatchStatus
	testenv.Eventually(t, 2*time.Minute, "the batch to end", func() bool {
		bs, err = svc.BatchStatus(context.Background(), started.BatchID)
		return err == nil && bs.Ended()
	})
	if bs.Status != workflows.StatusSucceeded {
		t.Fatalf("batch %s: %+v", bs.Status, bs.Nodes)
	}

	login, err := devmode.UIURL(st)
	if err != nil {
		t.Fatal(err)
	}
	_, query, _ := strings.Cut(login, "?")
	page := st.UI + "/namespaces/" + st.Namespace + "/workflows/" + started.BatchID

	dom := browser.DOM(page + "?" + query)
	if !strings.Contains(dom, started.BatchID) {
		t.Fatalf("the batch's page does not name %s:\n%s", started.BatchID, tail(dom))
	}
	// The batch's name is in its input and memo only, both sealed in
	// history: on the page, it went through the codec endpoint.
	if !strings.Contains(dom, "greetings") {
		t.Errorf("the batch's page shows no decoded input (no %q):\n%s", "greetings", tail(dom))
	}

	// The workflow list shows a job's notebook and batch as columns (a new
	// browser profile: the listener's script stored them before the UI
	// read its columns).
	list := browser.DOM(st.UI + "/namespaces/" + st.Namespace + "/workflows?" + query)
	for _, want := range []string{workflows.AttrNotebook, workflows.AttrBatchID, greeting} {
		if !strings.Contains(list, want) {
			t.Errorf("the workflow list shows no %s:\n%s", want, tail(list))
		}
	}

	shot := filepath.Join(t.TempDir(), "ui-batch.png")
	browser.Screenshot(page+"?"+query, shot, 1400, 1100)
	t.Logf("screenshot of the batch's page: %s", shot)
	if os.Getenv(ScreenshotEnv) == "1" {
		dst := filepath.Join(testenv.RepoRoot(), "docs", "ui-batch.png")
		b, err := os.ReadFile(shot)
		if err == nil {
			err = os.MkdirAll(filepath.Dir(dst), 0o755)
		}
		if err == nil {
			err = os.WriteFile(dst, b, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", dst)
	}

	// The executed notebook of the node that drew a figure, as a page
	// (nbconvert through the job service), opened in the same browser.
	var plotJob string
	for _, n := range bs.Nodes {
		if n.ID == "world" {
			plotJob = n.JobID
		}
	}
	out, err := svc.OutputHTML(context.Background(), plotJob)
	if err != nil {
		t.Fatalf("the plot node's page: %v", err)
	}
	html := filepath.Join(t.TempDir(), "world.html")
	if err := os.WriteFile(html, out.HTML, 0o600); err != nil {
		t.Fatal(err)
	}
	rendered := browser.DOM("file://" + html)
	if !strings.Contains(rendered, "<img") || !strings.Contains(rendered, "data:image/png;base64,") || !strings.Contains(rendered, "figure of 'world'") {
		t.Errorf("the plot node's page shows no figure:\n%s", tail(rendered))
	}
	browser.Screenshot("file://"+html, filepath.Join(t.TempDir(), "world.png"), 1000, 700)

	refused := browser.DOM(page)
	if strings.Contains(refused, started.BatchID) || !strings.Contains(refused, "not signed in") {
		t.Errorf("the page without the token was not refused:\n%s", tail(refused))
	}
	resp, err := http.Get(page)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET without the token: %s %s, want 401", resp.Status, body)
	}
}

// tail is the end of a page, enough to see what it shows in a failure.
func tail(s string) string {
	if len(s) > 2000 {
		return "…" + s[len(s)-2000:]
	}
	return s
}
