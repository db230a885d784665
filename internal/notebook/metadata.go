package notebook

import (
	"encoding/json"
	"strings"
)

// Metadata is the notebook-level metadata millrace reads. Notebook metadata
// is free-form and editors put odd things in it, so it is decoded leniently:
// a field of an unexpected type is left empty instead of failing the load.
type Metadata struct {
	Kernelspec   *Kernelspec
	LanguageInfo *LanguageInfo
	Papermill    *NotebookPapermill
	Raw          json.RawMessage // the whole metadata object, as found
}

// Kernelspec names the kernel a notebook was written for.
type Kernelspec struct {
	Name        string `json:"name"`
	DisplayName string `json:"display_name"`
	Language    string `json:"language"`
}

// LanguageInfo is what the kernel reported about its language. VS Code
// writes it without a kernelspec, so it is the fallback for Language.
type LanguageInfo struct {
	Name string `json:"name"`
}

// NotebookPapermill is metadata.papermill of an executed notebook, written
// by papermill or the bundled runner.
type NotebookPapermill struct {
	Parameters           map[string]any    `json:"parameters"`
	DefaultParameters    map[string]any    `json:"default_parameters"`
	EnvironmentVariables map[string]string `json:"environment_variables"`
	Version              string            `json:"version"`
	InputPath            string            `json:"input_path"`
	OutputPath           string            `json:"output_path"`
	StartTime            string            `json:"start_time"`
	EndTime              string            `json:"end_time"`
	Duration             float64           `json:"duration"`
	Exception            bool              `json:"exception"`
}

// CellPapermill is metadata.papermill of one cell: its execution state as
// the executor last saved it. Times are kept as written (ISO 8601); null
// fields stay zero.
type CellPapermill struct {
	Status    string  `json:"status"` // pending, running, completed, failed
	StartTime string  `json:"start_time"`
	EndTime   string  `json:"end_time"`
	Duration  float64 `json:"duration"`
	Exception bool    `json:"exception"`
}

// Papermill cell statuses.
const (
	StatusPending   = "pending"
	StatusRunning   = "running"
	StatusCompleted = "completed"
	StatusFailed    = "failed"
)

// lenient decodes raw into v, keeping what fits: json.Unmarshal skips a
// field of the wrong type, fills the rest and reports the first mismatch,
// which is exactly the leniency metadata needs.
func lenient(raw json.RawMessage, v any) bool {
	if len(raw) == 0 || isNull(raw) {
		return false
	}
	err := json.Unmarshal(raw, v)
	if err == nil {
		return true
	}
	_, typeErr := err.(*json.UnmarshalTypeError)
	return typeErr
}

func parseMetadata(raw json.RawMessage) Metadata {
	m := Metadata{Raw: raw}
	var fields struct {
		Kernelspec   json.RawMessage `json:"kernelspec"`
		LanguageInfo json.RawMessage `json:"language_info"`
		Papermill    json.RawMessage `json:"papermill"`
	}
	if !lenient(raw, &fields) {
		return m
	}
	if ks := new(Kernelspec); lenient(fields.Kernelspec, ks) {
		m.Kernelspec = ks
	}
	if li := new(LanguageInfo); lenient(fields.LanguageInfo, li) {
		m.LanguageInfo = li
	}
	if pm := new(NotebookPapermill); lenient(fields.Papermill, pm) {
		m.Papermill = pm
	}
	return m
}

func parseCellMetadata(raw json.RawMessage) (tags []string, pm *CellPapermill) {
	var fields struct {
		Tags      []string        `json:"tags"`
		Papermill json.RawMessage `json:"papermill"`
	}
	if !lenient(raw, &fields) {
		return nil, nil
	}
	if p := new(CellPapermill); lenient(fields.Papermill, p) {
		pm = p
	}
	return fields.Tags, pm
}

// KernelName is metadata.kernelspec.name, or "" when the notebook names no
// kernel (VS Code's blank notebooks): the run then picks the default.
func (nb *Notebook) KernelName() string {
	if nb.Metadata.Kernelspec == nil {
		return ""
	}
	return nb.Metadata.Kernelspec.Name
}

// Language is the kernelspec's language, else language_info.name, the
// same order papermill uses to pick a parameter translator.
func (nb *Notebook) Language() string {
	if ks := nb.Metadata.Kernelspec; ks != nil && ks.Language != "" {
		return ks.Language
	}
	if li := nb.Metadata.LanguageInfo; li != nil {
		return li.Name
	}
	return ""
}

// IsPython reports whether the notebook's parameters cell is Python, the
// only language whose parameters millrace (like papermill) inspects. A
// notebook that names neither kernel nor language runs on the default
// Python kernel, so it counts as Python.
func (nb *Notebook) IsPython() bool {
	if lang := strings.ToLower(nb.Language()); lang != "" {
		return lang == "python"
	}
	kernel := strings.ToLower(nb.KernelName())
	return kernel == "" || strings.HasPrefix(kernel, "python") || kernel == "pysparkkernel"
}

// TaggedCells returns the indices of the cells that carry tag.
func (nb *Notebook) TaggedCells(tag string) []int {
	var idx []int
	for i := range nb.Cells {
		if nb.Cells[i].HasTag(tag) {
			idx = append(idx, i)
		}
	}
	return idx
}

// CodeCells counts the code cells, the unit of progress ("cell 5/12").
func (nb *Notebook) CodeCells() int {
	n := 0
	for i := range nb.Cells {
		if nb.Cells[i].Type == CellCode {
			n++
		}
	}
	return n
}
