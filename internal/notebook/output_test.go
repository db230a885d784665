package notebook

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func executedNotebook(t *testing.T) *Notebook {
	t.Helper()
	pm := func(status string, duration float64) map[string]any {
		return map[string]any{"papermill": map[string]any{"status": status, "duration": duration, "exception": status == "failed"}}
	}
	longLog := strings.Repeat("0123456789", 30) // 300 chars
	cells := []any{
		map[string]any{"cell_type": "markdown", "metadata": map[string]any{}, "source": "# Report"},
		map[string]any{"cell_type": "code", "execution_count": 1, "metadata": pm("completed", 0.5), "source": "print('hi')",
			"outputs": []any{
				map[string]any{"output_type": "stream", "name": "stdout", "text": []string{"hi\n", "there\n"}},
				map[string]any{"output_type": "stream", "name": "stderr", "text": "\x1b[31mwarn\x1b[0m\n"},
				map[string]any{"output_type": "execute_result", "execution_count": 1, "metadata": map[string]any{},
					"data": map[string]any{"text/plain": []string{"42"}, "text/html": "<b>42</b>"}},
				map[string]any{"output_type": "display_data", "metadata": map[string]any{},
					"data": map[string]any{"text/plain": "<Figure>", "image/png": "iVBORw0KGgo=", "application/json": map[string]any{"a": 1}}},
			}},
		map[string]any{"cell_type": "code", "execution_count": 2, "metadata": pm("completed", 1), "source": "log()",
			"outputs": []any{map[string]any{"output_type": "stream", "name": "stdout", "text": longLog}}},
		map[string]any{"cell_type": "code", "execution_count": 3, "metadata": pm("failed", 0.25), "source": "assert False",
			"outputs": []any{
				map[string]any{"output_type": "display_data", "metadata": map[string]any{}, "data": map[string]any{"text/html": "<style/>"}},
				map[string]any{"output_type": "error", "ename": "AssertionError", "evalue": "",
					"traceback": []string{"\x1b[0;31m---------------------------------------------------------------------------\x1b[0m", "\x1b[0;31mAssertionError\x1b[0m: "}},
			}},
		map[string]any{"cell_type": "code", "execution_count": nil, "metadata": pm("pending", 0), "source": "never()", "outputs": []any{}},
		// Executed by something other than papermill: no metadata.papermill.
		map[string]any{"cell_type": "code", "execution_count": 7, "metadata": map[string]any{}, "source": "x", "outputs": []any{}},
		map[string]any{"cell_type": "code", "execution_count": 8, "metadata": map[string]any{}, "source": "1/0",
			"outputs": []any{map[string]any{"output_type": "error", "ename": "ZeroDivisionError", "evalue": "division by zero", "traceback": []string{}}}},
	}
	data, err := json.Marshal(map[string]any{"nbformat": 4, "nbformat_minor": 5, "metadata": map[string]any{}, "cells": cells})
	if err != nil {
		t.Fatal(err)
	}
	nb, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return nb
}

func intp(n int) *int { return &n }

func TestCellOutputs(t *testing.T) {
	nb := executedNotebook(t)
	got := CellOutputs(nb, 0, -1, 100)
	want := []CellReport{
		{Index: 1, CodeIndex: 0, ExecutionCount: intp(1), Status: "completed", DurationSeconds: 0.5,
			Text: "hi\nthere\nwarn\n42\n<Figure>\n",
			Attachments: []Attachment{
				{MimeType: "text/html", Size: 9, OutputIndex: 2},
				{MimeType: "application/json", Size: 7, OutputIndex: 3},
				{MimeType: "image/png", Size: 12, OutputIndex: 3},
			}},
		{Index: 2, CodeIndex: 1, ExecutionCount: intp(2), Status: "completed", DurationSeconds: 1,
			Text: strings.Repeat("0123456789", 10) + "… [truncated 200 chars]"},
		{Index: 3, CodeIndex: 2, ExecutionCount: intp(3), Status: "failed", DurationSeconds: 0.25,
			Error: &CellError{EName: "AssertionError", EValue: "", Traceback: []string{
				"---------------------------------------------------------------------------", "AssertionError: "}},
			Attachments: []Attachment{{MimeType: "text/html", Size: 8, OutputIndex: 0}}},
		{Index: 4, CodeIndex: 3, Status: "pending"},
		{Index: 5, CodeIndex: 4, ExecutionCount: intp(7), Status: "completed"},
		{Index: 6, CodeIndex: 5, ExecutionCount: intp(8), Status: "failed",
			Error: &CellError{EName: "ZeroDivisionError", EValue: "division by zero", Traceback: []string{}}},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d reports, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			g, _ := json.Marshal(got[i])
			w, _ := json.Marshal(want[i])
			t.Errorf("report %d:\n got %s\nwant %s", i, g, w)
		}
	}
}

func TestCellOutputsRange(t *testing.T) {
	nb := executedNotebook(t)
	indices := func(rs []CellReport) []int {
		var idx []int
		for _, r := range rs {
			idx = append(idx, r.Index)
		}
		return idx
	}
	tests := []struct {
		from, to int
		want     []int
	}{
		{3, 4, []int{3}},
		{0, 2, []int{1}},
		{0, 1, nil}, // the markdown cell only
		{5, 100, []int{5, 6}},
		{-3, -1, []int{1, 2, 3, 4, 5, 6}},
		{7, -1, nil},
		{4, 2, nil},
	}
	for _, tt := range tests {
		got := CellOutputs(nb, tt.from, tt.to, 0)
		if !reflect.DeepEqual(indices(got), tt.want) {
			t.Errorf("CellOutputs(%d, %d) = cells %v, want %v", tt.from, tt.to, indices(got), tt.want)
		}
	}
	if r := CellOutputs(nb, 3, 4, 0)[0]; r.CodeIndex != 2 {
		t.Errorf("code index = %d, want 2", r.CodeIndex)
	}
	if r := CellOutputs(nb, 2, 3, 0)[0]; len(r.Text) != 300 {
		t.Errorf("unlimited text = %d chars, want 300", len(r.Text))
	}
}

func TestTruncateTraceback(t *testing.T) {
	frames := []string{strings.Repeat("a", 50), strings.Repeat("b", 50), "\x1b[31m" + strings.Repeat("c", 30) + "\x1b[0m"}
	got := truncateTraceback(frames, 90)
	want := []string{"… [truncated 50 chars]", strings.Repeat("b", 50), strings.Repeat("c", 30)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("truncateTraceback = %q, want %q", got, want)
	}
	got = truncateTraceback(frames, 10)
	if want := []string{"cccccccccc… [truncated 20 chars]"}; !reflect.DeepEqual(got, want) {
		t.Errorf("tiny budget = %q, want %q", got, want)
	}
}

func TestStripANSI(t *testing.T) {
	tests := map[string]string{
		"plain":                                "plain",
		"\x1b[0;31mred\x1b[0m":                 "red",
		"\x1b[1;32m\x1b[4mok\x1b[24m":          "ok",
		"\x1b]8;;http://x\x07link\x1b]8;;\x07": "link",
		"a\x1b[2Kb":                            "ab",
		"é\x1b[31m日本\x1b[0m":                   "é日本",
	}
	for in, want := range tests {
		if got := StripANSI(in); got != want {
			t.Errorf("StripANSI(%q) = %q, want %q", in, got, want)
		}
	}
}
