package notebook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// progressOf computes Progress from a fully parsed notebook: the reference
// ReadProgress must agree with.
func progressOf(nb *Notebook) Progress {
	p := Progress{Current: -1}
	for i := range nb.Cells {
		c := &nb.Cells[i]
		if c.Type != CellCode {
			continue
		}
		status := ""
		if c.Papermill != nil {
			status = c.Papermill.Status
		}
		switch status {
		case StatusCompleted:
			p.CellsDone++
		case StatusFailed:
			p.CellsDone++
			p.Failed = true
		case StatusRunning:
			if p.Current < 0 {
				p.Current = p.CellsTotal
				p.CurrentSource = FirstLine(c.Source, maxCurrentSource)
			}
		}
		p.CellsTotal++
	}
	if pm := nb.Metadata.Papermill; pm != nil && pm.Exception {
		p.Failed = true
	}
	return p
}

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReadProgress(t *testing.T) {
	dir := t.TempDir()
	// Keys in an unusual order (source and metadata after outputs), both
	// source spellings, escapes, a markdown cell with a status, nulls.
	nb := `{"cells": [
  {"outputs": [{"output_type": "stream", "name": "stdout", "text": ["x \"quoted\" \\ back\\\\\n"]}],
   "source": ["import os\n"], "cell_type": "code", "metadata": {"papermill": {"status": "completed"}}},
  {"cell_type": "markdown", "metadata": {"papermill": {"status": "running"}}, "source": "# title"},
  {"metadata": {"tags": ["x"], "papermill": {"status": "completed", "duration": null}}, "cell_type": "code", "source": "a = 1"},
  {"cell_type": "code", "source": ["\n", "   \n", "  caf\u00e9 = \"\ud83d\ude00\" # \\ and \"\n", "more\n"],
   "metadata": {"papermill": {"status": "running", "exception": null}}, "outputs": []},
  {"cell_type": "code", "metadata": {"papermill": {"status": "pending"}}, "source": ""},
  {"cell_type": "code", "metadata": {"papermill": null}, "source": null},
  {"cell_type": "code", "metadata": {}, "source": "x"}
 ],
 "metadata": {"papermill": {"exception": null, "parameters": {"a": [1, 2, {"b": null}]}}},
 "nbformat": 4, "nbformat_minor": 5}`
	path := writeFile(t, dir, "out.ipynb", []byte(nb))
	got, err := ReadProgress(path)
	if err != nil {
		t.Fatal(err)
	}
	want := Progress{CellsTotal: 6, CellsDone: 2, Current: 2, CurrentSource: `café = "😀" # \ and "`}
	if got != want {
		t.Errorf("ReadProgress = %+v, want %+v", got, want)
	}
	full, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if ref := progressOf(full); got != ref {
		t.Errorf("ReadProgress = %+v, full parse gives %+v", got, ref)
	}
}

func TestReadProgressFailedAndLongSource(t *testing.T) {
	long := "x = '" + strings.Repeat("é", 200) + "'"
	cells := []map[string]any{
		{"cell_type": "code", "source": long, "metadata": map[string]any{"papermill": map[string]any{"status": "running"}}},
		{"cell_type": "code", "source": "y", "metadata": map[string]any{"papermill": map[string]any{"status": "failed"}}},
	}
	data, _ := json.Marshal(map[string]any{"nbformat": 4, "cells": cells, "metadata": map[string]any{}})
	got, err := ReadProgress(writeFile(t, t.TempDir(), "nb.ipynb", data))
	if err != nil {
		t.Fatal(err)
	}
	wantSource := "x = '" + strings.Repeat("é", 74) + "…"
	if got.CurrentSource != wantSource || !got.Failed || got.CellsDone != 1 || got.Current != 0 {
		t.Errorf("got %+v, want failed, 1 done, current 0 with source %q", got, wantSource)
	}

	data, _ = json.Marshal(map[string]any{"nbformat": 4, "cells": cells[:1],
		"metadata": map[string]any{"papermill": map[string]any{"exception": true}}})
	got, err = ReadProgress(writeFile(t, t.TempDir(), "nb.ipynb", data))
	if err != nil || !got.Failed {
		t.Errorf("notebook-level exception: %+v, %v; want Failed", got, err)
	}
}

