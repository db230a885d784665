// Package notebook reads Jupyter notebooks (nbformat 4): the model the job
// service needs to inspect a notebook before a run (kernel, parameters) and
// to report on it after (papermill status, outputs, errors). It only reads:
// the executor writes notebooks, so nothing here has to round-trip.
package notebook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// Cell types, as nbformat spells them.
const (
	CellCode     = "code"
	CellMarkdown = "markdown"
	CellRaw      = "raw"
)

// Tags with a meaning to papermill.
const (
	TagParameters         = "parameters"
	TagInjectedParameters = "injected-parameters"
)

// Notebook is an nbformat 4 notebook as far as millrace needs it.
type Notebook struct {
	NBFormat      int
	NBFormatMinor int
	Metadata      Metadata
	Cells         []Cell
}

// Cell is one cell. Source is joined from nbformat's list-or-string form so
// callers never deal with the two spellings.
type Cell struct {
	ID             string
	Type           string
	Source         string
	Tags           []string
	Papermill      *CellPapermill // nil when the cell has no metadata.papermill
	Metadata       json.RawMessage
	ExecutionCount *int
	Outputs        []Output
}

// Output is one output of a code cell: a stream, a rich result
// (execute_result, display_data) or an error.
type Output struct {
	OutputType     string // stream, execute_result, display_data, error
	Name           string // stream name: stdout or stderr
	Text           string // stream text, joined
	Data           map[string]json.RawMessage
	ExecutionCount *int
	EName          string
	EValue         string
	Traceback      []string
}

// HasTag reports whether the cell carries tag.
func (c *Cell) HasTag(tag string) bool {
	for _, t := range c.Tags {
		if t == tag {
			return true
		}
	}
	return false
}

// DataText returns a textual mime bundle entry (text/plain, text/html,
// image/png as base64...), joining nbformat's list-of-lines form. It reports
// false when the entry is missing or is not text (application/json).
func (o *Output) DataText(mime string) (string, bool) {
	raw, ok := o.Data[mime]
	if !ok {
		return "", false
	}
	s, err := multiline(raw)
	if err != nil {
		return "", false
	}
	return s, true
}

// Load reads and parses the notebook at path. Like Parse, it returns the
// notebook together with ErrNoCodeCells.
func Load(path string) (*Notebook, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load notebook: %w", err)
	}
	nb, err := Parse(data)
	if err != nil {
		return nb, fmt.Errorf("load notebook %s: %w", path, err)
	}
	return nb, nil
}

// raw* mirror the file layout; Parse converts them to the public model.
type rawNotebook struct {
	NBFormat      json.RawMessage `json:"nbformat"`
	NBFormatMinor json.RawMessage `json:"nbformat_minor"`
	Metadata      json.RawMessage `json:"metadata"`
	Cells         json.RawMessage `json:"cells"`
}

type rawCell struct {
	ID             string          `json:"id"`
	CellType       string          `json:"cell_type"`
	Source         json.RawMessage `json:"source"`
	Metadata       json.RawMessage `json:"metadata"`
	ExecutionCount *int            `json:"execution_count"`
	Outputs        []rawOutput     `json:"outputs"`
}

type rawOutput struct {
	OutputType     string                     `json:"output_type"`
	Name           string                     `json:"name"`
	Text           json.RawMessage            `json:"text"`
	Data           map[string]json.RawMessage `json:"data"`
	ExecutionCount *int                       `json:"execution_count"`
	EName          string                     `json:"ename"`
	EValue         string                     `json:"evalue"`
	Traceback      []string                   `json:"traceback"`
}

