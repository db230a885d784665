package cluster

import (
	"fmt"
	"strings"

	"millrace/internal/mdreport"
)

// Row is one scenario's figures.
type Row struct {
	Scenario string
	// Runs is how many runs the scenario made.
	Runs int
	// AsExpected counts runs that ended, or were listed, as the scenario
	// requires.
	AsExpected int
	// Lost counts runs that disappeared or never reached a final status.
	Lost int
	// Figures are what the scenario measured.
	Figures string
}

// The cluster section of RELIABILITY.md stands between these lines.
const (
	BeginMarker = "<!-- cluster:begin -->"
	EndMarker   = "<!-- cluster:end -->"
)

// Report collects the scenarios' rows.
type Report struct {
	mdreport.Rows[Row]
}

// Markdown renders the rows as a Markdown table, in the order they were
// added.
func (r *Report) Markdown() string {
	var b strings.Builder
	b.WriteString("| scenario | runs | as expected | lost | figures |\n")
	b.WriteString("|---|---:|---:|---:|---|\n")
	for _, row := range r.All() {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %s |\n", mdreport.Cell(row.Scenario), row.Runs, row.AsExpected, row.Lost, mdreport.Cell(row.Figures))
	}
	return b.String()
}
