package notebook

import (
	"strings"
	"unicode/utf8"
)

// FirstLine is the first line of s that is not blank, trimmed and cut to
// max runes (see Shorten). A progress line, a status summary and a
// terminal bar each show a glimpse of a cell's source or of an error
// message this way, so they all agree on what the glimpse is.
func FirstLine(s string, max int) string {
	for line := range strings.SplitSeq(s, "\n") {
		if line = strings.TrimSpace(strings.ToValidUTF8(line, "")); line != "" {
			return Shorten(line, max)
		}
	}
	return ""
}

// Shorten cuts s to at most max runes, marking a cut with "…"; max <= 0
// keeps s whole.
func Shorten(s string, max int) string {
	if max <= 0 || utf8.RuneCountInString(s) <= max {
		return s
	}
	if max == 1 {
		return "…"
	}
	return string([]rune(s)[:max-1]) + "…"
}
