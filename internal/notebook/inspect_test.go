package notebook

import (
	"encoding/json"
	"errors"
	"reflect"

	"strings"
	"testing"
)

func TestInspectNotebookShapes(t *testing.T) {
	cell := func(typ, src string, tags ...string) map[string]any {
		if tags == nil {
			tags = []string{}
		}
		return map[string]any{"cell_type": typ, "source": src, "metadata": map[string]any{"tags": tags}, "outputs": []any{}}
	}
	nbJSON := func(cells ...map[string]any) []byte {
		data, _ := json.Marshal(map[string]any{"nbformat": 4, "nbformat_minor": 5, "cells": cells,
			"metadata": map[string]any{"kernelspec": map[string]any{"name": "python3", "language": "python"}}})
		return data
	}
	dir := t.TempDir()

	path := writeFile(t, dir, "twice.ipynb", nbJSON(
		cell("markdown", "about", "parameters"),
		cell("code", "a = 1", "parameters"),
		cell("code", "b = 2", "parameters"),
		cell("code", "# Parameters\na = 5", "injected-parameters"),
	))
	in, err := Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	if in.ParametersCell != 1 || len(in.Parameters) != 1 || in.Parameters[0].Name != "a" {
		t.Errorf("parameters cell %d params %+v, want cell 1 with a", in.ParametersCell, in.Parameters)
	}
	joined := strings.Join(in.Warnings, "\n")
	for _, want := range []string{`cells 0, 1, 2 are tagged "parameters": the first code cell, 1, is the parameters cell`, "cell 3 holds parameters injected by an earlier run"} {
		if !strings.Contains(joined, want) {
			t.Errorf("warnings %q lack %q", in.Warnings, want)
		}
	}

	path = writeFile(t, dir, "markdown-tagged.ipynb", nbJSON(cell("markdown", "x = 1", "parameters"), cell("code", "print(1)")))
	if in, err = Inspect(path); err != nil || in.ParametersCell != -1 || !strings.Contains(in.Warnings[0], "is not a code cell") {
		t.Errorf("markdown-tagged: %+v, %v", in, err)
	}

	path = writeFile(t, dir, "prose.ipynb", nbJSON(cell("markdown", "just prose")))
	if _, err = Inspect(path); !errors.Is(err, ErrNoCodeCells) {
		t.Errorf("prose only: err = %v, want ErrNoCodeCells", err)
	}

	if _, err = Inspect(dir); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("directory: err = %v", err)
	}
}

// TestInspectAnnotatedParameters reads a parameters cell written as people
// write them: comments above and after, annotations (Optional, a union),
// a type comment, values spanning lines, a string holding "#".
func TestInspectAnnotatedParameters(t *testing.T) {
	in, err := Inspect(testdataFile(t, "annotated_parameters.ipynb"))
	if err != nil {
		t.Fatal(err)
	}
	want := &Inspection{
		KernelName: "python3", Language: "python", Cells: 2, CodeCells: 2, ParametersCell: 0,
		Parameters: []Parameter{
			{Name: "source_url", InferredType: "None", Default: `"https://example.invalid/data.csv#v2"`, Help: "the # inside the string is not a comment"},
			{Name: "epochs", InferredType: "int", Default: "3", Help: "how many passes"},
			{Name: "lr", InferredType: "None", Default: "0.1", Help: "learning rate"},
			{Name: "seed", InferredType: "Optional[int]", Default: "None"},
			{Name: "limit", InferredType: "int | None", Default: "None"},
			{Name: "columns", InferredType: "List[str]", Default: "['age','height',]", Help: "columns to keep"},
			{Name: "options", InferredType: "None", Default: "{'verbose': True,'depth': 2,}"},
			{Name: "query", InferredType: "None", Default: "\"\"\"\nselect * -- everything # really\n\"\"\""},
			{Name: "threshold", InferredType: "None", Default: "epochs * lr"},
		},
		Warnings: []string{},
	}
	checkInspect(t, in, want, `"kernel_name":"python3"`, `"code_cells":2`, `"parameters_cell":0`, `"inferred_type_name":"List[str]"`, `"help":"columns to keep"`)
}

// checkInspect compares an inspection with want, and checks that its JSON
// (what inspect_notebook returns) holds each of keys.
func checkInspect(t *testing.T, in, want *Inspection, keys ...string) {
	t.Helper()
	if !reflect.DeepEqual(in, want) {
		t.Errorf("Inspect:\n got %+v\nwant %+v", in, want)
	}
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range keys {
		if !strings.Contains(string(data), key) {
			t.Errorf("JSON %s lacks %s", data, key)
		}
	}
}

func TestInspectCases(t *testing.T) {
	checkInspectCases(t, testdataFile, []inspectCase{
		{"untagged.ipynb", "python3", "python", -1, 0, `no cell is tagged "parameters": injected parameters go in a new cell before the first one`},
		{"no_kernelspec.ipynb", "", "python", -1, 0, "names no kernel (no kernelspec): the run uses the default Python kernel"},
		{"r_kernel.ipynb", "ir", "R", 0, 0, `parameters are only inspected in Python notebooks; this one is R (kernel "ir")`},
		{"greeting.ipynb", "python3", "python", 0, 1, ""},
		{"unknown_kernel.ipynb", "millrace-no-such-kernel", "python", -1, 0, "no cell is tagged"},
		{"fails_later.ipynb", "python3", "python", -1, 0, "no cell is tagged"},
		{"unparsable_parameters.ipynb", "python3", "python", 0, 2, `parameters cell line 3: "= 2" does not assign a plain name; skipped`},
		{"executed_outputs.ipynb", "python3", "python", 0, 2, `cell 1 holds parameters injected by an earlier run`},
	})
}

// inspectCase is what Inspect must find in one notebook; warning "" means
// no warning at all.
type inspectCase struct {
	file           string
	kernel, lang   string
	parametersCell int
	params         int
	warning        string
}

// checkInspectCases inspects each case's notebook, found by file.
func checkInspectCases(t *testing.T, file func(testing.TB, string) string, cases []inspectCase) {
	t.Helper()
	for _, tt := range cases {
		in, err := Inspect(file(t, tt.file))
		if err != nil {
			t.Fatal(err)
		}
		if in.KernelName != tt.kernel || in.Language != tt.lang || in.ParametersCell != tt.parametersCell || len(in.Parameters) != tt.params {
			t.Errorf("%s: %+v", tt.file, in)
		}
		if tt.warning == "" && len(in.Warnings) > 0 {
			t.Errorf("%s: warnings %q, want none", tt.file, in.Warnings)
		}
		if tt.warning != "" && !strings.Contains(strings.Join(in.Warnings, "\n"), tt.warning) {
			t.Errorf("%s: warnings %q, want one containing %q", tt.file, in.Warnings, tt.warning)
		}
	}
}
