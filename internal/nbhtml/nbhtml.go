// Package nbhtml renders an executed notebook as one self-contained HTML
// page with nbconvert, for people (millrace output --html) and MCP clients
// (get_job_output format html, millrace://jobs/{id}/output.html).
//
// nbconvert runs as a child process of the configured Python (the one the
// bundled runner uses), reading the notebook on stdin and writing the page
// on stdout: no path of the user's reaches it, and the bytes it renders are
// the bytes whose hash keys the cache. Its HTML exporter keeps image/png and
// image/jpeg outputs as data: URIs, so plots are inside the page and opening
// it needs no other file and no network.
//
// The notebook is user data, and its outputs may be HTML or JavaScript that
// a kernel printed. The page must not run any of it, whether it is opened
// from file:// (where a script could read other local files in some
// browsers) or served by a local UI (where it could call that UI's API with
// the user's session). Two layers, each enough on its own for scripts:
//
//   - nbconvert sanitizes (HTMLExporter.sanitize_html, in nbconvert 6.5 and
//     later; an older one is refused, since it would ignore the flag): HTML outputs, Markdown and SVG go through its HTML cleaner,
//     which drops <script>, event handler attributes, javascript: links,
//     iframes, forms and <meta>; JavaScript outputs and widget state are
//     not written at all.
//   - The page starts with a Content-Security-Policy that allows no script
//     (nbconvert's own require.js and MathJax tags included: formulas stay
//     as TeX text), no connection, frame, form target or <base>, and images
//     from data: URIs only, so not even a tracking pixel loads. It comes
//     first in <head>, before anything taken from the notebook.
//
// A server that serves the page should also send the policy as a header,
// with the sandbox directive, which a <meta> cannot carry.
//
// nbconvert runs without --execute: it runs none of the notebook's code,
// so the client side (the job service, the MCP server, the CLI) may use
// this package while it may not reach the executor. The child starts no
// grandchild (no kernel), so a context deadline that kills it, and a
// bounded wait for its pipes, are all the supervision it needs.
package nbhtml

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"millrace/internal/python"
)

// Policy is the Content-Security-Policy of every page: no script, no
// network, images from the page itself only. Inline styles are allowed,
// since nbconvert's theme is an inline <style>.
const Policy = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; base-uri 'none'; form-action 'none'"

// Version changes whenever what a page is made of changes (nbconvert's
// flags, the head this package adds), so that pages cached by an older
// millrace are rebuilt.
const Version = "1"

// Defaults for Renderer.
const (
	// DefaultTimeout bounds one nbconvert run. It starts in about 1-2 s;
	// a notebook of tens of MB of outputs takes longer.
	DefaultTimeout = 2 * time.Minute
	// DefaultMaxBytes bounds a page. Images are base64 in the notebook and
	// stay base64 in the page, so a page is about its notebook's size
	// plus nbconvert's theme (about 0.6 MB).
	DefaultMaxBytes = 256 << 20
)

// MaxNotebookBytes bounds the notebook a caller should read to render.
const MaxNotebookBytes = 128 << 20

// Install says how to get nbconvert, for the error that finds none.
const Install = "apt-get install python3-nbconvert (Debian, Ubuntu: the system Python), or `PYTHON -m pip install nbconvert` for another Python"

// ErrNoNbconvert means the Python cannot import nbconvert, or only one
// older than 6.5.
var ErrNoNbconvert = errors.New("no usable nbconvert")

// ErrTooBig means the page passed Renderer.MaxBytes.
var ErrTooBig = errors.New("page too big")

// Renderer runs nbconvert.
type Renderer struct {
	// Python is the interpreter that runs nbconvert: --python or
	// MILLRACE_PYTHON when set, else "" for python.Find's choice, the one
	// the bundled runner uses.
	Python   string
	Timeout  time.Duration // 0: DefaultTimeout
	MaxBytes int64         // 0: DefaultMaxBytes
}

// Key names what a page is rendered from: the notebook's bytes and
// Version. A cached page is current when its key is the notebook's. The
// content, not the file's mtime and size: the runner rewrites the output
// notebook at every cell, possibly twice within a filesystem's mtime
// granularity with the same size, and a copied data dir keeps the content
// but not the times.
func Key(notebook []byte) string {
	h := sha256.New()
	h.Write([]byte("nbhtml " + Version + "\n"))
	h.Write(notebook)
	return hex.EncodeToString(h.Sum(nil))
}

// keyMeta is the <meta> that records a page's key in its head.
const keyMeta = `<meta name="millrace-source" content="`

// headLimit bounds where nbconvert's <head> may start: its templates open
// it within the first lines, before anything from the notebook.
const headLimit = 1024

// KeyOf is the key a page records, or "" for a page this package did not
// make.
func KeyOf(page []byte) string {
	head := headAt(page)
	if head < 0 {
		return ""
	}
	rest := page[head:]
	want := "\n<meta http-equiv=\"Content-Security-Policy\" content=\"" + Policy + "\">\n" + keyMeta
	if !bytes.HasPrefix(rest, []byte(want)) {
		return ""
	}
	rest = rest[len(want):]
	end := bytes.IndexByte(rest, '"')
	if end != 2*sha256.Size {
		return ""
	}
	return string(rest[:end])
}

// headAt is the offset just past nbconvert's "<head>", or -1.
func headAt(page []byte) int {
	i := bytes.Index(page[:min(len(page), headLimit)], []byte("<head>"))
	if i < 0 {
		return -1
	}
	return i + len("<head>")
}

