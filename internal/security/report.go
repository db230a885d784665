// Package security holds millrace's attack suite: each test tries one
// attack from SECURITY.md's threat model against the real binaries, the
// real embedded Temporal server and real kernels. This file renders the
// results, so the table in SECURITY.md always comes from a run, never from
// typing.
package security

import (
	"bytes"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
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
	mu   sync.Mutex
	rows []Row
}

// Add records a row.
func (r *Report) Add(row Row) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rows = append(r.rows, row)
}

// Markdown renders the rows as a Markdown table, sorted by test name so
// that the published table does not change with test scheduling.
func (r *Report) Markdown() string {
	r.mu.Lock()
	rows := append([]Row(nil), r.rows...)
	r.mu.Unlock()
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Test < rows[j].Test })
	var b strings.Builder
	b.WriteString("| attack | test | result |\n|---|---|---|\n")
	for _, row := range rows {
		fmt.Fprintf(&b, "| %s | `%s` | %s |\n", cell(row.Attack), row.Test, cell(row.Result))
	}
	return b.String()
}

// cell keeps text on one table line.
func cell(s string) string {
	return strings.NewReplacer("|", "\\|", "\n", "; ").Replace(strings.TrimSpace(s))
}

// The table in SECURITY.md stands between these two lines.
const (
	BeginMarker = "<!-- attacks: begin (written by make security) -->"
	EndMarker   = "<!-- attacks: end -->"
)

// WriteInto replaces the table between the markers of the file at path.
func (r *Report) WriteInto(path string) error {
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	i := bytes.Index(doc, []byte(BeginMarker))
	j := bytes.Index(doc, []byte(EndMarker))
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %q ... %q section", path, BeginMarker, EndMarker)
	}
	var out bytes.Buffer
	out.Write(doc[:i+len(BeginMarker)])
	out.WriteString("\n\n")
	out.WriteString(r.Markdown())
	out.WriteString("\n")
	out.Write(doc[j:])
	return os.WriteFile(path, out.Bytes(), 0o644)
}
