package notebook

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"

	"strings"
	"syscall"
	"testing"
)

func TestParseErrors(t *testing.T) {
	const notNB = "expected a JSON object with nbformat and cells"
	tests := []struct {
		name     string
		data     string
		is       error
		contains string
	}{
		{"empty file", "", ErrNotNotebook, "the file is empty"},
		{"python source", "print('hi')\n", ErrNotNotebook, "invalid JSON at byte"},
		{"truncated", `{"nbformat": 4, "cells": [`, ErrNotNotebook, "invalid JSON"},
		{"array", `[1, 2]`, ErrNotNotebook, "JSON array"},
		{"string", `"notebook"`, ErrNotNotebook, "JSON string"},
		{"no nbformat", `{"cells": []}`, ErrNotNotebook, "no nbformat field"},
		{"nbformat string", `{"nbformat": "4", "cells": []}`, ErrNotNotebook, `nbformat is "4"`},
		{"nbformat 3", `{"nbformat": 3, "nbformat_minor": 0, "worksheets": [{"cells": []}]}`, ErrUnsupportedVersion,
			"nbformat 3 is not supported; convert it with `jupyter nbconvert --to notebook --nbformat 4`"},
		{"nbformat 5", `{"nbformat": 5, "cells": []}`, ErrUnsupportedVersion, "nbformat 5 is newer"},
		{"no cells", `{"nbformat": 4, "nbformat_minor": 5, "metadata": {}}`, ErrNotNotebook, "no cells field"},
		{"cells object", `{"nbformat": 4, "cells": {}}`, ErrNotNotebook, "cells:"},
		{"no cell_type", `{"nbformat": 4, "cells": [{"source": "x"}]}`, ErrNotNotebook, "cell 0: no cell_type"},
		{"source number", `{"nbformat": 4, "cells": [{"cell_type": "code", "source": 3}]}`, ErrNotNotebook, "cell 0: source"},
		{"no code cells", `{"nbformat": 4, "cells": [{"cell_type": "markdown", "source": "# hi"}]}`, ErrNoCodeCells, "no code cells"},
		{"zero cells", `{"nbformat": 4, "cells": []}`, ErrNoCodeCells, "no code cells"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nb, err := Parse([]byte(tt.data))
			if !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("err = %q, want it to contain %q", err, tt.contains)
			}
			if tt.is == ErrNotNotebook && !strings.Contains(err.Error(), notNB) {
				t.Errorf("err = %q, want it to say %q", err, notNB)
			}
			if (nb != nil) != (tt.is == ErrNoCodeCells) {
				t.Errorf("notebook returned = %v, want it only with ErrNoCodeCells", nb != nil)
			}
		})
	}
}

func TestLoadIOErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(dir)
	if !errors.Is(err, syscall.EISDIR) || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("Load(dir) = %v, want an 'is a directory' error", err)
	}
	_, err = Load(filepath.Join(dir, "missing.ipynb"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
	bad := filepath.Join(dir, "notes.ipynb")
	if err := os.WriteFile(bad, []byte("not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad)
	if !errors.Is(err, ErrNotNotebook) || !strings.Contains(err.Error(), bad) {
		t.Errorf("Load(bad) = %v, want ErrNotNotebook naming the path", err)
	}
}

func TestParseModel(t *testing.T) {
	data := `{
 "nbformat": 4, "nbformat_minor": 5,
 "metadata": {
  "kernelspec": {"name": 7, "language": "python"},
  "language_info": {"name": "python", "version": 3},
  "papermill": {"exception": null, "duration": 1.5, "parameters": {"n": 2}, "start_time": null}
 },
 "cells": [
  {"cell_type": "markdown", "id": "m1", "metadata": {}, "source": ["# Title\n", "text"]},
  {"cell_type": "code", "id": "c1", "execution_count": 3,
   "metadata": {"tags": ["parameters", 5], "papermill": {"status": "completed", "duration": 0.25,
     "start_time": "2024-01-01T00:00:00.000001", "end_time": "2024-01-01T00:00:00.250001", "exception": false}},
   "source": "x = 1\ny = 2",
   "outputs": [
    {"output_type": "stream", "name": "stdout", "text": ["a\n", "b\n"]},
    {"output_type": "execute_result", "execution_count": 3, "metadata": {},
     "data": {"text/plain": ["1"], "application/json": {"k": [1, 2]}}},
    {"output_type": "error", "ename": "ValueError", "evalue": "bad", "traceback": ["line 1", "line 2"]}
   ]},
  {"cell_type": "code", "execution_count": null, "metadata": {"papermill": null}, "outputs": [], "source": []}
 ]
}`
	nb, err := Parse([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if nb.NBFormatMinor != 5 || len(nb.Cells) != 3 {
		t.Fatalf("nbformat_minor %d, %d cells", nb.NBFormatMinor, len(nb.Cells))
	}
	// A kernelspec field of the wrong type is dropped, not fatal.
	if nb.KernelName() != "" || nb.Language() != "python" {
		t.Errorf("kernel %q language %q", nb.KernelName(), nb.Language())
	}
	if pm := nb.Metadata.Papermill; pm == nil || pm.Duration != 1.5 || pm.Exception || pm.Parameters["n"] != float64(2) {
		t.Errorf("notebook papermill = %+v", nb.Metadata.Papermill)
	}
	md := nb.Cells[0]
	if md.Type != CellMarkdown || md.Source != "# Title\ntext" || md.ID != "m1" {
		t.Errorf("markdown cell = %+v", md)
	}
	c := nb.Cells[1]
	if c.Source != "x = 1\ny = 2" || c.ExecutionCount == nil || *c.ExecutionCount != 3 {
		t.Errorf("code cell source %q count %v", c.Source, c.ExecutionCount)
	}
	if !c.HasTag(TagParameters) {
		t.Errorf("tags = %v, want parameters kept despite a bad tag", c.Tags)
	}
	want := CellPapermill{Status: StatusCompleted, Duration: 0.25, StartTime: "2024-01-01T00:00:00.000001", EndTime: "2024-01-01T00:00:00.250001"}
	if c.Papermill == nil || *c.Papermill != want {
		t.Errorf("cell papermill = %+v, want %+v", c.Papermill, want)
	}
	if got := c.Outputs[0]; got.OutputType != "stream" || got.Name != "stdout" || got.Text != "a\nb\n" {
		t.Errorf("stream = %+v", got)
	}
	if text, ok := c.Outputs[1].DataText("text/plain"); !ok || text != "1" {
		t.Errorf("text/plain = %q %v", text, ok)
	}
	if _, ok := c.Outputs[1].DataText("application/json"); ok {
		t.Error("application/json read as text")
	}
	if e := c.Outputs[2]; e.EName != "ValueError" || e.EValue != "bad" || len(e.Traceback) != 2 {
		t.Errorf("error = %+v", e)
	}
	last := nb.Cells[2]
	if last.Source != "" || last.ExecutionCount != nil || last.Papermill != nil {
		t.Errorf("empty cell = %+v", last)
	}
}

// TestLoadDetails reads what a run leaves in a notebook: papermill
// metadata per cell and per notebook, and outputs of every kind.
func TestLoadDetails(t *testing.T) {
	load := func(name string) *Notebook {
		t.Helper()
		nb, err := Load(testdataFile(t, name))
		if err != nil {
			t.Fatal(err)
		}
		return nb
	}

	nb := load("hello.ipynb")
	if got, want := nb.Cells[0].Source, "print('Hello from millrace')"; got != want {
		t.Errorf("source = %q, want %q", got, want)
	}

	nb = load("greeting.ipynb")
	if !nb.Cells[0].HasTag(TagParameters) || nb.Cells[1].HasTag(TagParameters) {
		t.Errorf("tags = %v, %v; want parameters on cell 0 only", nb.Cells[0].Tags, nb.Cells[1].Tags)
	}

	nb = load("no_kernelspec.ipynb")
	if got, want := [2]string{nb.KernelName(), nb.Language()}, [2]string{"", "python"}; got != want {
		t.Errorf("no kernelspec: kernel, language = %q, want %q", got, want)
	}
	if !nb.IsPython() {
		t.Error("no kernelspec: IsPython = false, want true")
	}

	nb = load("r_kernel.ipynb")
	if got, want := [2]string{nb.KernelName(), nb.Language()}, [2]string{"ir", "R"}; got != want {
		t.Errorf("R notebook kernel, language = %q, want %q", got, want)
	}
	if nb.IsPython() {
		t.Error("R notebook: IsPython = true")
	}

	nb = load("sum.ipynb")
	if nb.NBFormatMinor != 4 || nb.Cells[0].ID != "" {
		t.Errorf("nbformat 4.4 notebook: minor %d, cell id %q", nb.NBFormatMinor, nb.Cells[0].ID)
	}

	nb = load("executed_outputs.ipynb")
	pm := nb.Metadata.Papermill
	if pm == nil || !pm.Exception || pm.Duration != 2.5 {
		t.Fatalf("notebook papermill metadata = %+v", pm)
	}
	if want := map[string]any{"rows": float64(5), "name": "weekly"}; !reflect.DeepEqual(pm.Parameters, want) {
		t.Errorf("papermill parameters = %v, want %v", pm.Parameters, want)
	}
	if got, want := nb.CodeCells(), 6; got != want {
		t.Errorf("code cells = %d, want %d", got, want)
	}
	if got, want := nb.TaggedCells(TagInjectedParameters), []int{1}; !reflect.DeepEqual(got, want) {
		t.Errorf("injected cells = %v, want %v", got, want)
	}
	var statuses []string
	for _, c := range nb.Cells {
		if c.Papermill != nil {
			statuses = append(statuses, c.Papermill.Status)
		}
	}
	if want := []string{"completed", "completed", "completed", "completed", "failed", "pending"}; !reflect.DeepEqual(statuses, want) {
		t.Errorf("cell statuses = %v, want %v", statuses, want)
	}
	streams := nb.Cells[2].Outputs
	if len(streams) != 2 || streams[0].Name != "stdout" || streams[0].Text != "to stdout\n" || streams[1].Name != "stderr" {
		t.Errorf("stream outputs = %+v", streams)
	}
	rich := nb.Cells[3].Outputs
	if html, ok := rich[0].DataText("text/html"); rich[0].OutputType != "display_data" || !ok || html != "<i>rows</i>" {
		t.Errorf("display_data = %+v", rich[0])
	}
	if text, ok := rich[1].DataText("text/plain"); rich[1].OutputType != "execute_result" || !ok || text != "10" {
		t.Errorf("execute_result = %+v", rich[1])
	}
	if e := nb.Cells[5].Outputs[0]; e.OutputType != "error" || e.EName != "ValueError" || e.EValue != "bad rows" || len(e.Traceback) != 2 {
		t.Errorf("error output = %+v", e)
	}
}
