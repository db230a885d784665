package notebook

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"
)

// CellReport is what a job's result says about one executed code cell:
// its text output and error inline, its rich outputs only listed, so a
// report fits in a tool result however big the notebook's outputs are.
type CellReport struct {
	Index           int          `json:"index"`      // cell index in the notebook
	CodeIndex       int          `json:"code_index"` // index among code cells, as in Progress
	ExecutionCount  *int         `json:"execution_count"`
	Status          string       `json:"status"`
	DurationSeconds float64      `json:"duration_seconds"`
	Text            string       `json:"text"`
	Error           *CellError   `json:"error,omitempty"`
	Attachments     []Attachment `json:"attachments,omitempty"`
}

// CellError is the exception a cell raised, with ANSI colours removed from
// the traceback (IPython colours it for terminals).
type CellError struct {
	EName     string   `json:"ename"`
	EValue    string   `json:"evalue"`
	Traceback []string `json:"traceback"`
}

// Attachment is a rich output left out of Text (image, HTML, JSON...):
// its type and size tell the caller whether fetching it is worth it.
type Attachment struct {
	MimeType    string `json:"mime_type"`
	Size        int    `json:"size"` // bytes as stored in the notebook (base64 for binary data)
	OutputIndex int    `json:"output_index"`
}

// CellOutputs reports the code cells with notebook indices in [from, to);
// to < 0 means to the end, and out-of-range bounds are clamped. maxChars
// bounds each cell's Text and traceback, in runes (<= 0: no limit).
//
// A cell without metadata.papermill (a notebook executed by something
// else) gets a status derived from its outputs: failed with an error
// output, completed with an execution count, pending otherwise.
func CellOutputs(nb *Notebook, from, to int, maxChars int) []CellReport {
	if to < 0 || to > len(nb.Cells) {
		to = len(nb.Cells)
	}
	from = max(from, 0)
	var reports []CellReport
	code := 0
	for i := 0; i < to; i++ {
		c := &nb.Cells[i]
		if c.Type != CellCode {
			continue
		}
		if i >= from {
			reports = append(reports, cellReport(c, i, code, maxChars))
		}
		code++
	}
	return reports
}

func cellReport(c *Cell, index, codeIndex, maxChars int) CellReport {
	r := CellReport{Index: index, CodeIndex: codeIndex, ExecutionCount: c.ExecutionCount}
	var text strings.Builder
	for j := range c.Outputs {
		o := &c.Outputs[j]
		switch o.OutputType {
		case "stream":
			text.WriteString(o.Text)
		case "execute_result", "display_data":
			if plain, ok := o.DataText("text/plain"); ok && plain != "" {
				if text.Len() > 0 && !strings.HasSuffix(text.String(), "\n") {
					text.WriteByte('\n')
				}
				text.WriteString(plain)
				if !strings.HasSuffix(plain, "\n") {
					text.WriteByte('\n')
				}
			}
			r.Attachments = append(r.Attachments, attachments(o, j)...)
		case "error":
			r.Error = &CellError{EName: o.EName, EValue: StripANSI(o.EValue), Traceback: truncateTraceback(o.Traceback, maxChars)}
		}
	}
	r.Text = truncate(StripANSI(text.String()), maxChars)
	switch {
	case c.Papermill != nil && c.Papermill.Status != "":
		r.Status = c.Papermill.Status
	case r.Error != nil:
		r.Status = StatusFailed
	case c.ExecutionCount != nil:
		r.Status = StatusCompleted
	default:
		r.Status = StatusPending
	}
	if c.Papermill != nil {
		r.DurationSeconds = c.Papermill.Duration
	}
	return r
}

// attachments lists an output's mime types other than text/plain, in a
// stable order.
func attachments(o *Output, outputIndex int) []Attachment {
	mimes := make([]string, 0, len(o.Data))
	for mime := range o.Data {
		if mime != "text/plain" {
			mimes = append(mimes, mime)
		}
	}
	sort.Strings(mimes)
	var atts []Attachment
	for _, mime := range mimes {
		size := len(o.Data[mime])
		if s, ok := o.DataText(mime); ok {
			size = len(s)
		}
		atts = append(atts, Attachment{MimeType: mime, Size: size, OutputIndex: outputIndex})
	}
	return atts
}

// truncate keeps the first max runes of s and says how many were cut.
func truncate(s string, max int) string {
	if max <= 0 {
		return s
	}
	n := utf8.RuneCountInString(s)
	if n <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max]) + fmt.Sprintf("… [truncated %d chars]", n-max)
}

// truncateTraceback keeps the last frames that fit in max runes: the
// frame that raised is the last one, and a RecursionError's thousands of
// identical frames are the first to go.
func truncateTraceback(tb []string, max int) []string {
	out := make([]string, len(tb))
	total := 0
	for i, frame := range tb {
		out[i] = StripANSI(frame)
		total += utf8.RuneCountInString(out[i])
	}
	if max <= 0 || total <= max {
		return out
	}
	kept, size := len(out), 0
	for kept > 0 && size+utf8.RuneCountInString(out[kept-1]) <= max {
		kept--
		size += utf8.RuneCountInString(out[kept])
	}
	if kept == len(out) { // even the last frame is too big: cut it
		return []string{truncate(out[len(out)-1], max)}
	}
	return append([]string{fmt.Sprintf("… [truncated %d chars]", total-size)}, out[kept:]...)
}

// ansiPattern matches terminal escape sequences: CSI (colours, cursor) and
// OSC (titles, hyperlinks).
var ansiPattern = regexp.MustCompile("\x1b\\[[0-?]*[ -/]*[@-~]|\x1b\\][^\x07\x1b]*(?:\x07|\x1b\\\\)|\x1b[@-_]")

// StripANSI removes terminal escape sequences (IPython colours tracebacks).
func StripANSI(s string) string {
	if !strings.Contains(s, "\x1b") {
		return s
	}
	return ansiPattern.ReplaceAllString(s, "")
}
