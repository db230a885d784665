package jobs

import (
	"context"
	"encoding/base64"
	"errors"
	"sort"
	"strings"

	"millrace/internal/notebook"
)

// MaxAttachmentBytes bounds what one OutputData or CellText read returns.
// A bigger output is refused rather than shipped whole to a client.
const MaxAttachmentBytes = 32 << 20

// OutputPart is one representation of an output: text for textual mime
// types (and streams, errors), base64 for binary ones (PNG, JPEG...).
type OutputPart struct {
	MimeType string `json:"mime_type"`
	Text     string `json:"text,omitempty"`
	Blob     string `json:"blob,omitempty"` // base64, no line breaks
}

// OutputData is one whole output of one cell of a job's output notebook:
// what Output leaves out of its answer (images, HTML, long text).
type OutputData struct {
	JobID      string       `json:"job_id"`
	Cell       int          `json:"cell"`   // notebook cell index
	Output     int          `json:"output"` // index among the cell's outputs
	OutputType string       `json:"output_type"`
	Parts      []OutputPart `json:"parts"`
}

// OutputData reads output number output of cell number cell (notebook
// indices, as Output reports them) of a job's output notebook, in full:
// every mime type of a rich output, the whole text of a stream, the whole
// traceback of an error.
func (s *Service) OutputData(ctx context.Context, jobID string, cell, output int) (OutputData, error) {
	nb, err := s.outputCell(ctx, jobID, cell)
	if err != nil {
		return OutputData{}, err
	}
	c := &nb.Cells[cell]
	if output < 0 || output >= len(c.Outputs) {
		return OutputData{}, userErrorf("job %s: cell %d has no output %d (it has %d)", jobID, cell, output, len(c.Outputs))
	}
	o := &c.Outputs[output]
	d := OutputData{JobID: jobID, Cell: cell, Output: output, OutputType: o.OutputType}
	switch o.OutputType {
	case "stream":
		d.Parts = []OutputPart{{MimeType: "text/plain", Text: o.Text}}
	case "error":
		text := o.EName + ": " + o.EValue + "\n" + strings.Join(o.Traceback, "\n")
		d.Parts = []OutputPart{{MimeType: "text/plain", Text: notebook.StripANSI(text)}}
	default:
		mimes := make([]string, 0, len(o.Data))
		for m := range o.Data {
			mimes = append(mimes, m)
		}
		sort.Strings(mimes)
		for _, m := range mimes {
			d.Parts = append(d.Parts, outputPart(o, m))
		}
	}
	size := 0
	for _, p := range d.Parts {
		size += len(p.Text) + len(p.Blob)
	}
	if size > MaxAttachmentBytes {
		return OutputData{}, tooBig(jobID, cell, size)
	}
	return d, nil
}

// CellText is the whole text output of a cell (its streams and text/plain
// results, as Output puts in a cell's text, but not truncated).
func (s *Service) CellText(ctx context.Context, jobID string, cell int) (string, error) {
	nb, err := s.outputCell(ctx, jobID, cell)
	if err != nil {
		return "", err
	}
	if nb.Cells[cell].Type != notebook.CellCode {
		return "", userErrorf("job %s: cell %d is a %s cell, which has no output", jobID, cell, nb.Cells[cell].Type)
	}
	reports := notebook.CellOutputs(nb, cell, cell+1, 0)
	if len(reports) != 1 {
		return "", nil
	}
	if len(reports[0].Text) > MaxAttachmentBytes {
		return "", tooBig(jobID, cell, len(reports[0].Text))
	}
	return reports[0].Text, nil
}

// outputCell loads a job's output notebook and checks that it has cell.
func (s *Service) outputCell(ctx context.Context, jobID string, cell int) (*notebook.Notebook, error) {
	st, err := s.Status(ctx, jobID)
	if err != nil {
		return nil, err
	}
	nb, err := s.loadOutput(jobID, st.OutputPath)
	if errors.Is(err, errNoOutputYet) {
		return nil, userErrorf("job %s has no output notebook yet (status %s)", jobID, st.Status)
	}
	if IsUserError(err) {
		return nil, err
	}
	if err != nil && !errors.Is(err, notebook.ErrNoCodeCells) {
		return nil, userErrorf("output notebook %s: %v", st.OutputPath, err)
	}
	if cell < 0 || cell >= len(nb.Cells) {
		return nil, userErrorf("job %s: cell %d does not exist (the output notebook has %d cells)", jobID, cell, len(nb.Cells))
	}
	return nb, nil
}

func tooBig(jobID string, cell, size int) error {
	return userErrorf("job %s: the output of cell %d is %d bytes, more than the %d one read returns; open the output notebook itself", jobID, cell, size, MaxAttachmentBytes)
}

// outputPart decodes one mime bundle entry. nbformat stores binary data
// (PNG, JPEG, PDF...) as base64 text, JSON types as JSON values and
// everything else as text.
func outputPart(o *notebook.Output, mime string) OutputPart {
	s, isText := o.DataText(mime)
	if !isText {
		return OutputPart{MimeType: mime, Text: string(o.Data[mime])}
	}
	if BinaryMime(mime) {
		b64 := strings.Map(func(r rune) rune {
			if r == '\n' || r == '\r' || r == ' ' {
				return -1
			}
			return r
		}, s)
		if _, err := base64.StdEncoding.DecodeString(b64); err == nil {
			return OutputPart{MimeType: mime, Blob: b64}
		}
	}
	return OutputPart{MimeType: mime, Text: s}
}

// BinaryMime reports whether nbformat stores data of this mime type as
// base64: images other than SVG, audio, video, and application types that
// are not JSON or JavaScript.
func BinaryMime(mime string) bool {
	switch {
	case mime == "image/svg+xml", strings.HasPrefix(mime, "text/"), strings.HasSuffix(mime, "json"),
		mime == "application/javascript", mime == "application/xml":
		return false
	}
	for _, p := range []string{"image/", "audio/", "video/", "application/"} {
		if strings.HasPrefix(mime, p) {
			return true
		}
	}
	return false
}
