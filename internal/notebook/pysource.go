package notebook

import (
	"strings"
	"unicode"
)

// This file is a small Python lexer: enough to find statements, comments
// and top-level operators in a parameters cell without being fooled by a
// '#' or '=' inside a string or brackets. It is not a parser; inspection,
// like papermill's, must tolerate cells that are not valid Python.

// pyLine is one logical line of Python source: physical lines joined where
// brackets are open or a backslash continues them.
type pyLine struct {
	code    string // without comments; continuation lines joined
	comment string // comment of the last physical line, without '#'
	line    int    // 1-based number of the first physical line
}

// logicalLines splits src into logical lines. Comments inside a multi-line
// value are dropped and only the last physical line's comment is kept, as
// papermill does, so "] # type: List[str] Nice list" annotates the list.
// Joined lines are glued without a space after an opening bracket or comma
// and before a closing one, which reproduces papermill's "['Hello','World']"
// while keeping "x = a \ or b" readable.
func logicalLines(src string) []pyLine {
	var out []pyLine
	var buf []byte
	var comment string
	depth := 0
	var quote byte // open string delimiter, 0 outside strings
	triple := false
	pending := false // a line break inside brackets waits for its separator
	line, start, startOff := 1, 1, 0

	emit := func() {
		out = append(out, pyLine{code: strings.TrimRight(string(buf), " \t\r\f"), comment: comment, line: start})
		buf, comment, depth, pending = buf[:0], "", 0, false
	}
	join := func(next byte) {
		if !pending {
			return
		}
		pending = false
		buf = []byte(strings.TrimRight(string(buf), " \t\r\f"))
		if len(buf) == 0 || strings.IndexByte("([{,", buf[len(buf)-1]) >= 0 || strings.IndexByte(")]},", next) >= 0 {
			return
		}
		buf = append(buf, ' ')
	}

	for i := 0; i < len(src); i++ {
		c := src[i]
		if quote != 0 {
			if c == '\n' && !triple { // unterminated string: recover at the line end
				quote = 0
			} else {
				buf = append(buf, c)
				switch {
				case c == '\n':
					line++
				case c == '\\' && i+1 < len(src):
					i++
					buf = append(buf, src[i])
					if src[i] == '\n' {
						line++
					}
				case c == quote && (!triple || strings.HasPrefix(src[i:], strings.Repeat(string(quote), 3))):
					if triple {
						buf = append(buf, quote, quote)
						i += 2
					}
					quote = 0
				}
				continue
			}
		}
		switch c {
		case ' ', '\t', '\r', '\f':
			if !pending {
				buf = append(buf, c)
			}
		case '#':
			end := strings.IndexByte(src[i:], '\n')
			if end < 0 {
				end = len(src) - i
			}
			comment = strings.TrimSuffix(src[i+1:i+end], "\r")
			i += end - 1
		case '\n':
			line++
			if depth > 0 || pending {
				comment = ""
				pending = true
				continue
			}
			emit()
			start, startOff = line, i+1
		case '\\':
			if strings.HasPrefix(src[i+1:], "\n") || strings.HasPrefix(src[i+1:], "\r\n") {
				i = i + strings.IndexByte(src[i:], '\n')
				line++
				comment = ""
				pending = true
				continue
			}
			join(c)
			buf = append(buf, c)
		case '\'', '"':
			join(c)
			quote = c
			triple = strings.HasPrefix(src[i:], strings.Repeat(string(c), 3))
			if triple {
				buf = append(buf, c, c, c)
				i += 2
			} else {
				buf = append(buf, c)
			}
		case '(', '[', '{':
			join(c)
			depth++
			buf = append(buf, c)
		case ')', ']', '}':
			join(c)
			if depth > 0 {
				depth--
			}
			buf = append(buf, c)
		default:
			join(c)
			buf = append(buf, c)
		}
	}
	if depth > 0 || quote != 0 {
		// An unclosed bracket or string would swallow the rest of the
		// cell. Recover as papermill's line-based reading would: the first
		// line stands alone and the lines after it are read afresh.
		rest := src[startOff:]
		if nl := strings.IndexByte(rest, '\n'); nl >= 0 {
			for _, part := range [2][]pyLine{logicalLines(rest[:nl]), logicalLines(rest[nl+1:])} {
				for _, l := range part {
					l.line += start - 1
					out = append(out, l)
				}
				start++
			}
			return out
		}
	}
	if len(strings.TrimSpace(string(buf))) > 0 || comment != "" {
		emit()
	}
	return out
}

