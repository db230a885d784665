// Package mdreport holds what the suites' reports share (the attack
// suite's SECURITY.md table, the reliability table, the benchmark table):
// rows collected from tests that run in parallel, Markdown table cells,
// and a document section rewritten between two marker lines, so that a
// published table always comes from a run and never from typing.
package mdreport

import (
	"fmt"
	"os"
	"strings"
	"sync"
)

// Rows collects rows from tests running in parallel.
type Rows[T any] struct {
	mu   sync.Mutex
	rows []T
}

// Add records a row.
func (r *Rows[T]) Add(row T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rows = append(r.rows, row)
}

// All returns a copy of the rows, in the order they were added.
func (r *Rows[T]) All() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]T(nil), r.rows...)
}

// Cell keeps text on one table line: pipes escaped, newlines joined.
func Cell(s string) string {
	return strings.NewReplacer("|", "\\|", "\n", "; ").Replace(strings.TrimSpace(s))
}

// WriteSection replaces what lies between the begin and end marker lines
// of the file at path with section. The file must already hold both
// markers, so that nothing else in a hand-written document is touched.
func WriteSection(path, begin, end, section string) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	text := string(old)
	i := strings.Index(text, begin)
	j := strings.Index(text, end)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %q ... %q section: add both lines where the table goes", path, begin, end)
	}
	updated := text[:i+len(begin)] + "\n" + section + "\n" + text[j:]
	return os.WriteFile(path, []byte(updated), 0o644)
}
