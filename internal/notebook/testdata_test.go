package notebook

import (
	"path/filepath"
	"testing"
)

// testdataDir is the repository's own notebooks (testdata/ at the root),
// each written for a behaviour the tests check.
func testdataDir(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs("../../testdata")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func testdataFile(t testing.TB, name string) string {
	t.Helper()
	return filepath.Join(testdataDir(t), name)
}

func testdataNotebooks(t testing.TB) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(testdataDir(t), "*.ipynb"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 20 {
		t.Fatalf("found %d notebooks in %s, want them all", len(paths), testdataDir(t))
	}
	return paths
}

// checkLoads loads every notebook: each is nbformat 4 with cells.
func checkLoads(t *testing.T, paths []string) {
	t.Helper()
	for _, path := range paths {
		nb, err := Load(path)
		if err != nil {
			t.Errorf("Load(%s): %v", filepath.Base(path), err)
			continue
		}
		if nb.NBFormat != 4 || len(nb.Cells) == 0 {
			t.Errorf("%s: nbformat %d with %d cells", filepath.Base(path), nb.NBFormat, len(nb.Cells))
		}
	}
}

// checkInspects inspects every notebook: none fails, whatever happens
// when it runs.
func checkInspects(t *testing.T, paths []string) {
	t.Helper()
	for _, path := range paths {
		in, err := Inspect(path)
		if err != nil {
			t.Errorf("Inspect(%s): %v", filepath.Base(path), err)
			continue
		}
		if in.CodeCells == 0 || in.Cells < in.CodeCells || in.Parameters == nil || in.Warnings == nil {
			t.Errorf("%s: %+v", filepath.Base(path), in)
		}
	}
}

// checkProgress compares the streaming ReadProgress with the progress of
// the fully parsed notebook, for every notebook.
func checkProgress(t *testing.T, paths []string) {
	t.Helper()
	for _, path := range paths {
		nb, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ReadProgress(path)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(path), err)
			continue
		}
		if want := progressOf(nb); got != want {
			t.Errorf("%s: ReadProgress = %+v, want %+v", filepath.Base(path), got, want)
		}
	}
}

func TestLoadTestdata(t *testing.T)         { checkLoads(t, testdataNotebooks(t)) }
func TestInspectTestdata(t *testing.T)      { checkInspects(t, testdataNotebooks(t)) }
func TestReadProgressTestdata(t *testing.T) { checkProgress(t, testdataNotebooks(t)) }
