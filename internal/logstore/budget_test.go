package logstore

import (
	"strings"
	"testing"
)

// TestReadByteBudget: pages stop at the byte budget, the next page starts
// exactly at the line that did not fit (across attempts and a stream
// filter), and a line longer than the whole budget comes cut, with the
// marker, once.
func TestReadByteBudget(t *testing.T) {
	job := t.TempDir()
	var want []string
	var first, second []string
	for i := 0; i < 40; i++ {
		l := strings.Repeat(string(rune('a'+i%26)), 10+i*7)
		first = append(first, l)
		want = append(want, l)
	}
	long := strings.Repeat("L", 700)
	first = append(first, "E-stderr-is-filtered", long)
	want = append(want, long[:300]+TruncatedMarker)
	for i := 0; i < 10; i++ {
		second = append(second, strings.Repeat("z", 90+i))
		want = append(want, second[i])
	}
	writeLines(t, AttemptDir(job, 1), first...)
	writeLines(t, AttemptDir(job, 2), second...)

	const budget = 300
	var got []string
	cur := Cursor{Attempt: 1}
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("the pages never reach the end")
		}
		p, err := Read(job, cur, PageLimit{Lines: 1000, Bytes: budget}, OnlyStdout)
		if err != nil {
			t.Fatal(err)
		}
		size := 0
		for i, l := range p.Lines {
			size += len(l.Text)
			if l.Truncated && (i > 0 || !strings.HasSuffix(l.Text, TruncatedMarker)) {
				t.Errorf("truncated line %q not alone at the head of its page", l.Text[:20])
			}
			if !l.Truncated && size > budget {
				t.Errorf("page of %d bytes of text, budget %d", size, budget)
			}
		}
		got = append(got, texts(p.Lines)...)
		cur = p.Next
		if p.AtEnd {
			break
		}
		if len(p.Lines) == 0 {
			t.Fatal("a page with no line that is not at the end")
		}
	}
	if len(got) != len(want) {
		t.Fatalf("read %d lines, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("line %d: got %.40q..., want %.40q...", i, got[i], want[i])
		}
	}

	// A tail fits the budget too, ending with the last line.
	p, err := Tail(job, PageLimit{Lines: 1000, Bytes: budget}, OnlyStdout)
	if err != nil {
		t.Fatal(err)
	}
	if tt := texts(p.Lines); len(tt) != 3 || tt[2] != second[9] {
		t.Fatalf("tail: %d lines %q, want the last 3 (what fits %d bytes)", len(tt), tt, budget)
	}
}
