package logstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func writeLines(t *testing.T, dir string, lines ...string) {
	t.Helper()
	w, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, l := range lines {
		stream := Stdout
		if strings.HasPrefix(l, "E") {
			stream = Stderr
		}
		if err := w.WriteLine(stream, []byte(l)); err != nil {
			t.Fatal(err)
		}
	}
}

func texts(lines []Line) []string {
	var out []string
	for _, l := range lines {
		out = append(out, l.Text)
	}
	return out
}

func TestReadPagesAcrossAttempts(t *testing.T) {
	job := t.TempDir()
	writeLines(t, AttemptDir(job, 1), "a1", "E1", "a2")
	writeLines(t, AttemptDir(job, 2), "b1", "E2")

	var got []string
	var attempts []int
	cur, _ := ParseCursor("")
	for i := 0; i < 10; i++ {
		p, err := Read(job, cur, PageLimit{Lines: 2}, BothStreams)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, texts(p.Lines)...)
		for _, l := range p.Lines {
			attempts = append(attempts, l.Attempt)
		}
		// The cursor must survive a round trip through its string form.
		if cur, err = ParseCursor(p.Next.String()); err != nil {
			t.Fatal(err)
		}
		if p.AtEnd {
			break
		}
	}
	if want := "a1 E1 a2 b1 E2"; strings.Join(got, " ") != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if want := "[1 1 1 2 2]"; fmt.Sprint(attempts) != want {
		t.Fatalf("attempts %v, want %s", attempts, want)
	}
}

func TestStreamFilter(t *testing.T) {
	job := t.TempDir()
	writeLines(t, AttemptDir(job, 1), "o1", "E1", "o2", "E2")
	p, err := Read(job, Cursor{Attempt: 1}, PageLimit{Lines: 10}, OnlyStderr)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(texts(p.Lines), ","); got != "E1,E2" {
		t.Fatalf("got %s, want E1,E2", got)
	}
	if p.Lines[0].Stream != "stderr" || p.Lines[0].Seq != 2 {
		t.Fatalf("got %+v, want stderr seq 2", p.Lines[0])
	}
}

func TestTail(t *testing.T) {
	job := t.TempDir()
	writeLines(t, AttemptDir(job, 1), "a1", "a2", "a3")
	writeLines(t, AttemptDir(job, 2), "b1")
	p, err := Tail(job, PageLimit{Lines: 3}, BothStreams)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(texts(p.Lines), ","); got != "a2,a3,b1" {
		t.Fatalf("got %s, want a2,a3,b1", got)
	}
	// Following from the tail cursor yields only new lines.
	w, err := Create(AttemptDir(job, 2))
	if err != nil {
		t.Fatal(err)
	}
	w.WriteLine(Stdout, []byte("b2"))
	w.Close()
	next, err := Read(job, p.Next, PageLimit{Lines: 10}, BothStreams)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(texts(next.Lines), ","); got != "b2" {
		t.Fatalf("after tail got %s, want b2", got)
	}
}

func TestCopySplitsLongLinesAndKeepsPartialLast(t *testing.T) {
	job := t.TempDir()
	w, err := Create(AttemptDir(job, 1))
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", MaxLineBytes*2+10)
	in := "short\r\n" + long + "\nlast-no-newline"
	if err := w.Copy(Stdout, strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	p, err := Read(job, Cursor{Attempt: 1}, PageLimit{Lines: 100}, BothStreams)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Lines) != 5 {
		t.Fatalf("got %d lines, want 5 (short, 3 chunks, last)", len(p.Lines))
	}
	var joined strings.Builder
	for _, l := range p.Lines[1:4] {
		joined.WriteString(l.Text)
	}
	if joined.String() != long || !p.Lines[1].Continued || !p.Lines[2].Continued || p.Lines[3].Continued {
		t.Fatalf("long line not rebuilt from continued chunks")
	}
	if p.Lines[0].Text != "short" || p.Lines[4].Text != "last-no-newline" {
		t.Fatalf("got %q and %q", p.Lines[0].Text, p.Lines[4].Text)
	}
}

