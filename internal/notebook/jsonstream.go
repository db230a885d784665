package notebook

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"unicode/utf16"
	"unicode/utf8"
)

// jsonStream is a forward-only JSON reader that visits the parts of a
// document a caller asks for and skips the rest without decoding or
// buffering it. Output notebooks grow to hundreds of megabytes of outputs
// (images, logs) and are polled every second for progress; skipping their
// strings with bufio's IndexByte-backed ReadSlice keeps a poll cheap and
// its memory constant.
type jsonStream struct {
	r *bufio.Reader
}

// maxJSONDepth bounds recursion on hostile or corrupt input.
const maxJSONDepth = 1000

var errJSONDepth = errors.New("JSON nested too deeply")

func newJSONStream(r io.Reader) *jsonStream {
	return &jsonStream{r: bufio.NewReaderSize(r, 64<<10)}
}

// peek returns the next byte that is not whitespace, without consuming it.
func (s *jsonStream) peek() (byte, error) {
	for {
		c, err := s.r.ReadByte()
		if err != nil {
			return 0, eof(err)
		}
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c, s.r.UnreadByte()
	}
}

// eof turns a clean EOF inside a document into ErrUnexpectedEOF: for a
// poller it means "file still being written", worth retrying.
func eof(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func (s *jsonStream) expect(want byte) error {
	c, err := s.peek()
	if err != nil {
		return err
	}
	if c != want {
		return fmt.Errorf("%w: found %q where %q was expected", ErrNotNotebook, c, want)
	}
	_, err = s.r.ReadByte()
	return err
}

// object calls field for each key of the object at the cursor; field must
// consume the value (skip it if not interested).
func (s *jsonStream) object(field func(key string) error) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	for first := true; ; first = false {
		c, err := s.peek()
		if err != nil {
			return err
		}
		if c == '}' {
			_, err = s.r.ReadByte()
			return err
		}
		if !first {
			if err := s.expect(','); err != nil {
				return err
			}
		}
		key, err := s.str(256)
		if err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		if err := field(key); err != nil {
			return err
		}
	}
}

// array calls item for each element of the array at the cursor; item must
// consume the element.
func (s *jsonStream) array(item func(i int) error) error {
	if err := s.expect('['); err != nil {
		return err
	}
	for i := 0; ; i++ {
		c, err := s.peek()
		if err != nil {
			return err
		}
		if c == ']' {
			_, err = s.r.ReadByte()
			return err
		}
		if i > 0 {
			if err := s.expect(','); err != nil {
				return err
			}
		}
		if err := item(i); err != nil {
			return err
		}
	}
}

// skip consumes one value of any kind.
func (s *jsonStream) skip() error { return s.skipDepth(0) }

func (s *jsonStream) skipDepth(depth int) error {
	if depth > maxJSONDepth {
		return errJSONDepth
	}
	c, err := s.peek()
	if err != nil {
		return err
	}
	switch c {
	case '"':
		s.r.ReadByte()
		return s.skipStringRest()
	case '{':
		return s.object(func(string) error { return s.skipDepth(depth + 1) })
	case '[':
		return s.array(func(int) error { return s.skipDepth(depth + 1) })
	}
	_, err = s.literal()
	return err
}

// literal consumes a number, true, false or null and returns its text.
func (s *jsonStream) literal() (string, error) {
	if _, err := s.peek(); err != nil {
		return "", err
	}
	var lit []byte
	for {
		c, err := s.r.ReadByte()
		if err != nil {
			if err == io.EOF && len(lit) > 0 {
				return string(lit), nil
			}
			return "", eof(err)
		}
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c == '-' || c == '+' || c == '.' || c == 'E') {
			if len(lit) == 0 {
				return "", fmt.Errorf("%w: unexpected %q", ErrNotNotebook, c)
			}
			return string(lit), s.r.UnreadByte()
		}
		if len(lit) < 64 {
			lit = append(lit, c)
		}
	}
}

// skipStringRest consumes the rest of a string whose opening quote (and
// any complete escapes) have been read. A quote ends the string unless an
// odd run of backslashes precedes it, a run that may straddle chunks.
func (s *jsonStream) skipStringRest() error {
	run := 0 // backslashes right before the current chunk
	for {
		chunk, err := s.r.ReadSlice('"')
		if err == bufio.ErrBufferFull {
			run = backslashRun(chunk, run)
			continue
		}
		if err != nil {
			return eof(err)
		}
		if backslashRun(chunk[:len(chunk)-1], run)%2 == 0 {
			return nil
		}
		run = 0
	}
}

// backslashRun counts the backslashes ending b, continuing prev when b is
// nothing but backslashes.
func backslashRun(b []byte, prev int) int {
	n := 0
	for n < len(b) && b[len(b)-1-n] == '\\' {
		n++
	}
	if n == len(b) {
		return prev + n
	}
	return n
}

// str decodes the string at the cursor, keeping at most limit bytes of it
// and skipping the rest cheaply. A null reads as "".
func (s *jsonStream) str(limit int) (string, error) {
	c, err := s.peek()
	if err != nil {
		return "", err
	}
	if c != '"' {
		lit, err := s.literal()
		if err == nil && lit != "null" {
			err = fmt.Errorf("%w: %s where a string was expected", ErrNotNotebook, lit)
		}
		return "", err
	}
	s.r.ReadByte()
	var out []byte
	for {
		if len(out) >= limit {
			return string(out), s.skipStringRest()
		}
		c, err := s.r.ReadByte()
		if err != nil {
			return "", eof(err)
		}
		switch c {
		case '"':
			return string(out), nil
		case '\\':
			r, err := s.escape()
			if err != nil {
				return "", err
			}
			out = utf8.AppendRune(out, r)
		default:
			out = append(out, c)
		}
	}
}

// escape decodes the escape after a backslash, joining UTF-16 surrogate
// pairs (\ud83d\ude00) into one rune.
func (s *jsonStream) escape() (rune, error) {
	c, err := s.r.ReadByte()
	if err != nil {
		return 0, eof(err)
	}
	switch c {
	case '"', '\\', '/':
		return rune(c), nil
	case 'b':
		return '\b', nil
	case 'f':
		return '\f', nil
	case 'n':
		return '\n', nil
	case 'r':
		return '\r', nil
	case 't':
		return '\t', nil
	case 'u':
		r, err := s.hex4()
		if err != nil || !utf16.IsSurrogate(r) {
			return r, err
		}
		if next, _ := s.r.Peek(2); string(next) != `\u` {
			return utf8.RuneError, nil
		}
		s.r.Discard(2)
		r2, err := s.hex4()
		return utf16.DecodeRune(r, r2), err
	}
	return 0, fmt.Errorf("%w: invalid escape \\%c", ErrNotNotebook, c)
}

func (s *jsonStream) hex4() (rune, error) {
	var r rune
	for range 4 {
		c, err := s.r.ReadByte()
		if err != nil {
			return 0, eof(err)
		}
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, fmt.Errorf("%w: invalid \\u escape", ErrNotNotebook)
		}
	}
	return r, nil
}
