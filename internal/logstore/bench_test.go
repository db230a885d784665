package logstore

import (
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkReadPage reads a 100-line page at the start, middle and end of a
// large log, to show that a page costs the same wherever it is. The log is
// written through the Writer's Copy (100-byte lines, as a chatty notebook
// prints them) into a temp dir that is removed afterwards; its size is
// MILLRACE_BENCH_LOG_MB megabytes (default 64; the published figure, from
// `make bench`, uses 1024). Each sub-benchmark also reports the log's size
// and the rate it was written at.
func BenchmarkReadPage(b *testing.B) {
	mb := 64
	if v, err := strconv.Atoi(os.Getenv("MILLRACE_BENCH_LOG_MB")); err == nil && v > 0 {
		mb = v
	}
	job := b.TempDir()
	w, err := Create(AttemptDir(job, 1))
	if err != nil {
		b.Fatal(err)
	}
	line := []byte(strings.Repeat("0123456789", 10) + "\n") // 100 bytes a line
	lines := int64(mb) << 20 / int64(len(line)-1)
	began := time.Now()
	// Through Copy, as the worker stores an executor's output.
	if err := w.Copy(Stdout, &repeated{line: line, left: lines}); err != nil {
		b.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	writeRate := float64(lines*int64(len(line)-1)) / 1e6 / time.Since(began).Seconds()
	b.Logf("log of %d MB, %d lines, written at %.0f MB/s", mb, lines, writeRate)
	for _, pos := range []struct {
		name string
		at   int64
	}{{"start", 0}, {"middle", lines / 2}, {"end", lines - 100}} {
		b.Run(pos.name, func(b *testing.B) {
			for b.Loop() {
				p, err := Read(job, Cursor{Attempt: 1, Next: pos.at}, PageLimit{Lines: 100}, BothStreams)
				if err != nil || len(p.Lines) != 100 {
					b.Fatalf("read %d lines, err %v", len(p.Lines), err)
				}
			}
			b.ReportMetric(float64(mb), "log-MB")
			b.ReportMetric(writeRate, "write-MB/s")
		})
	}
}

// repeated reads as left copies of line, without holding them in memory.
type repeated struct {
	line []byte
	left int64
	off  int
}

func (r *repeated) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && r.left > 0 {
		c := copy(p[n:], r.line[r.off:])
		n += c
		if r.off += c; r.off == len(r.line) {
			r.off = 0
			r.left--
		}
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}