// Render turns an .ipynb into a page titled title (when the notebook's
// metadata has no title of its own).
func (r Renderer) Render(ctx context.Context, notebook []byte, title string) ([]byte, error) {
	in, err := withTitle(notebook, title)
	if err != nil {
		return nil, err
	}
	py, err := r.python()
	if err != nil {
		return nil, err
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	max := r.maxBytes()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "-c", launcher, "--to", "html", "--stdin", "--stdout",
		"--HTMLExporter.sanitize_html=True", "--log-level=ERROR")
	// `python -c` puts the working directory first on sys.path, and
	// nbconvert loads jupyter_nbconvert_config.py from it: in a folder
	// others can write to, either would run their code. / is the root's.
	cmd.Dir = "/"
	cmd.Stdin = bytes.NewReader(in)
	out := &boundedBuffer{max: max, overflow: cancel}
	errTail := &tailBuffer{max: 4096}
	cmd.Stdout, cmd.Stderr = out, errTail
	cmd.WaitDelay = 2 * time.Second
	err = cmd.Run()
	switch {
	case out.over:
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooBig, max)
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return nil, fmt.Errorf("nbconvert (%s) did not finish within %s", py, timeout)
	case err != nil && strings.Contains(errTail.String(), noNbconvert):
		return nil, fmt.Errorf("%w in %s: %s", ErrNoNbconvert, py, strings.Replace(Install, "PYTHON", py, 1))
	case err != nil && strings.Contains(errTail.String(), oldNbconvert+" "):
		return nil, fmt.Errorf("%w in %s: %s; %s", ErrNoNbconvert, py, strings.TrimPrefix(lastLine(errTail.String()), "millrace: "), strings.Replace(Install, "PYTHON", py, 1))
	case err != nil:
		return nil, fmt.Errorf("nbconvert (%s): %v: %s", py, err, lastLine(errTail.String()))
	}
	return secure(out.buf.Bytes(), Key(notebook))
}

// launcher runs nbconvert's command line after two checks whose failure
// the Go side recognizes: nbconvert is missing, or older than 6.5, which
// has no HTMLExporter.sanitize_html and would ignore the flag with only a
// logged warning, writing the notebook's HTML unsanitized.
const launcher = `import sys
try:
    import nbconvert
except ModuleNotFoundError as e:
    if e.name != "nbconvert":
        raise
    sys.exit("` + noNbconvert + `")
v = tuple(int(p) for p in nbconvert.__version__.split(".")[:2] if p.isdigit())
if v < (6, 5):
    sys.exit("` + oldNbconvert + ` " + nbconvert.__version__ + " is older than 6.5, the first that sanitizes HTML")
from nbconvert.nbconvertapp import main
sys.argv[0] = "jupyter-nbconvert"
main()
`

// What launcher says when it stops.
const (
	noNbconvert  = "millrace: no module named nbconvert"
	oldNbconvert = "millrace: nbconvert"
)

// secure puts the policy and the key first in the page's head.
func secure(page []byte, key string) ([]byte, error) {
	head := headAt(page)
	if head < 0 {
		return nil, fmt.Errorf("nbconvert wrote no <head> in the first %d bytes: the page is not served without its security policy", headLimit)
	}
	add := "\n<meta http-equiv=\"Content-Security-Policy\" content=\"" + Policy + "\">\n" +
		keyMeta + key + "\">\n" + `<meta name="referrer" content="no-referrer">`
	out := make([]byte, 0, len(page)+len(add))
	out = append(out, page[:head]...)
	out = append(out, add...)
	return append(out, page[head:]...), nil
}

// withTitle sets metadata.title when the notebook has none: nbconvert
// titles a page read from stdin "Notebook". Only that key changes; every
// other value is kept as raw JSON.
func withTitle(notebook []byte, title string) ([]byte, error) {
	if title == "" {
		return notebook, nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(notebook, &top); err != nil {
		return nil, fmt.Errorf("not a notebook: %w", err)
	}
	meta := map[string]json.RawMessage{}
	if m, ok := top["metadata"]; ok {
		if err := json.Unmarshal(m, &meta); err != nil {
			return nil, fmt.Errorf("not a notebook: metadata: %w", err)
		}
	}
	if _, ok := meta["title"]; ok {
		return notebook, nil
	}
	t, _ := json.Marshal(title)
	meta["title"] = t
	m, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	top["metadata"] = m
	return json.Marshal(top)
}

// python is the interpreter to run. A Python the user named is used as
// given, without python.Find's check for nbclient and ipykernel: when it
// lacks nbconvert, the error should say so. Otherwise the bundled runner's
// choice, which found a Python with nbclient (which nbconvert needs too).
func (r Renderer) python() (string, error) {
	if r.Python != "" {
		p, err := exec.LookPath(r.Python)
		if err != nil {
			return "", fmt.Errorf("python %q (--python or %s): %w", r.Python, python.Env, err)
		}
		return p, nil
	}
	in, err := python.Find("")
	if err != nil {
		return "", fmt.Errorf("rendering HTML needs a Python with nbconvert: %w; then %s", err, Install)
	}
	return in.Path, nil
}

// boundedBuffer keeps at most max bytes and, past them, calls overflow
// (which stops the child) and discards the rest: reading on keeps the
// child from blocking on a full pipe until it is killed.
type boundedBuffer struct {
	buf      bytes.Buffer // not embedded: io.Copy would use its ReadFrom, which has no bound
	max      int64
	over     bool
	overflow func()
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if b.over || int64(b.buf.Len()+len(p)) > b.max {
		if !b.over {
			b.over = true
			b.overflow()
		}
		return len(p), nil
	}
	return b.buf.Write(p)
}

// tailBuffer keeps the last max bytes written: the end of a traceback says
// what went wrong.
type tailBuffer struct {
	b   []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }

// lastLine is the last non-empty line of s: a traceback's "KeyError: ...".
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if l := strings.TrimSpace(lines[len(lines)-1]); l != "" {
		return l
	}
	return "no message"
}
