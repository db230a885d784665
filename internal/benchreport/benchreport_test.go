package benchreport

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseResult(t *testing.T) {
	name, figs, ok := ParseResult("BenchmarkReadPage/end-2   \t     200\t    146238 ns/op\t      1024 log-MB")
	if !ok || name != "BenchmarkReadPage/end" || figs["ns/op"] != 146238 || figs["log-MB"] != 1024 {
		t.Fatalf("got %q %v %v", name, figs, ok)
	}
	for _, line := range []string{"=== RUN   BenchmarkX", "BenchmarkX", "BenchmarkX-2 \t 1\t 12 ns/op\t 3", "ok  \tmillrace/x\t0.2s"} {
		if _, _, ok := ParseResult(line); ok {
			t.Errorf("%q parsed as a result", line)
		}
	}
}

// A result line that test2json splits in two events (the name, then the
// figures) is still read.
func TestParseJoinsSplitLines(t *testing.T) {
	events := `{"Action":"output","Test":"BenchmarkT/a","Output":"BenchmarkT/a-2   \t"}
{"Action":"output","Test":"BenchmarkT/a","Output":"   5\t  3.5 p99-ms\n"}
{"Action":"output","Test":"BenchmarkT/b","Output":"BenchmarkT/b-2 \t 5\t 7 p99-ms\n"}
not json: a build error
`
	var log strings.Builder
	res, tail := parse(strings.NewReader(events), &log, "")
	if v, _ := res.Value("BenchmarkT/a", "p99-ms"); v != 3.5 {
		t.Errorf("BenchmarkT/a p99 = %v, want 3.5 (results %v)", v, res)
	}
	if v, _ := res.Value("BenchmarkT/b", "p99-ms"); v != 7 {
		t.Errorf("BenchmarkT/b p99 = %v, want 7", v)
	}
	if !strings.Contains(log.String(), "not json: a build error") || len(tail) == 0 {
		t.Errorf("log %q, tail %q: the non-JSON line is lost", log.String(), tail)
	}
}

// A group's prefix names its results apart from the same benchmark run
// elsewhere.
func TestParsePrefix(t *testing.T) {
	ev := `{"Action":"output","Test":"BenchmarkT","Output":"BenchmarkT-2 \t 5\t 7 p99-ms\n"}` + "\n"
	res, _ := parse(strings.NewReader(ev), io.Discard, "shm:")
	if v, ok := res.Value("shm:BenchmarkT", "p99-ms"); !ok || v != 7 {
		t.Errorf("got %v", res)
	}
}

func TestVerdicts(t *testing.T) {
	cases := []struct {
		res          Results
		bench, unit  string
		value, verdt string
	}{
		// 5% of a 4 s run is 200 ms: 180 ms meets though it is over 150.
		{Results{overheadBench: {"direct-s": 4, "overhead-ms": 180}}, overheadBench, "overhead-ms", "180 ms", "meets"},
		{Results{overheadBench: {"direct-s": 2, "overhead-ms": 180}}, overheadBench, "overhead-ms", "180 ms", "misses"},
		{Results{overheadBench: {"overhead-ms": 100}}, overheadBench, "overhead-ms", "100 ms", "unknown"},
		{Results{"BenchmarkThroughput": {"ratio": 2.1}}, "BenchmarkThroughput", "ratio", "2.100", "meets"},
		{Results{"BenchmarkThroughput": {"ratio": 0.96}}, "BenchmarkThroughput", "ratio", "0.960", "misses"},
		{Results{"cold-pool:BenchmarkThroughput": {"ratio": 0.96}}, "cold-pool:BenchmarkThroughput", "ratio", "0.960", "meets"},
		{Results{"cold-pool:BenchmarkThroughput": {"ratio": 0.9}}, "cold-pool:BenchmarkThroughput", "ratio", "0.900", "misses"},
		{Results{pageBench + "start": {"ns/op": 1e5}, pageBench + "end": {"ns/op": 3e5}}, pageBench + "end", "ns/op", "0.300 ms", "misses"},
		{Results{pageBench + "start": {"ns/op": 1e5}, pageBench + "end": {"ns/op": 1.5e5}}, pageBench + "end", "ns/op", "0.150 ms", "meets"},
		{Results{}, "BenchmarkToolLatency/get_job_status", "p99-ms", "not measured", "unknown"},
		{Results{costBench + "/2GB": {"auto-cost-%": 3}}, costBench + "/2GB", "auto-cost-%", "3.0%", "meets"},
		{Results{costBench + "/2GB": {"auto-cost-%": 3.4}}, costBench + "/2GB", "auto-cost-%", "3.4%", "misses"},
		{Results{pauseBench + "/1GB": {"fork_pause_s": 0.042}}, pauseBench + "/1GB", "fork_pause_s", "42 ms", "meets"},
		{Results{pauseBench + "/1GB": {"fork_pause_s": 0.1}}, pauseBench + "/1GB", "fork_pause_s", "100 ms", "misses"},
	}
	for _, c := range cases {
		row := findRow(t, c.bench, c.unit)
		value, verdict := row.Cell(c.res)
		if value != c.value || verdict != c.verdt {
			t.Errorf("%s %s with %v: got %q %q, want %q %q", c.bench, c.unit, c.res, value, verdict, c.value, c.verdt)
		}
	}
}

