package jobs

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"regexp"
	"sort"
	"strings"

	"millrace/internal/notebook"
)

// MaxAttachmentBytes bounds what one OutputData read returns. A bigger
// output is refused rather than shipped whole to a client that asked for a
// page-sized answer.
const MaxAttachmentBytes = 32 << 20

// OutputPart is one representation of an output: text for textual mime
// types (and streams, errors), base64 for binary ones (PNG, JPEG...).
type OutputPart struct {
	MimeType string `json:"mime_type"`
	Text     string `json:"text,omitempty"`
	Blob     string `json:"blob,omitempty"` // base64, no line breaks
}

// OutputData is one whole output of one cell of a job's output notebook:
// what get_job_output leaves out of its answer (images, HTML, long text).
type OutputData struct {
	JobID      string       `json:"job_id"`
	Cell       int          `json:"cell"`   // notebook cell index
	Output     int          `json:"output"` // index among the cell's outputs
	OutputType string       `json:"output_type"`
	Parts      []OutputPart `json:"parts"`
	OutputPath string       `json:"output_path"`
	Status     string       `json:"status"` // the job's, when read
}

// OutputData reads output number output of cell number cell (notebook
// indices, as get_job_output reports them) of a job's output notebook, in
// full: every mime type of a rich output, the whole text of a stream, the
// whole traceback of an error.
func (s *Service) OutputData(ctx context.Context, jobID string, cell, output int) (OutputData, error) {
	st, err := s.Status(ctx, jobID)
	if err != nil {
		return OutputData{}, err
	}
	nb, err := notebook.Load(st.OutputPath)
	if errors.Is(err, os.ErrNotExist) {
		return OutputData{}, userErrorf("job %s has no output notebook yet (status %s)", jobID, st.Status)
	}
	if err != nil && !errors.Is(err, notebook.ErrNoCodeCells) {
		return OutputData{}, userErrorf("output notebook %s: %v", st.OutputPath, err)
	}
	if cell < 0 || cell >= len(nb.Cells) {
		return OutputData{}, userErrorf("job %s: cell %d does not exist (the output notebook has %d cells)", jobID, cell, len(nb.Cells))
	}
	c := &nb.Cells[cell]
	if output < 0 || output >= len(c.Outputs) {
		return OutputData{}, userErrorf("job %s: cell %d has no output %d (it has %d)", jobID, cell, output, len(c.Outputs))
	}
	o := &c.Outputs[output]
	d := OutputData{JobID: jobID, Cell: cell, Output: output, OutputType: o.OutputType, OutputPath: st.OutputPath, Status: st.Status}
	switch o.OutputType {
	case "stream":
		d.Parts = []OutputPart{{MimeType: "text/plain", Text: o.Text}}
	case "error":
		text := o.EName + ": " + o.EValue + "\n" + strings.Join(o.Traceback, "\n")
		d.Parts = []OutputPart{{MimeType: "text/plain", Text: ansi.ReplaceAllString(text, "")}}
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
		return OutputData{}, userErrorf("job %s: output %d of cell %d is %d bytes, more than the %d a read returns; open %s directly", jobID, output, cell, size, MaxAttachmentBytes, st.OutputPath)
	}
	return d, nil
}

// ansi matches terminal escape sequences, which IPython puts in tracebacks.
var ansi = regexp.MustCompile("\x1b\\[[0-?]*[ -/]*[@-~]|\x1b\\][^\x07\x1b]*(?:\x07|\x1b\\\\)|\x1b[@-_]")

// outputPart decodes one mime bundle entry. nbformat stores binary images
// as base64 text, JSON types as JSON values and everything else as text.
func outputPart(o *notebook.Output, mime string) OutputPart {
	if binaryMime(mime) {
		if s, ok := o.DataText(mime); ok {
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
	}
	if s, ok := o.DataText(mime); ok {
		return OutputPart{MimeType: mime, Text: s}
	}
	return OutputPart{MimeType: mime, Text: string(o.Data[mime])}
}

// binaryMime reports whether nbformat stores mime as base64: images other
// than SVG, and other non-text types that are not JSON.
func binaryMime(mime string) bool {
	switch {
	case mime == "image/svg+xml", strings.HasPrefix(mime, "text/"), strings.HasSuffix(mime, "json"),
		mime == "application/javascript":
		return false
	case strings.HasPrefix(mime, "image/"), strings.HasPrefix(mime, "application/"), strings.HasPrefix(mime, "audio/"), strings.HasPrefix(mime, "video/"):
		return true
	}
	return false
}
