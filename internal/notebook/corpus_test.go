package notebook

import (
	"path/filepath"
	"testing"
)

// corpusDir is papermill's own test notebooks, shared by the whole project
// as its compatibility suite.
func corpusDir(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs("../../../shared/corpus/papermill")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func corpusFile(t testing.TB, name string) string {
	t.Helper()
	return filepath.Join(corpusDir(t), name)
}

func corpusNotebooks(t testing.TB) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(corpusDir(t), "*.ipynb"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 20 {
		t.Fatalf("found %d corpus notebooks in %s, want the whole corpus", len(paths), corpusDir(t))
	}
	return paths
}
