// Package benchreport runs millrace's benchmarks package by
// package with `go test -json -bench` and turns the figures they report
// into one table: metric, value, target, verdict. Nothing in it measures or
// types a figure: every value is read from a benchmark's output, and every
// verdict is computed from the values.
package benchreport

import (
	"bytes"
	"fmt"
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
	b.WriteString("| metric | value | target | verdict |\n|---|---|---|---|\n")
	for _, row := range Rows {
		value, verdict := row.Cell(r.Results)
		target := "—"
		if row.Target != nil {
			target = row.Target.Text
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", row.Metric, value, target, verdict)
	}
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
