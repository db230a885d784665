package nbhtml_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"millrace/internal/nbhtml"
)

// png is a 2x2 PNG, as IPython.display.Image shows one.
const png = "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEElEQVR4nGP4z8AARAwQCgAf7gP9i18U1AAAAABJRU5ErkJggg=="

// executed is an executed notebook with a figure and, from the kernel and
// its author, markup that would run script in a browser: none of it may
// reach the page.
func executed(printed string) []byte {
	return []byte(fmt.Sprintf(`{
 "nbformat": 4, "nbformat_minor": 5,
 "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
 "cells": [
  {"cell_type": "markdown", "id": "m", "metadata": {}, "source": "# Results <script>alert('markdown')</script> <img src=x onerror=\"alert('attr')\">"},
  {"cell_type": "code", "id": "c", "metadata": {}, "execution_count": 1, "source": "plot()",
   "outputs": [
    {"output_type": "stream", "name": "stdout", "text": %q},
    {"output_type": "display_data", "metadata": {}, "data": {"image/png": %q, "text/plain": "<Figure>"}},
    {"output_type": "display_data", "metadata": {}, "data": {"text/html": "<table><tr><td>cell-table</td></tr></table><script>alert('html')</script><a href=\"javascript:alert('link')\">x</a><iframe src=\"https://example.invalid/\"></iframe>"}},
    {"output_type": "display_data", "metadata": {}, "data": {"application/javascript": "alert('js')"}}
   ]}
 ]
}`, printed, png))
}

