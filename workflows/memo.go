package workflows

import (
	"encoding/json"
	"sort"
	"strings"
	"unicode/utf8"
)

// A run's memo: what a reader of the workflow (the Temporal Web UI, a
// `temporal workflow describe`) sees of it without decoding its input, and
// what status and list answer from. Both ways a run starts (a single run
// and a batch's child) take it from RunMemo, so the two read alike. Memo
// values pass through the payload codec, as inputs do.
const (
	MemoOutput     = "output"     // the output notebook's path
	MemoNotebook   = "notebook"   // the input notebook's path
	MemoParameters = "parameters" // ParameterSummary of the run's parameters
	MemoLabels     = "labels"     // the run's labels, when it has any
	MemoBatch      = "batch"      // the id of the batch the run belongs to
)

// MaxParameterSummary bounds the parameter summary in bytes: a memo rides
// along with every list answer, and the input holds the parameters in full.
const MaxParameterSummary = 200

// RunMemo is the memo of a run started with in.
func RunMemo(in RunInput) map[string]any {
	m := map[string]any{MemoOutput: in.Output, MemoNotebook: in.Notebook}
	if s := ParameterSummary(in.Parameters); s != "" {
		m[MemoParameters] = s
	}
	if len(in.Labels) > 0 {
		m[MemoLabels] = in.Labels
	}
	if in.BatchID != "" {
		m[MemoBatch] = in.BatchID
	}
	return m
}

// ParameterSummary renders a JSON object of parameters as "a=1, b=\"x\"",
// names sorted, cut to MaxParameterSummary bytes with an ellipsis. It is ""
// for no parameters, and the raw text (cut) for anything but an object.
func ParameterSummary(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return cut(string(raw))
	}
	names := make([]string, 0, len(obj))
	for k := range obj {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for i, k := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(compactJSON(obj[k]))
		if b.Len() > MaxParameterSummary {
			break
		}
	}
	return cut(b.String())
}

// compactJSON drops a value's insignificant white space: marshalling a
// RawMessage compacts it.
func compactJSON(v json.RawMessage) string {
	b, err := json.Marshal(v)
	if err != nil {
		return string(v)
	}
	return string(b)
}

// cut shortens s to MaxParameterSummary bytes, on a rune boundary.
func cut(s string) string {
	if len(s) <= MaxParameterSummary {
		return s
	}
	end := MaxParameterSummary - len("…")
	for end > 0 && !utf8.RuneStart(s[end]) {
		end--
	}
	return s[:end] + "…"
}
