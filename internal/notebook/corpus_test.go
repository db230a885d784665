//go:build conformance

package notebook

// papermill's own test notebooks, checked as an external conformance suite
// by `make conformance` (the tag keeps `go test ./...` from needing them).
// The behaviours they stand for are also tested on the project's own
// notebooks in testdata/.

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// corpusDir is MILLRACE_CORPUS, or shared/corpus/papermill beside the
// repository; a missing corpus fails the test rather than skipping it.
func corpusDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("MILLRACE_CORPUS")
	if dir == "" {
		dir = "../../../shared/corpus/papermill"
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "EXPECTED.md")); err != nil {
		t.Fatalf("papermill corpus not found (set MILLRACE_CORPUS to the folder holding EXPECTED.md): %v", err)
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

func TestLoadCorpus(t *testing.T) {
	checkLoads(t, corpusNotebooks(t))
}

func TestLoadCorpusDetails(t *testing.T) {
	load := func(name string) *Notebook {
		t.Helper()
		nb, err := Load(corpusFile(t, name))
		if err != nil {
			t.Fatal(err)
		}
		return nb
	}

	nb := load("test_notebooknode_io.ipynb")
	if got, want := nb.Cells[0].Source, "print('Hello World')"; got != want {
		t.Errorf("source = %q, want %q", got, want)
	}

	nb = load("simple_execute.ipynb")
	if !nb.Cells[0].HasTag(TagParameters) || nb.Cells[1].HasTag(TagParameters) {
		t.Errorf("tags = %v, %v; want parameters on cell 0 only", nb.Cells[0].Tags, nb.Cells[1].Tags)
	}

	nb = load("blank-vscode.ipynb")
	if got, want := [2]string{nb.KernelName(), nb.Language()}, [2]string{"", "python"}; got != want {
		t.Errorf("blank-vscode kernel, language = %q, want %q", got, want)
	}
	if !nb.IsPython() {
		t.Error("blank-vscode: IsPython = false, want true")
	}

	nb = load("notimplemented_translator.ipynb")
	if got, want := [2]string{nb.KernelName(), nb.Language()}, [2]string{"r", "R"}; got != want {
		t.Errorf("notimplemented_translator kernel, language = %q, want %q", got, want)
	}
	if nb.IsPython() {
		t.Error("R notebook: IsPython = true")
	}

	nb = load("broken2.ipynb")
	pm := nb.Metadata.Papermill
	if pm == nil {
		t.Fatal("broken2: no notebook papermill metadata")
	}
	if want := map[string]any{"bar": "Hello World!", "foo": float64(1)}; !reflect.DeepEqual(pm.Parameters, want) {
		t.Errorf("papermill parameters = %v, want %v", pm.Parameters, want)
	}
	if nb.Cells[0].Papermill == nil || *nb.Cells[0].Papermill != (CellPapermill{}) {
		t.Errorf("cell 0 papermill = %+v, want present and empty", nb.Cells[0].Papermill)
	}
	if nb.Cells[1].Papermill != nil {
		t.Errorf("cell 1 papermill = %+v, want nil", nb.Cells[1].Papermill)
	}
	out := nb.Cells[0].Outputs[3]
	if text, ok := out.DataText("text/plain"); !ok || text != "'Hello World!'" {
		t.Errorf("display_data text/plain = %q, %v", text, ok)
	}

	nb = load("broken1.ipynb")
	if got, want := nb.CodeCells(), 3; got != want {
		t.Errorf("broken1 code cells = %d, want %d", got, want)
	}
	if got, want := nb.TaggedCells("papermill-error-cell-tag"), []int{0, 2}; !reflect.DeepEqual(got, want) {
		t.Errorf("tagged = %v, want %v", got, want)
	}
}

func TestInspectCorpus(t *testing.T) {
	// None fails to inspect: the failures EXPECTED.md lists happen when
	// they run.
	checkInspects(t, corpusNotebooks(t))
}

func TestInspectComplexParametersCorpus(t *testing.T) {
	in, err := Inspect(corpusFile(t, "complex_parameters.ipynb"))
	if err != nil {
		t.Fatal(err)
	}
	want := &Inspection{
		KernelName:     "python3",
		Language:       "python",
		Cells:          1,
		CodeCells:      1,
		ParametersCell: 0,
		Parameters: []Parameter{
			{Name: "msg", InferredType: "None", Default: "None"},
			{Name: "a", InferredType: "float", Default: "2.25", Help: "Variable a"},
			{Name: "b", InferredType: "List[str]", Default: "['Hello','World']", Help: "Nice list"},
			{Name: "c", InferredType: "NoneType", Default: "None", Help: "Interesting c variable"},
			{Name: "d", InferredType: "None", Default: "a == 3", Help: "Not introspectable line"},
		},
		Warnings: []string{`parameters cell line 14: "= 2" does not assign a plain name; skipped`},
	}
	checkInspect(t, in, want, `"kernel_name":"python3"`, `"code_cells":1`, `"parameters_cell":0`, `"inferred_type_name":"List[str]"`, `"help":"Nice list"`)
}

func TestInspectCasesCorpus(t *testing.T) {
	checkInspectCases(t, corpusFile, []inspectCase{
		{"no_parameters.ipynb", "python3", "python", -1, 0, `no cell is tagged "parameters": injected parameters go in a new cell before the first one`},
		{"blank-vscode.ipynb", "", "python", -1, 0, "names no kernel (no kernelspec): the run uses the default Python kernel"},
		{"notimplemented_translator.ipynb", "r", "R", 0, 0, `parameters are only inspected in Python notebooks; this one is R (kernel "r")`},
		{"simple_execute.ipynb", "python3", "python", 0, 1, ""},
		{"test_autosave.ipynb", "python", "python", -1, 0, "no cell is tagged"},
		{"broken1.ipynb", "python3", "python", -1, 0, "no cell is tagged"},
	})
}

func TestParametersComplexCorpus(t *testing.T) {
	nb, err := Load(corpusFile(t, "complex_parameters.ipynb"))
	if err != nil {
		t.Fatal(err)
	}
	cell, params, found := nb.Parameters()
	if cell != 0 || !found {
		t.Fatalf("Parameters() cell %d found %v, want 0 true", cell, found)
	}
	// papermill's own test_inspect.py gives msg, a, b and c as here except
	// c's help; the corpus row asks also for c's help and for d.
	want := []Parameter{
		{Name: "msg", InferredType: "None", Default: "None"},
		{Name: "a", InferredType: "float", Default: "2.25", Help: "Variable a"},
		{Name: "b", InferredType: "List[str]", Default: "['Hello','World']", Help: "Nice list"},
		{Name: "c", InferredType: "NoneType", Default: "None", Help: "Interesting c variable"},
		{Name: "d", InferredType: "None", Default: "a == 3", Help: "Not introspectable line"},
	}
	if !reflect.DeepEqual(params, want) {
		t.Errorf("parameters:\n got %+v\nwant %+v", params, want)
	}
}

func TestParametersCorpusLikePapermill(t *testing.T) {
	// The other cases of papermill's test_inspect.py.
	tests := []struct {
		file   string
		cell   int
		params []Parameter
	}{
		{"simple_execute.ipynb", 0, []Parameter{{Name: "msg", InferredType: "None", Default: "None"}}},
		{"no_parameters.ipynb", -1, nil},
		{"notimplemented_translator.ipynb", 0, nil},
		{"nb_version_4.4.ipynb", 0, []Parameter{{Name: "var", InferredType: "None", Default: "1"}}},
	}
	for _, tt := range tests {
		nb, err := Load(corpusFile(t, tt.file))
		if err != nil {
			t.Fatal(err)
		}
		cell, params, found := nb.Parameters()
		if cell != tt.cell || found != (tt.cell >= 0) || !reflect.DeepEqual(params, tt.params) {
			t.Errorf("%s: Parameters() = %d, %+v, %v; want %d, %+v", tt.file, cell, params, found, tt.cell, tt.params)
		}
	}
}

func TestReadProgressCorpus(t *testing.T) {
	checkProgress(t, corpusNotebooks(t))
}

func TestValidateValuesComplexCorpus(t *testing.T) {
	nb, err := Load(corpusFile(t, "complex_parameters.ipynb"))
	if err != nil {
		t.Fatal(err)
	}
	_, params, _ := nb.Parameters()
	err = ValidateValues(params, map[string]any{"msg": "hi", "a": 3.0, "b": []any{"x"}, "c": 1.0, "d": true}, false)
	if err != nil {
		t.Errorf("valid values rejected: %v", err)
	}
	err = ValidateValues(params, map[string]any{"a": "x", "b": "y", "e": 1.0}, false)
	want := `3 problems with the parameters: parameter "a" expects float (declared float), got string "x"; ` +
		`parameter "b" expects list (declared List[str]), got string "y"; ` +
		`unknown parameter "e"; the notebook's parameters are: a, b, c, d, msg`
	if err == nil || err.Error() != want {
		t.Errorf("err =\n%v\nwant\n%s", err, want)
	}
}