func TestRenderInlinesFiguresAndRunsNoScript(t *testing.T) {
	t.Parallel()
	nb := executed("trained\n")
	page, err := nbhtml.Renderer{}.Render(context.Background(), nb, "train.ipynb · job-1")
	if err != nil {
		t.Fatal(err)
	}
	s := string(page)
	if !strings.Contains(s, `<img src="data:image/png;base64,`+png) {
		t.Error("the figure is not inline as a data: URI")
	}
	for _, want := range []string{"trained", "cell-table", "<title>train.ipynb · job-1</title>"} {
		if !strings.Contains(s, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	for _, bad := range []string{"alert('markdown')</script>", "onerror", "javascript:", "<iframe", "alert('html')</script>", "alert('js')"} {
		if strings.Contains(s, bad) {
			t.Errorf("the page carries the notebook's %q", bad)
		}
	}
	// The policy comes before anything else in <head>, and nbconvert's
	// own <script> tags (require.js, MathJax) come after it.
	head := strings.Index(s, "<head>")
	csp := strings.Index(s, `<meta http-equiv="Content-Security-Policy" content="`+nbhtml.Policy+`">`)
	script := strings.Index(s, "<script")
	if head < 0 || csp != head+len("<head>\n") || (script >= 0 && script < csp) {
		t.Errorf("head at %d, policy at %d, first script at %d: want the policy first in <head>", head, csp, script)
	}
	if !strings.Contains(nbhtml.Policy, "default-src 'none'") || strings.Contains(nbhtml.Policy, "script-src") {
		t.Errorf("policy %q allows scripts", nbhtml.Policy)
	}
	if got, want := nbhtml.KeyOf(page), nbhtml.Key(nb); got != want {
		t.Errorf("key %q, want %q", got, want)
	}
}

func TestCachedReusesThePageUntilTheNotebookChanges(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cache := filepath.Join(dir, nbhtml.CacheName)
	r := nbhtml.Renderer{}
	ctx := context.Background()
	nb := executed("epoch 1\n")

	first, cached, err := r.Cached(ctx, nb, "t", dir)
	if err != nil || cached {
		t.Fatalf("first render: cached %v, %v", cached, err)
	}
	fi, err := os.Stat(cache)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("cache mode %v, want 0600", fi.Mode().Perm())
	}

	again, cached, err := r.Cached(ctx, nb, "t", dir)
	if err != nil || !cached || !bytes.Equal(again, first) {
		t.Fatalf("same notebook: cached %v, same page %v, %v; want the cached page", cached, bytes.Equal(again, first), err)
	}
	if fi2, _ := os.Stat(cache); !fi2.ModTime().Equal(fi.ModTime()) || !os.SameFile(fi, fi2) {
		t.Error("the cache was rewritten for an unchanged notebook")
	}

	// The runner saved the next cell: same size, new content.
	changed := executed("epoch 2\n")
	page, cached, err := r.Cached(ctx, changed, "t", dir)
	if err != nil || cached || !strings.Contains(string(page), "epoch 2") {
		t.Fatalf("changed notebook: cached %v, %v", cached, err)
	}
	if b, _ := os.ReadFile(cache); nbhtml.KeyOf(b) != nbhtml.Key(changed) {
		t.Error("the cache keeps the old page")
	}

	// A link swapped in for the cache, to a page of the right key outside
	// the folder, is neither read nor written through.
	outside := filepath.Join(t.TempDir(), "elsewhere.html")
	if err := os.WriteFile(outside, page, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Remove(cache)
	if err := os.Symlink(outside, cache); err != nil {
		t.Fatal(err)
	}
	other := executed("epoch 3\n")
	if err := os.WriteFile(outside, []byte(strings.Replace(string(page), nbhtml.Key(changed), nbhtml.Key(other), 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, cached, err = r.Cached(ctx, other, "t", dir)
	if err != nil || cached {
		t.Fatalf("through a swapped link: cached %v, %v; want a new render", cached, err)
	}
	if fi, err := os.Lstat(cache); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("cache after a swapped link: %v, %v; want a regular file", fi, err)
	}
	if b, _ := os.ReadFile(outside); nbhtml.KeyOf(b) != nbhtml.Key(other) || strings.Contains(string(b), "epoch 3") {
		t.Error("the file the link led to was changed")
	}
}

func TestRenderWithoutNbconvertSaysWhatToInstall(t *testing.T) {
	t.Parallel()
	// A real Python without nbconvert: a virtualenv of the system Python
	// that does not see its site packages.
	venv := filepath.Join(t.TempDir(), "venv")
	if out, err := exec.Command("/usr/bin/python3", "-m", "venv", "--without-pip", venv).CombinedOutput(); err != nil {
		t.Fatalf("python3 -m venv --without-pip: %v: %s (on Debian: apt-get install python3-venv)", err, out)
	}
	py := filepath.Join(venv, "bin", "python3")
	_, err := nbhtml.Renderer{Python: py}.Render(context.Background(), executed(""), "")
	if !errors.Is(err, nbhtml.ErrNoNbconvert) {
		t.Fatalf("got %v, want ErrNoNbconvert", err)
	}
	for _, want := range []string{"apt-get install python3-nbconvert", py + " -m pip install nbconvert"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	// An nbconvert older than 6.5 would ignore sanitize_html: refused.
	site, _ := filepath.Glob(filepath.Join(venv, "lib", "python3*", "site-packages"))
	if len(site) != 1 {
		t.Fatalf("the virtualenv's site-packages: %v", site)
	}
	if err := os.MkdirAll(filepath.Join(site[0], "nbconvert"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(site[0], "nbconvert", "__init__.py"), []byte("__version__ = \"5.6.1\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = nbhtml.Renderer{Python: py}.Render(context.Background(), executed(""), "")
	if !errors.Is(err, nbhtml.ErrNoNbconvert) || !strings.Contains(err.Error(), "5.6.1") || !strings.Contains(err.Error(), "apt-get install python3-nbconvert") {
		t.Fatalf("nbconvert 5.6.1: %v, want it refused as too old", err)
	}
	t.Log(err)
}

func TestRenderRefusesAPageOverTheBound(t *testing.T) {
	t.Parallel()
	big := executed(strings.Repeat("x", 1<<20))
	_, err := nbhtml.Renderer{MaxBytes: 256 << 10}.Render(context.Background(), big, "")
	if !errors.Is(err, nbhtml.ErrTooBig) {
		t.Fatalf("got %v, want ErrTooBig", err)
	}
}

func TestKeyOfIgnoresPagesItDidNotMake(t *testing.T) {
	for _, page := range []string{"", "<html><head><title>x</title>", "<!DOCTYPE html><html><head>\n" + `<meta name="millrace-source" content="` + strings.Repeat("a", 64) + `">`} {
		if k := nbhtml.KeyOf([]byte(page)); k != "" {
			t.Errorf("KeyOf(%q) = %q, want none", page, k)
		}
	}
}
