// Package benchreport runs millrace's benchmarks package by
// package with `go test -json -bench` and turns the figures they report
// into one table: metric, value, target, verdict. Nothing in it measures or
// types a figure: every value is read from a benchmark's output, and every
// verdict is computed from the values.
package benchreport

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"time"

	"millrace/internal/mdreport"
)

// Report is one run of the suite.
type Report struct {
	Machine   Machine
	Commit    string // the code measured (Commit)
	LoadAfter string // the load average when the run ended
	Started   time.Time
	Took      time.Duration
	Quick     bool
	Results   Results
	Failures  []string // groups that failed, with their error
	// Earlier is the table published before this run, whose figures fill
	// the rows this run did not measure (a run of some groups, -only).
	Earlier Earlier
}

// Earlier is a published table read back: each row's value and verdict,
// and the lines saying when they were measured.
type Earlier struct {
	Cells   map[string][2]string // by rowKey: value, verdict
	Origins []string             // "Measured ..." lines of the runs behind Cells
}

// earlierMark follows a value taken from the earlier table.
const earlierMark = " ‡"

// rowKey tells rows apart by their text and, for rows whose text repeats
// (the "…" continuations), by how many came before with the same text.
func rowKey(metric string, seen map[string]int) string {
	seen[metric]++
	return fmt.Sprintf("%s#%d", metric, seen[metric])
}

// ReadEarlier reads the table between the markers of the file at path. A
// file without the section has no earlier figures.
func ReadEarlier(path string) (Earlier, error) {
	e := Earlier{Cells: map[string][2]string{}}
	b, err := os.ReadFile(path)
	if err != nil {
		return e, err
	}
	text := string(b)
	i, j := strings.Index(text, BeginMarker), strings.Index(text, EndMarker)
	if i < 0 || j < i {
		return e, nil
	}
	seen := map[string]int{}
	for _, line := range strings.Split(text[i+len(BeginMarker):j], "\n") {
		switch {
		case strings.HasPrefix(line, "Measured "):
			e.Origins = append(e.Origins, strings.TrimSuffix(strings.TrimPrefix(line, "Measured "), "."))
		case strings.HasPrefix(line, "‡ measured "):
			e.Origins = append(e.Origins, strings.TrimSuffix(strings.TrimPrefix(line, "‡ measured "), "."))
		case strings.HasPrefix(line, "| ") && !strings.HasPrefix(line, "| metric |"):
			cells := strings.Split(strings.Trim(line, "| "), " | ")
			if len(cells) == 4 {
				value := strings.TrimSuffix(cells[1], earlierMark)
				e.Cells[rowKey(cells[0], seen)] = [2]string{value, cells[3]}
			}
		}
	}
	return e, nil
}

// Markdown renders the report as the section BENCHMARKS.md keeps.
func (r Report) Markdown() string {
	var b bytes.Buffer
	mode := "full"
	if r.Quick {
		mode = "quick (-quick: fewer repetitions, a 64 MB log; not for publishing)"
	}
	fmt.Fprintf(&b, "Measured %s in %s, mode %s, at commit %s.\n\n", r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Took.Round(time.Second), mode, r.Commit)
	fmt.Fprintf(&b, "Machine: %s.\n", r.Machine)
	fmt.Fprintf(&b, "Load average (1, 5, 15 min) at the start: %s; at the end: %s.\n\n", r.Machine.Load, r.LoadAfter)
	var table bytes.Buffer
	table.WriteString("| metric | value | target | verdict |\n|---|---|---|---|\n")
	seen := map[string]int{}
	usedEarlier := false
	for _, row := range Rows {
		value, verdict := row.Cell(r.Results)
		key := rowKey(row.Metric, seen)
		if _, measured := r.Results.Value(row.Bench, row.Unit); !measured {
			if old, ok := r.Earlier.Cells[key]; ok && old[0] != notMeasured {
				value, verdict, usedEarlier = old[0]+earlierMark, old[1], true
			}
		}
		target := "—"
		if row.Target != nil {
			target = row.Target.Text
		}
		fmt.Fprintf(&table, "| %s | %s | %s | %s |\n", row.Metric, value, target, verdict)
	}
	if usedEarlier {
		b.WriteString("‡ not measured by this run, which ran some groups only; the figure is the one published before it,\n")
		for _, o := range r.Earlier.Origins {
			fmt.Fprintf(&b, "‡ measured %s.\n", o)
		}
		b.WriteString("\n")
	}
	b.Write(table.Bytes())
	for _, f := range r.Failures {
		fmt.Fprintf(&b, "\nFailed: %s\n", firstLine(f))
	}
	return b.String()
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// Section markers in BENCHMARKS.md: Write replaces what lies between them.
const (
	BeginMarker = "<!-- bench:begin (written by `make bench`; do not edit by hand) -->"
	EndMarker   = "<!-- bench:end -->"
)

// WriteSection replaces the table between the markers of BENCHMARKS.md
// (the file at path) with section.
func WriteSection(path, section string) error {
	return mdreport.WriteSection(path, BeginMarker, EndMarker, section)
}
