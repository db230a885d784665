// Package security holds millrace's attack suite: each test tries one
// attack from SECURITY.md's threat model against the real binaries, the
// real embedded Temporal server and real kernels. This file renders the
// results, so the table in SECURITY.md always comes from a run, never from
// typing.
package security

import (
	"fmt"
	"sort"
	"strings"

	"millrace/internal/mdreport"
)

// Row is one attack and what came of it.
type Row struct {
	// Attack says what an attacker tries, in a user's words.
	Attack string
	// Test is the Go test that tries it.
	Test string
	// Result is what the suite saw: "refused" with a detail when the test
	// passed, "NOT REFUSED" with the failure when it did not.
	Result string
}

// Report collects rows from concurrent tests.
type Report struct {
	mdreport.Rows[Row]
}

// Markdown renders the rows as a Markdown table, sorted by test name so
// that the published table does not change with test scheduling.
func (r *Report) Markdown() string {
	rows := r.All()
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Test < rows[j].Test })
	var b strings.Builder
	b.WriteString("| attack | test | result |\n|---|---|---|\n")
	for _, row := range rows {
		fmt.Fprintf(&b, "| %s | `%s` | %s |\n", mdreport.Cell(row.Attack), row.Test, mdreport.Cell(row.Result))
	}
	return b.String()
}

// The table in SECURITY.md stands between these two lines.
const (
	BeginMarker = "<!-- attacks: begin (written by make security) -->"
	EndMarker   = "<!-- attacks: end -->"
)

// WriteInto replaces the table between the markers of the file at path.
func (r *Report) WriteInto(path string) error {
	return mdreport.WriteSection(path, BeginMarker, EndMarker, "\n"+r.Markdown())
}
