package logstore

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrBadCursor is returned for a cursor this package did not make.
var ErrBadCursor = errors.New("malformed log cursor: pass back next_cursor exactly as returned, or omit it to start from the beginning")

// attemptPrefix names attempt directories inside a job directory.
const attemptPrefix = "attempt-"

// AttemptDir returns the directory of attempt n (1-based) of the job whose
// directory is jobDir.
func AttemptDir(jobDir string, n int) string {
	return filepath.Join(jobDir, attemptPrefix+strconv.Itoa(n))
}

// Attempts lists the attempt numbers that have a directory in jobDir, in
// ascending order. A job with no attempt yet has none.
func Attempts(jobDir string) ([]int, error) {
	entries, err := os.ReadDir(jobDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list attempts: %w", err)
	}
	var out []int
	for _, e := range entries {
		n, err := strconv.Atoi(strings.TrimPrefix(e.Name(), attemptPrefix))
		if e.IsDir() && strings.HasPrefix(e.Name(), attemptPrefix) && err == nil && n > 0 {
			out = append(out, n)
		}
	}
	sort.Ints(out)
	return out, nil
}

// Cursor is a position in a job's log: the next line to read is record Next
// (0-based) of attempt Attempt. It never skips or repeats a line because
// records are only ever appended.
type Cursor struct {
	Attempt int
	Next    int64
}

// String encodes the cursor opaquely for clients.
func (c Cursor) String() string {
	return base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("v1:%d:%d", c.Attempt, c.Next)))
}

// ParseCursor decodes a client's cursor; "" is the start of the log.
func ParseCursor(s string) (Cursor, error) {
	if s == "" {
		return Cursor{Attempt: 1}, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, ErrBadCursor
	}
	var c Cursor
	if n, err := fmt.Sscanf(string(raw), "v1:%d:%d", &c.Attempt, &c.Next); err != nil || n != 2 || c.Attempt < 1 || c.Next < 0 {
		return Cursor{}, ErrBadCursor
	}
	return c, nil
}

// maxScan bounds how many records one Read call looks at, so a filter that
// matches nothing (stderr of a run that only prints to stdout) still answers
// quickly; the returned cursor continues the scan.
const maxScan = 1 << 16

// DefaultPageBytes is the byte budget of a page: the text of its lines
// (before JSON escaping) stays within it, whatever the number of lines
// asked for, so one page of 64 KiB lines cannot grow to tens of megabytes.
const DefaultPageBytes = 1 << 20

// TruncatedMarker ends the text of a line cut to a page's byte budget
// (only a line longer than the whole budget is cut).
const TruncatedMarker = " [... truncated by millrace: the line is longer than a page's byte budget]"

// PageLimit bounds a page by lines and by bytes of text; Bytes <= 0 is
// DefaultPageBytes.
type PageLimit struct {
	Lines int
	Bytes int
}

func (l PageLimit) bytes() int {
	if l.Bytes <= 0 {
		return DefaultPageBytes
	}
	return l.Bytes
}

// Page is the result of a Read.
type Page struct {
	Lines []Line
	Next  Cursor
	// AtEnd is true when the cursor has reached the end of everything
	// written so far (more may still come while the run is live).
	AtEnd bool

	size int  // bytes of text in Lines
	full bool // the byte budget stopped the page
}

// Read returns up to lim.Lines lines of the wanted streams starting at
// cur, moving on to later attempts when an attempt is exhausted. The page
// stops early at the line that would take its text past lim's byte budget,
// and Next points at that line, so the next page starts with it: nothing is
// skipped or repeated. The first line of a page is always returned (cut to
// the budget if it is longer, with TruncatedMarker), so a page always moves
// forward.
func Read(jobDir string, cur Cursor, lim PageLimit, want Streams) (Page, error) {
	if lim.Lines <= 0 {
		lim.Lines = 100
	}
	attempts, err := Attempts(jobDir)
	if err != nil {
		return Page{}, err
	}
	page := Page{Next: cur}
	scanned := 0
	for _, a := range attempts {
		if a < page.Next.Attempt {
			continue
		}
		if a > page.Next.Attempt {
			page.Next = Cursor{Attempt: a}
		}
		if err := readAttempt(AttemptDir(jobDir, a), a, &page, lim, want, &scanned); err != nil {
			return Page{}, err
		}
		if len(page.Lines) >= lim.Lines || page.full || scanned >= maxScan {
			return page, nil
		}
	}
	page.AtEnd = true
	return page, nil
}

