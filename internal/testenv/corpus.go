//go:build conformance

package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// Corpus is papermill's own test notebooks with their EXPECTED.md:
// MILLRACE_CORPUS, or shared/corpus/papermill beside the repository. It is
// an external conformance suite, built only with the conformance tag (`make
// conformance`), so `go test ./...` never reads outside the repository. A
// missing corpus fails the test: a conformance run that checked nothing
// must not pass.
func Corpus(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("MILLRACE_CORPUS")
	if dir == "" {
		dir = filepath.Join(RepoRoot(), "..", "shared", "corpus", "papermill")
	}
	if _, err := os.Stat(filepath.Join(dir, "EXPECTED.md")); err != nil {
		t.Fatalf("papermill corpus not found (set MILLRACE_CORPUS to the folder holding EXPECTED.md): %v", err)
	}
	return dir
}