func findRow(t *testing.T, bench, unit string) Row {
	t.Helper()
	for _, r := range Rows {
		if r.Bench == bench && r.Unit == unit {
			return r
		}
	}
	t.Fatalf("no row for %s %s", bench, unit)
	return Row{}
}

// Every row reads a benchmark that some group runs.
func TestRowsHaveGroups(t *testing.T) {
	for _, r := range Rows {
		top, _, _ := strings.Cut(r.Bench, "/")
		found := false
		for _, g := range Suite {
			if name, ok := strings.CutPrefix(top, g.Prefix); ok && strings.Contains(g.Bench, "^"+name+"$") {
				found = true
			}
		}
		if !found {
			t.Errorf("row %q reads %s, which no group runs", r.Metric, r.Bench)
		}
	}
}

func TestWriteSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	before := "# Benchmarks\n\nintro\n\n" + BeginMarker + "\nold table\n" + EndMarker + "\n\n## How to reproduce\n"
	if err := os.WriteFile(path, []byte(before), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteSection(path, "new table\n"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	want := "# Benchmarks\n\nintro\n\n" + BeginMarker + "\nnew table\n\n" + EndMarker + "\n\n## How to reproduce\n"
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}

	bare := filepath.Join(t.TempDir(), "OTHER.md")
	os.WriteFile(bare, []byte("no markers\n"), 0o644)
	if err := WriteSection(bare, "table"); err == nil || !strings.Contains(err.Error(), "bench:begin") {
		t.Errorf("a file without markers: got %v, want an error naming the markers", err)
	}
	if b, _ := os.ReadFile(bare); string(b) != "no markers\n" {
		t.Errorf("a file without markers was changed: %q", b)
	}
}

// TestEarlierFiguresKeptForGroupsNotRun: a run of some groups written into
// a published table keeps the other rows' figures, marked ‡ with the run
// that measured them, and replaces the rows it measured; written again by
// another partial run, the marks and their origins carry over.
func TestEarlierFiguresKeptForGroupsNotRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	if err := os.WriteFile(path, []byte("# B\n\n"+BeginMarker+"\n"+EndMarker+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A full run measured everything: each row's value is its position.
	all := Results{}
	for i, row := range Rows {
		if all[row.Bench] == nil {
			all[row.Bench] = map[string]float64{}
		}
		all[row.Bench][row.Unit] = float64(i)
	}
	full := Report{Commit: "aaa", Results: all}
	if err := WriteSection(path, full.Markdown()); err != nil {
		t.Fatal(err)
	}
	// A partial run measured the first row's benchmark only, differently.
	first := Rows[0]
	for round, commit := range []string{"bbb", "ccc"} {
		earlier, err := ReadEarlier(path)
		if err != nil {
			t.Fatal(err)
		}
		part := Report{Commit: commit, Results: Results{first.Bench: {first.Unit: 1000}}, Earlier: earlier}
		table := part.Markdown()
		if err := WriteSection(path, table); err != nil {
			t.Fatal(err)
		}
		again, _ := ReadEarlier(path)
		seen := map[string]int{}
		for i, row := range Rows {
			key := rowKey(row.Metric, seen)
			got := again.Cells[key][0]
			if row.Bench == first.Bench {
				if strings.Contains(got, "‡") || got == notMeasured {
					t.Errorf("round %d: row %q, measured by this run, reads %q", round, row.Metric, got)
				}
				continue
			}
			want, _ := Row.Cell(row, all)
			if got != want || !strings.Contains(table, "| "+row.Metric+" | "+want+" ‡ |") {
				t.Errorf("round %d: row %d %q reads %q, want the earlier %q marked ‡", round, i, row.Metric, got, want)
			}
		}
		if !strings.Contains(table, "‡ measured ") || !strings.Contains(table, "at commit aaa") {
			t.Errorf("round %d: the table does not say when the ‡ figures were measured:\n%s", round, table)
		}
	}
}