// readAttempt appends lines of attempt a to page, advancing page.Next.
func readAttempt(dir string, a int, page *Page, lim PageLimit, want Streams, scanned *int) error {
	f, err := openLog(dir)
	if err != nil || f == nil {
		return err
	}
	defer f.Close()
	total, err := f.records()
	if err != nil {
		return err
	}
	const batch = 1024
	buf := make([]byte, batch*RecordSize)
	budget := lim.bytes()
	for page.Next.Next < total && len(page.Lines) < lim.Lines && !page.full && *scanned < maxScan {
		n := min(total-page.Next.Next, batch)
		b := buf[:n*RecordSize]
		if _, err := f.index.ReadAt(b, page.Next.Next*RecordSize); err != nil {
			return fmt.Errorf("read log index: %w", err)
		}
		for i := int64(0); i < n && len(page.Lines) < lim.Lines; i++ {
			r := getRecord(b[i*RecordSize:])
			if want.Has(r.stream) && len(page.Lines) > 0 && page.size+int(r.length) > budget {
				page.full = true // this line starts the next page
				return nil
			}
			page.Next.Next++
			*scanned++
			if !want.Has(r.stream) {
				continue
			}
			line, err := f.line(a, page.Next.Next, r, budget)
			if err != nil {
				return err
			}
			page.size += len(line.Text)
			page.Lines = append(page.Lines, line)
		}
	}
	return nil
}

// Tail returns the last lim.Lines lines of the wanted streams (from the
// latest attempts) whose text fits lim's byte budget, and a cursor just
// past the end, for following. The last line is always returned (cut to
// the budget if it is longer).
func Tail(jobDir string, lim PageLimit, want Streams) (Page, error) {
	attempts, err := Attempts(jobDir)
	if err != nil {
		return Page{}, err
	}
	if len(attempts) == 0 {
		return Page{Next: Cursor{Attempt: 1}, AtEnd: true}, nil
	}
	var lines []Line
	last := attempts[len(attempts)-1]
	end := Cursor{Attempt: last}
	budget, size, full := lim.bytes(), 0, false
	for i := len(attempts) - 1; i >= 0 && len(lines) < lim.Lines && !full; i-- {
		a := attempts[i]
		f, err := openLog(AttemptDir(jobDir, a))
		if err != nil {
			return Page{}, err
		}
		if f == nil {
			continue
		}
		total, err := f.records()
		if err == nil && a == last {
			end.Next = total
		}
		var got []Line
		var b [RecordSize]byte
		scanned := 0
		for k := total - 1; err == nil && k >= 0 && len(lines)+len(got) < lim.Lines && scanned < maxScan; k-- {
			scanned++
			if _, err = f.index.ReadAt(b[:], k*RecordSize); err != nil {
				break
			}
			r := getRecord(b[:])
			if !want.Has(r.stream) {
				continue
			}
			if len(lines)+len(got) > 0 && size+int(r.length) > budget {
				full = true
				break
			}
			var line Line
			if line, err = f.line(a, k+1, r, budget); err == nil {
				size += len(line.Text)
				got = append(got, line)
			}
		}
		f.Close()
		if err != nil {
			return Page{}, fmt.Errorf("tail log: %w", err)
		}
		for i, j := 0, len(got)-1; i < j; i, j = i+1, j-1 {
			got[i], got[j] = got[j], got[i]
		}
		lines = append(got, lines...)
	}
	return Page{Lines: lines, Next: end, AtEnd: true}, nil
}

type logFiles struct {
	data, index *os.File
}

// openLog opens an attempt's log for reading; (nil, nil) when the attempt
// has not written a log (yet).
func openLog(dir string) (*logFiles, error) {
	index, err := os.Open(filepath.Join(dir, IndexFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open log index: %w", err)
	}
	data, err := os.Open(filepath.Join(dir, DataFile))
	if err != nil {
		index.Close()
		return nil, fmt.Errorf("open log data: %w", err)
	}
	return &logFiles{data: data, index: index}, nil
}

func (f *logFiles) records() (int64, error) {
	st, err := f.index.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat log index: %w", err)
	}
	return st.Size() / RecordSize, nil
}

// line reads record r, cut to max bytes of text when it is longer.
func (f *logFiles) line(attempt int, seq int64, r record, max int) (Line, error) {
	n, truncated := int(r.length), false
	if n > max {
		n, truncated = max, true
	}
	text := make([]byte, n)
	if _, err := f.data.ReadAt(text, int64(r.offset)); err != nil && !(errors.Is(err, io.EOF) && n == 0) {
		return Line{}, fmt.Errorf("read log data: %w", err)
	}
	s := strings.ToValidUTF8(string(text), "\uFFFD")
	if truncated {
		s += TruncatedMarker
	}
	return Line{
		Attempt:   attempt,
		Seq:       seq,
		Stream:    r.stream.String(),
		Time:      time.Unix(0, r.nanos).UTC(),
		Text:      s,
		Continued: r.flags&flagContinued != 0,
		Truncated: truncated,
	}, nil
}

func (f *logFiles) Close() error {
	return errors.Join(f.data.Close(), f.index.Close())
}