// Parse parses an nbformat 4 notebook. Errors wrap ErrNotNotebook,
// ErrUnsupportedVersion or ErrNoCodeCells; with ErrNoCodeCells the notebook
// is returned too.
func Parse(data []byte) (*Notebook, error) {
	var top rawNotebook
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, describeJSONError(data, err)
	}
	if len(top.NBFormat) == 0 {
		return nil, notNotebook("no nbformat field")
	}
	major, err := jsonInt(top.NBFormat)
	if err != nil {
		return nil, notNotebook("nbformat is %s, not a number", abbreviate(string(top.NBFormat), 20))
	}
	if major != 4 {
		return nil, &VersionError{Major: major}
	}
	nb := &Notebook{NBFormat: major}
	if len(top.NBFormatMinor) > 0 {
		nb.NBFormatMinor, _ = jsonInt(top.NBFormatMinor) // informative only
	}
	if len(top.Cells) == 0 || isNull(top.Cells) {
		return nil, notNotebook("no cells field")
	}
	var cells []rawCell
	if err := json.Unmarshal(top.Cells, &cells); err != nil {
		return nil, notNotebook("cells: %v", err)
	}
	nb.Metadata = parseMetadata(top.Metadata)
	code := 0
	nb.Cells = make([]Cell, len(cells))
	for i, rc := range cells {
		c, err := convertCell(rc)
		if err != nil {
			return nil, notNotebook("cell %d: %v", i, err)
		}
		if c.Type == CellCode {
			code++
		}
		nb.Cells[i] = c
	}
	if code == 0 {
		return nb, ErrNoCodeCells
	}
	return nb, nil
}

func convertCell(rc rawCell) (Cell, error) {
	if rc.CellType == "" {
		return Cell{}, errors.New("no cell_type")
	}
	src, err := multiline(rc.Source)
	if err != nil {
		return Cell{}, fmt.Errorf("source: %w", err)
	}
	c := Cell{
		ID:             rc.ID,
		Type:           rc.CellType,
		Source:         src,
		Metadata:       rc.Metadata,
		ExecutionCount: rc.ExecutionCount,
	}
	c.Tags, c.Papermill = parseCellMetadata(rc.Metadata)
	for j, ro := range rc.Outputs {
		text, err := multiline(ro.Text)
		if err != nil {
			return Cell{}, fmt.Errorf("output %d text: %w", j, err)
		}
		c.Outputs = append(c.Outputs, Output{
			OutputType:     ro.OutputType,
			Name:           ro.Name,
			Text:           text,
			Data:           ro.Data,
			ExecutionCount: ro.ExecutionCount,
			EName:          ro.EName,
			EValue:         ro.EValue,
			Traceback:      ro.Traceback,
		})
	}
	return c, nil
}

// multiline decodes nbformat's multiline string: a string, a list of
// strings to concatenate, or nothing.
func multiline(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || isNull(raw) {
		return "", nil
	}
	var s string
	if raw[0] == '"' {
		err := json.Unmarshal(raw, &s)
		return s, err
	}
	var parts []string
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", errors.New("expected a string or a list of strings")
	}
	var b bytes.Buffer
	for _, p := range parts {
		b.WriteString(p)
	}
	return b.String(), nil
}

func isNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

func jsonInt(raw json.RawMessage) (int, error) {
	var n int
	err := json.Unmarshal(raw, &n)
	return n, err
}

// describeJSONError says what the bytes were instead of a notebook: a
// syntax error with its offset, or the wrong kind of JSON value.
func describeJSONError(data []byte, err error) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		if len(bytes.TrimSpace(data)) == 0 {
			return notNotebook("the file is empty")
		}
		return notNotebook("invalid JSON at byte %d: %v", syn.Offset, syn)
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		if typ.Field == "" {
			return notNotebook("the file holds a JSON %s", typ.Value)
		}
		return notNotebook("%s is a JSON %s", typ.Field, typ.Value)
	}
	return notNotebook("%v", err)
}

// abbreviate keeps messages short when they quote user data.
func abbreviate(s string, max int) string {
	r := []rune(s)
	if len(r) <= max {
		return s
	}
	return string(r[:max-1]) + "…"
}