// TestReadProgressRandom checks the streaming reader against the full
// parser on notebooks full of the bytes that trip string skipping
// (backslashes and quotes, runs of them across buffer boundaries).
func TestReadProgressRandom(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	alphabet := []string{`\`, `"`, `\\`, `\"`, "a", "é", "\n", "😀", " ", "{", "]", "\t"}
	randomString := func(n int) string {
		var b strings.Builder
		for b.Len() < n {
			b.WriteString(alphabet[rng.Intn(len(alphabet))])
		}
		return b.String()
	}
	statuses := []string{"pending", "running", "completed", "failed", ""}
	dir := t.TempDir()
	for round := range 20 {
		var cells []map[string]any
		for range 1 + rng.Intn(12) {
			md := map[string]any{}
			if s := statuses[rng.Intn(len(statuses))]; s != "" {
				md["papermill"] = map[string]any{"status": s, "duration": rng.Float64()}
			}
			cellType := "code"
			if rng.Intn(4) == 0 {
				cellType = "markdown"
			}
			var outputs []any
			for range rng.Intn(3) {
				outputs = append(outputs, map[string]any{
					"output_type": "stream", "name": "stdout",
					"text": []string{randomString(rng.Intn(100 << 10)), randomString(10)},
				})
			}
			cells = append(cells, map[string]any{
				"cell_type": cellType, "metadata": md, "outputs": outputs,
				"source": []string{randomString(rng.Intn(20)), "\n", randomString(rng.Intn(6000))},
			})
		}
		data, err := json.Marshal(map[string]any{"nbformat": 4, "nbformat_minor": 5, "cells": cells, "metadata": map[string]any{}})
		if err != nil {
			t.Fatal(err)
		}
		path := writeFile(t, dir, fmt.Sprintf("r%d.ipynb", round), data)
		nb, err := Load(path)
		if err != nil && !errors.Is(err, ErrNoCodeCells) {
			t.Fatal(err)
		}
		got, err := ReadProgress(path)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		want := progressOf(nb)
		// The streaming reader decodes only the start of each source;
		// compare first lines only where that prefix holds them.
		sourceOK := got.CurrentSource == want.CurrentSource ||
			strings.HasPrefix(want.CurrentSource, strings.TrimSuffix(got.CurrentSource, "…"))
		got.CurrentSource, want.CurrentSource = "", ""
		if got != want || !sourceOK {
			t.Fatalf("round %d: ReadProgress = %+v, full parse gives %+v", round, got, want)
		}
	}
}

func TestReadProgressTruncated(t *testing.T) {
	data, err := os.ReadFile(testdataFile(t, "executed_outputs.ipynb"))
	if err != nil {
		t.Fatal(err)
	}
	data = []byte(strings.TrimSpace(string(data)))
	for cut := 0; cut < len(data); cut++ {
		_, err := readProgress(newJSONStream(bytes.NewReader(data[:cut])))
		if err == nil {
			t.Fatalf("cut at %d of %d: no error", cut, len(data))
		}
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("cut at %d: err = %v, want io.ErrUnexpectedEOF", cut, err)
		}
	}
}

func TestReadProgressErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, data string
		is         error
	}{
		{"not json", "print(1)", ErrNotNotebook},
		{"array", "[]", ErrNotNotebook},
		{"no cells", `{"nbformat": 4}`, ErrNotNotebook},
		{"v3", `{"nbformat": 3, "worksheets": []}`, ErrUnsupportedVersion},
		{"bad cell", `{"nbformat": 4, "cells": [{"cell_type": 4}]}`, ErrNotNotebook},
		{"deep", `{"cells": [], "x": ` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`, errJSONDepth},
	}
	for _, tt := range tests {
		p, err := ReadProgress(writeFile(t, dir, "x.ipynb", []byte(tt.data)))
		if !errors.Is(err, tt.is) || p.Current != -1 {
			t.Errorf("%s: ReadProgress = %+v, %v; want %v", tt.name, p, err, tt.is)
		}
	}
	if _, err := ReadProgress(dir); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("directory: err = %v", err)
	}
}

// generatedNotebook writes an output notebook like a long run leaves: 200
// code cells and about 20 MB of outputs (logs and base64 images), cell 120
// running.
func generatedNotebook(tb testing.TB) string {
	tb.Helper()
	rng := rand.New(rand.NewSource(2))
	image := make([]byte, 56<<10)
	rng.Read(image)
	imageB64, _ := json.Marshal(image) // base64, as nbformat stores images
	var logLines []string
	for i := range 500 {
		logLines = append(logLines, fmt.Sprintf("step %d: loss=%.6f path=C:\\data\\run \"%d\"\n", i, rng.Float64(), i))
	}
	var cells []map[string]any
	for i := range 200 {
		status := "completed"
		switch {
		case i == 120:
			status = "running"
		case i > 120:
			status = "pending"
		}
		cells = append(cells, map[string]any{
			"cell_type": "code", "execution_count": i + 1, "id": fmt.Sprintf("cell-%d", i),
			"metadata": map[string]any{"tags": []string{}, "papermill": map[string]any{
				"status": status, "duration": 1.5, "exception": false,
				"start_time": "2024-01-01T00:00:00.000000", "end_time": "2024-01-01T00:00:01.500000"}},
			"source": []string{fmt.Sprintf("# step %d\n", i), "train(model, epochs=3)\n"},
			"outputs": []any{
				map[string]any{"output_type": "stream", "name": "stdout", "text": logLines},
				map[string]any{"output_type": "display_data", "metadata": map[string]any{},
					"data": map[string]any{"text/plain": []string{"<Figure size 640x480 with 1 Axes>"}, "image/png": json.RawMessage(imageB64)}},
			},
		})
	}
	data, err := json.Marshal(map[string]any{"nbformat": 4, "nbformat_minor": 5, "cells": cells,
		"metadata": map[string]any{"kernelspec": map[string]any{"name": "python3", "language": "python"}}})
	if err != nil {
		tb.Fatal(err)
	}
	return writeFile(tb, tb.TempDir(), "output.ipynb", data)
}

func TestReadProgressGenerated(t *testing.T) {
	path := generatedNotebook(t)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Size() < 18<<20 || info.Size() > 24<<20 {
		t.Fatalf("generated notebook is %d bytes, want about 20 MB", info.Size())
	}
	got, err := ReadProgress(path)
	if err != nil {
		t.Fatal(err)
	}
	want := Progress{CellsTotal: 200, CellsDone: 120, Current: 120, CurrentSource: "# step 120"}
	if got != want {
		t.Errorf("ReadProgress = %+v, want %+v", got, want)
	}
}

func BenchmarkReadProgress(b *testing.B) {
	path := generatedNotebook(b)
	info, _ := os.Stat(path)
	b.SetBytes(info.Size())
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := ReadProgress(path); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoad is the full parse ReadProgress avoids, for comparison.
func BenchmarkLoad(b *testing.B) {
	path := generatedNotebook(b)
	info, _ := os.Stat(path)
	b.SetBytes(info.Size())
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Load(path); err != nil {
			b.Fatal(err)
		}
	}
}
