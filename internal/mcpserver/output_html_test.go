package mcpserver_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"millrace/internal/mcpserver"
	"millrace/internal/nbhtml"
	"millrace/internal/rundir"
	"millrace/workflows"
)

// TestGetJobOutputAsHTML reads a run's page as get_job_output format html
// and as the output.html resource: the figure inline, the kernel's script
// not in it, the second read from the cache, and without nbconvert an
// error that says what to install.
func TestGetJobOutputAsHTML(t *testing.T) {
	t.Parallel()
	e := newEnv(t, richNB)
	hostile := "<script>alert('kernel')</script>"
	started, _ := call[mcpserver.StartNotebookResult](t, e.client, "start_notebook", map[string]any{
		"path": "rich.ipynb", "parameters": map[string]any{"msg": hostile, "repeat": 1},
	})
	if st := waitEnded(t, e.client, started.JobID); st.Status != workflows.StatusSucceeded {
		t.Fatalf("run %s: %+v", st.Status, st.Error)
	}
	args := map[string]any{"job_id": started.JobID, "format": "html"}
	page := func() (mcpserver.OutputResult, string) {
		t.Helper()
		res := callTool(t, e.client, "get_job_output", args, nil)
		out, _ := call[mcpserver.OutputResult](t, e.client, "get_job_output", args)
		var html string
		for _, c := range res.Content {
			if er, ok := c.(mcp.EmbeddedResource); ok {
				tc, ok := er.Resource.(mcp.TextResourceContents)
				if !ok || tc.MIMEType != "text/html" || tc.URI != "millrace://jobs/"+started.JobID+"/output.html" {
					t.Fatalf("embedded resource %+v", er.Resource)
				}
				html = tc.Text
			}
		}
		if html == "" {
			t.Fatalf("format html: no embedded page in %+v", res.Content)
		}
		return out, html
	}
	out, html := page()
	if out.Page == nil || out.Page.Size != len(html) || len(out.Cells) != 0 || out.Status != workflows.StatusSucceeded {
		t.Fatalf("format html result %+v", out)
	}
	if !strings.Contains(html, `<img src="data:image/png;base64,`) {
		t.Error("the page has no inline figure")
	}
	if strings.Contains(html, hostile) || !strings.Contains(html, `content="`+nbhtml.Policy+`"`) {
		t.Error("the kernel's script is in the page, or the page has no policy")
	}
	// The first page call rendered (callTool), the second read the cache.
	if !out.Page.Cached {
		t.Error("the second read rendered the page again")
	}
	if got := read(t, e.client, out.Page.URI); got.MIMEType != "text/html" || got.Text != html {
		t.Errorf("resource %s: %s, same page %v", out.Page.URI, got.MIMEType, got.Text == html)
	}

	if msg := callError(t, e.client, "get_job_output", map[string]any{"job_id": started.JobID, "format": "html", "cell_from": 1}); !strings.Contains(msg, "do not apply to format html") {
		t.Errorf("format html with cell_from: %q", msg)
	}
	if msg := callError(t, e.client, "get_job_output", map[string]any{"job_id": started.JobID, "format": "pdf"}); !strings.Contains(msg, "html") {
		t.Errorf("format pdf: %q", msg)
	}

	// Without nbconvert (a Python that lacks it, the cache gone): the
	// error names the package.
	venv := filepath.Join(t.TempDir(), "venv")
	if b, err := exec.Command("/usr/bin/python3", "-m", "venv", "--without-pip", venv).CombinedOutput(); err != nil {
		t.Fatalf("python3 -m venv --without-pip: %v: %s (on Debian: apt-get install python3-venv)", err, b)
	}
	if err := os.Remove(filepath.Join(rundir.JobDir(e.cfg.DataDir, started.JobID), nbhtml.CacheName)); err != nil {
		t.Fatal(err)
	}
	e.svc.Python = filepath.Join(venv, "bin", "python3")
	if msg := callError(t, e.client, "get_job_output", args); !strings.Contains(msg, "apt-get install python3-nbconvert") {
		t.Errorf("without nbconvert: %q", msg)
	}
}
