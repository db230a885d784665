package logstore

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkReadPage reads a 100-line page at the start, middle and end of a
// large log, to show that a page costs the same wherever it is. The log is
// written through the Writer (100-byte lines, as a chatty notebook prints
// them) into a temp dir that is removed afterwards; its size is
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
	line := []byte(strings.Repeat("0123456789", 10)) // 100 bytes a line
	lines := int64(mb) << 20 / int64(len(line))
	began := time.Now()
	for i := int64(0); i < lines; i++ {
		if err := w.WriteLine(Stdout, line); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	writeRate := float64(lines*int64(len(line))) / 1e6 / time.Since(began).Seconds()
	b.Logf("log of %d MB, %d lines, written at %.0f MB/s", mb, lines, writeRate)
	for _, pos := range []struct {
		name string
		at   int64
	}{{"start", 0}, {"middle", lines / 2}, {"end", lines - 100}} {
		b.Run(pos.name, func(b *testing.B) {
			for b.Loop() {
				p, err := Read(job, Cursor{Attempt: 1, Next: pos.at}, 100, BothStreams)
				if err != nil || len(p.Lines) != 100 {
					b.Fatalf("read %d lines, err %v", len(p.Lines), err)
				}
			}
			b.ReportMetric(float64(mb), "log-MB")
			b.ReportMetric(writeRate, "write-MB/s")
		})
	}
}
