// Package reliability holds millrace's reliability suite: faults, load and
// bad input on the real embedded Temporal server and real kernels. The
// scenarios are tests (see the _test.go files); this file renders their
// figures, so the table in RELIABILITY.md always comes from code.
package reliability

import (
	"fmt"
	"runtime"
	"strings"
	"time"

	"millrace/internal/benchreport"
	"millrace/internal/mdreport"
)

// Row is one scenario's figures.
type Row struct {
	Scenario string
	// Runs is how many runs (or, for bad input, requests) the scenario made.
	Runs int
	// AsExpected counts runs that ended as the scenario requires.
	AsExpected int
	// Lost counts runs that disappeared or never reached a final status.
	Lost int
	// Orphans counts processes of a run still alive after it ended.
	Orphans int
	Notes   string
	// Skipped says why the scenario did not run (fast mode, for one).
	Skipped string
}

// The machine and the table in RELIABILITY.md stand between these lines.
const (
	BeginMarker = "<!-- reliability: begin (written by make reliability) -->"
	EndMarker   = "<!-- reliability: end -->"
)

// Report collects rows from concurrent scenarios.
type Report struct {
	mdreport.Rows[Row]
}

// Markdown renders the rows as a Markdown table, in the order they were
// added.
func (r *Report) Markdown() string {
	var b strings.Builder
	b.WriteString("| scenario | runs | succeeded as expected | lost | orphaned processes | notes |\n")
	b.WriteString("|---|---:|---:|---:|---:|---|\n")
	for _, row := range r.All() {
		if row.Skipped != "" {
			fmt.Fprintf(&b, "| %s | - | - | - | - | not run: %s |\n", row.Scenario, mdreport.Cell(row.Skipped))
			continue
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %s |\n", row.Scenario, row.Runs, row.AsExpected, row.Lost, row.Orphans, mdreport.Cell(row.Notes))
	}
	return b.String()
}

// Machine describes the computer the suite ran on, for RELIABILITY.md.
func Machine() string {
	m := benchreport.ReadMachine()
	return fmt.Sprintf("- date: %s\n- nproc: %d\n- memory: %.1f GiB\n- CPU: %s\n- OS: %s/%s, %s %s\n- Go: %s\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), m.Cores, m.MemoryGiB, m.CPU,
		runtime.GOOS, runtime.GOARCH, m.OS, m.Kernel, runtime.Version())
}
