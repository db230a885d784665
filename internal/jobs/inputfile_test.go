package jobs_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"millrace/internal/jobs"
)

// TestInputFileBounds: aliases within the bounds work as before; a file
// past a bound is refused with an error that names the file and the bound,
// by both loaders.
func TestInputFileBounds(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ok := write("ok.yaml", "base: &b {lr: 0.1, layers: [1, 2]}\nrun1: *b\nrun2: *b\n")
	m, err := jobs.LoadParameterFile(ok)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := m["run2"].(map[string]any); r == nil || len(r["layers"].([]any)) != 2 {
		t.Fatalf("aliases within the bounds: %v", m)
	}

	// Each line doubles the one before: 2^15 values from 14 lines.
	var doubling strings.Builder
	doubling.WriteString("l0: &l0 [x, x]\n")
	for i := 1; i <= 13; i++ {
		doubling.WriteString(strings.NewReplacer("N", strconv.Itoa(i), "P", strconv.Itoa(i-1)).Replace("lN: &lN [*lP, *lP]\n"))
	}
	big := strings.Repeat("#", jobs.MaxInputFileBytes) + "\n"
	for _, c := range []struct{ name, content, want string }{
		{"doubling.yaml", doubling.String(), "more than 10000 values once aliases are expanded"},
		{"self.yaml", "a: &a {b: *a}\n", "recursive alias"},
		{"deep.yaml", "x: " + strings.Repeat("[", 65) + strings.Repeat("]", 65), "nested deeper than 64"},
		{"deep.json", `{"x": ` + strings.Repeat("[", 65) + strings.Repeat("]", 65) + "}", "nested deeper than 64"},
		{"big.yaml", big, "larger than 8 MiB"},
	} {
		p := write(c.name, c.content)
		if _, err := jobs.LoadParameterFile(p); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("-f %s: %v, want %q naming the file", c.name, err, c.want)
		}
		if strings.HasSuffix(c.name, ".json") {
			continue
		}
		batch := "nodes:\n  - id: a\n    path: a.ipynb\n    parameters:\n      " + strings.ReplaceAll(strings.TrimSpace(c.content), "\n", "\n      ") + "\n"
		if c.name == "big.yaml" {
			batch = c.content
		}
		bp := write("batch-"+c.name, batch)
		if _, err := jobs.LoadBatchFile(bp); err == nil || !jobs.IsUserError(err) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), bp) {
			t.Errorf("batch %s: %v, want a user error %q naming the file", c.name, err, c.want)
		}
	}
}