// Lines that arrive together are stored together (one write per file),
// each still its own line, in order, also around a line too long for one
// record.
func TestCopyStoresManyLinesInOrder(t *testing.T) {
	job := t.TempDir()
	w, err := Create(AttemptDir(job, 1))
	if err != nil {
		t.Fatal(err)
	}
	// A line of MaxLineBytes+10 bytes is stored as two records, the first
	// flagged as continued.
	var in strings.Builder
	var want []string
	for i := range 5000 {
		line := fmt.Sprintf("line %d", i)
		if i == 2500 {
			line = strings.Repeat("y", MaxLineBytes+10)
			want = append(want, line[:MaxLineBytes], line[MaxLineBytes:])
		} else {
			want = append(want, line)
		}
		in.WriteString(line + "\n")
	}
	if err := w.Copy(Stdout, strings.NewReader(in.String())); err != nil {
		t.Fatal(err)
	}
	lines, _ := w.Stats()
	w.Close()
	p, err := Read(job, Cursor{Attempt: 1}, PageLimit{Lines: len(want) + 10}, BothStreams)
	if err != nil {
		t.Fatal(err)
	}
	if int(lines) != len(want) || len(p.Lines) != len(want) {
		t.Fatalf("stored %d records, read %d lines, want %d", lines, len(p.Lines), len(want))
	}
	for i, l := range p.Lines {
		if l.Text != want[i] || l.Seq != int64(i+1) || l.Continued != (i == 2500) {
			t.Fatalf("line %d: got %q (seq %d, continued %v), want %q", i, l.Text, l.Seq, l.Continued, want[i])
		}
	}
}

// TestConcurrentReadNeverSkipsOrRepeats reads while two pumps write and
// checks that every line is seen exactly once and in per-stream order.
func TestConcurrentReadNeverSkipsOrRepeats(t *testing.T) {
	job := t.TempDir()
	w, err := Create(AttemptDir(job, 1))
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	var wg sync.WaitGroup
	for _, s := range []Stream{Stdout, Stderr} {
		pr, pw := io.Pipe()
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				fmt.Fprintf(pw, "%s %d\n", s, i)
			}
			pw.Close()
		}()
		go func() {
			defer wg.Done()
			if err := w.Copy(s, pr); err != nil {
				t.Error(err)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	seen := map[string]int{}
	cur := Cursor{Attempt: 1}
	finished := false
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		select {
		case <-done:
			finished = true
		default:
		}
		p, err := Read(job, cur, PageLimit{Lines: 137}, BothStreams)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range p.Lines {
			var name string
			var i int
			fmt.Sscanf(l.Text, "%s %d", &name, &i)
			if seen[name] != i {
				t.Fatalf("%s: got line %d, want %d", name, i, seen[name])
			}
			seen[name]++
		}
		cur = p.Next
		if finished && p.AtEnd {
			break
		}
	}
	if seen["stdout"] != n || seen["stderr"] != n {
		t.Fatalf("saw %v, want %d of each", seen, n)
	}
	w.Close()
}

func TestCreateRecoversFromTornWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "attempt-1")
	writeLines(t, dir, "one", "two")
	// Simulate a crash between the data write and the index write, and a
	// torn index record.
	f, _ := os.OpenFile(filepath.Join(dir, DataFile), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("garbage")
	f.Close()
	f, _ = os.OpenFile(filepath.Join(dir, IndexFile), os.O_APPEND|os.O_WRONLY, 0)
	f.Write(make([]byte, RecordSize/2))
	f.Close()

	writeLines(t, dir, "three")
	p, err := Read(filepath.Dir(dir), Cursor{Attempt: 1}, PageLimit{Lines: 10}, BothStreams)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(texts(p.Lines), ","); got != "one,two,three" {
		t.Fatalf("got %s, want one,two,three", got)
	}
}

func TestParseCursorRejectsGarbage(t *testing.T) {
	for _, s := range []string{"x", "!!!", Cursor{Attempt: 1}.String() + "A", "djE6MDoz" /* v1:0:3 */} {
		if _, err := ParseCursor(s); !errors.Is(err, ErrBadCursor) {
			t.Errorf("ParseCursor(%q) = %v, want ErrBadCursor", s, err)
		}
	}
	c := Cursor{Attempt: 3, Next: 42}
	if got, err := ParseCursor(c.String()); err != nil || got != c {
		t.Fatalf("round trip got %+v %v, want %+v", got, err, c)
	}
}

func TestWriteErrorIsSticky(t *testing.T) {
	w, err := Create(filepath.Join(t.TempDir(), "attempt-1"))
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := w.WriteLine(Stdout, []byte("x")); err == nil {
		t.Fatal("write after close succeeded")
	}
	// Copy drains its input even after an error so the writer never blocks.
	if err := w.Copy(Stdout, bytes.NewReader(bytes.Repeat([]byte("y\n"), 1000))); err == nil {
		t.Fatal("Copy after close returned nil")
	}
}
