package mdreport

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestWriteSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "DOC.md")
	doc := "# Doc\n\nbefore\n<!-- b -->\nold table\n<!-- e -->\nafter\n"
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteSection(path, "<!-- b -->", "<!-- e -->", "| new |"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if want := "# Doc\n\nbefore\n<!-- b -->\n| new |\n<!-- e -->\nafter\n"; string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestWriteSectionWithoutMarkersChangesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "DOC.md")
	doc := "# Doc\n<!-- e -->\n<!-- b -->\n"
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	err := WriteSection(path, "<!-- b -->", "<!-- e -->", "x")
	if err == nil || !strings.Contains(err.Error(), "add both lines") {
		t.Fatalf("got %v, want an error that says to add the markers", err)
	}
	if got, _ := os.ReadFile(path); string(got) != doc {
		t.Errorf("the file changed: %q", got)
	}
}

func TestCell(t *testing.T) {
	if got, want := Cell(" a|b\nc "), `a\|b; c`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestRowsFromManyGoroutines(t *testing.T) {
	var r Rows[int]
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Add(1)
		go func() { defer wg.Done(); r.Add(i) }()
	}
	wg.Wait()
	all := r.All()
	if len(all) != 100 {
		t.Fatalf("got %d rows, want 100", len(all))
	}
	seen := map[int]bool{}
	for _, v := range all {
		seen[v] = true
	}
	if len(seen) != 100 {
		t.Errorf("got %d distinct rows, want 100", len(seen))
	}
}
