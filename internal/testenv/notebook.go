package testenv

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ParametersPrefix starts a cell that WriteNotebook tags "parameters".
const ParametersPrefix = "# parameters\n"

// WriteNotebook writes an nbformat 4 Python notebook of code cells into
// dir as name, and returns its path. A cell whose source starts with
// ParametersPrefix is tagged "parameters".
func WriteNotebook(t testing.TB, dir, name string, cells ...string) string {
	t.Helper()
	return WriteNotebookFor(t, dir, name, "python3", cells...)
}

// WriteNotebookFor is WriteNotebook with the kernelspec naming kernel (a
// Python-language kernel).
func WriteNotebookFor(t testing.TB, dir, name, kernel string, cells ...string) string {
	t.Helper()
	cs := make([]map[string]any, 0, len(cells))
	for i, src := range cells {
		md := map[string]any{}
		if strings.HasPrefix(src, ParametersPrefix) {
			md["tags"] = []string{"parameters"}
		}
		cs = append(cs, map[string]any{"cell_type": "code", "id": "c" + string(rune('a'+i%26)) + string(rune('0'+i/26)),
			"metadata": md, "execution_count": nil, "outputs": []any{}, "source": src})
	}
	b, err := json.Marshal(map[string]any{"nbformat": 4, "nbformat_minor": 5, "cells": cs, "metadata": map[string]any{
		"kernelspec": map[string]any{"name": kernel, "display_name": kernel, "language": "python"}}})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
