package main

import (
	"io"
	"os"
	"regexp"
	"strings"

	"golang.org/x/term"

	"millrace/workflows"
)

// style colours text written to one stream: only when the stream is a
// terminal, NO_COLOR is unset (https://no-color.org) and TERM is not dumb.
type style struct{ on bool }

func styleFor(w io.Writer) style {
	return style{on: isTerminal(w) && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && f != nil && term.IsTerminal(int(f.Fd()))
}

// SGR codes: the only escape codes millrace writes itself (the progress
// display comes from mpb).
func (s style) sgr(code, text string) string {
	if !s.on || text == "" {
		return text
	}
	return "\x1b[" + code + "m" + text + "\x1b[0m"
}

func (s style) bold(t string) string   { return s.sgr("1", t) }
func (s style) dim(t string) string    { return s.sgr("2", t) }
func (s style) red(t string) string    { return s.sgr("31", t) }
func (s style) green(t string) string  { return s.sgr("32", t) }
func (s style) yellow(t string) string { return s.sgr("33", t) }
func (s style) cyan(t string) string   { return s.sgr("36", t) }

// status colours a job status.
func (s style) status(st string) string {
	switch st {
	case workflows.StatusSucceeded:
		return s.green(st)
	case workflows.StatusFailed:
		return s.red(st)
	case workflows.StatusCanceled, workflows.StatusTimedOut:
		return s.yellow(st)
	case workflows.StatusRunning:
		return s.cyan(st)
	}
	return st
}

// mark is the sign before a final status line: ✓ on success, ✗ otherwise.
func (s style) mark(st string) string {
	if st == workflows.StatusSucceeded {
		return s.green("✓")
	}
	return s.red("✗")
}

var ansiRE = regexp.MustCompile(`\x1b\[[0-9;?]*[ -/]*[@-~]`)

// stripANSI removes terminal escape sequences, such as the colours of an
// IPython traceback.
func stripANSI(s string) string { return ansiRE.ReplaceAllString(s, "") }

// plain keeps a traceback's colours only when the stream shows colours.
func (s style) plain(t string) string {
	if s.on {
		return t
	}
	return stripANSI(t)
}

// firstLine is the first line of a cell's source worth showing: the first
// that is not blank or a comment (else the first comment), shortened.
func firstLine(src string, max int) string {
	comment := ""
	for _, l := range strings.Split(src, "\n") {
		switch l = strings.TrimSpace(l); {
		case l == "":
		case strings.HasPrefix(l, "#"):
			if comment == "" {
				comment = l
			}
		default:
			return shorten(l, max)
		}
	}
	return shorten(comment, max)
}

// shorten cuts s to at most max runes, marking the cut with an ellipsis.
func shorten(s string, max int) string {
	r := []rune(s)
	if max <= 0 || len(r) <= max {
		return s
	}
	if max == 1 {
		return "…"
	}
	return string(r[:max-1]) + "…"
}
