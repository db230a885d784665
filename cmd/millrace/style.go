package main

import (
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"millrace/internal/notebook"
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

// plain keeps a traceback's colours only when the stream shows colours.
func (s style) plain(t string) string {
	if s.on {
		return t
	}
	return notebook.StripANSI(t)
}

// codeLine is the first line of a cell's source worth showing: the first
// that is not blank or a comment (else the first comment), shortened.
func codeLine(src string, max int) string {
	comment := ""
	for _, l := range strings.Split(src, "\n") {
		switch l = strings.TrimSpace(l); {
		case l == "":
		case strings.HasPrefix(l, "#"):
			if comment == "" {
				comment = l
			}
		default:
			return notebook.Shorten(l, max)
		}
	}
	return notebook.Shorten(comment, max)
}