// topLevel calls visit with the index of every byte of s that is outside
// string literals and brackets, until visit returns false. s must hold
// whole statements (strings closed), as logical lines do.
func topLevel(s string, visit func(i int) bool) {
	depth := 0
	var quote byte
	triple := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if quote != 0 {
			switch {
			case c == '\\':
				i++
			case c == quote && !triple:
				quote = 0
			case c == quote && strings.HasPrefix(s[i:], strings.Repeat(string(c), 3)):
				quote = 0
				i += 2
			}
			continue
		}
		switch c {
		case '\'', '"':
			quote = c
			triple = strings.HasPrefix(s[i:], strings.Repeat(string(c), 3))
			if triple {
				i += 2
			}
			continue
		case '(', '[', '{':
			depth++
			continue
		case ')', ']', '}':
			if depth > 0 {
				depth--
			}
			continue
		}
		if depth == 0 && !visit(i) {
			return
		}
	}
}

// splitTopLevel splits s at every top-level sep byte (';' between
// statements, ',' between tuple items).
func splitTopLevel(s string, sep byte) []string {
	var parts []string
	last := 0
	topLevel(s, func(i int) bool {
		if s[i] == sep {
			parts = append(parts, s[last:i])
			last = i + 1
		}
		return true
	})
	return append(parts, s[last:])
}

// assignments returns the positions of the top-level '=' that assign, not
// those of ==, !=, <=, >=, augmented assignments (+= ...) or the walrus.
func assignments(s string) []int {
	var at []int
	topLevel(s, func(i int) bool {
		if s[i] != '=' {
			return true
		}
		if i+1 < len(s) && s[i+1] == '=' {
			return true
		}
		if i > 0 && strings.IndexByte("=!<>+-*/%&|^@:~", s[i-1]) >= 0 {
			return true
		}
		at = append(at, i)
		return true
	})
	return at
}

// matchingClose returns the index of the bracket closing the one at s[0],
// or -1.
func matchingClose(s string) int {
	if s == "" || strings.IndexByte("([{", s[0]) < 0 {
		return -1
	}
	closeAt := -1
	depth := 0
	var quote byte
	for i := 0; i < len(s) && closeAt < 0; i++ {
		c := s[i]
		if quote != 0 {
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
			continue
		}
		switch c {
		case '\'', '"':
			quote = c
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			depth--
			if depth == 0 {
				closeAt = i
			}
		}
	}
	return closeAt
}

// pythonKeywords are the hard keywords: names that can never be assigned,
// so a parameter named one would be a syntax error in the injected cell.
// Soft keywords (match, case, type, _) are ordinary names.
var pythonKeywords = map[string]bool{
	"False": true, "None": true, "True": true, "and": true, "as": true,
	"assert": true, "async": true, "await": true, "break": true, "class": true,
	"continue": true, "def": true, "del": true, "elif": true, "else": true,
	"except": true, "finally": true, "for": true, "from": true, "global": true,
	"if": true, "import": true, "in": true, "is": true, "lambda": true,
	"nonlocal": true, "not": true, "or": true, "pass": true, "raise": true,
	"return": true, "try": true, "while": true, "with": true, "yield": true,
}

// isIdentifier reports whether s is a Python identifier: a letter or '_'
// followed by letters, digits, marks or connectors. Python's exact rule
// (XID_Start/XID_Continue after NFKC) is close to this; anything this
// accepts is still only ever written as a name, never evaluated.
func isIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_' || unicode.IsLetter(r) || unicode.Is(unicode.Nl, r):
		case i > 0 && (unicode.IsDigit(r) || unicode.In(r, unicode.Mn, unicode.Mc, unicode.Pc)):
		default:
			return false
		}
	}
	return true
}
