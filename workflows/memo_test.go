package workflows

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParameterSummary(t *testing.T) {
	for _, c := range []struct{ raw, want string }{
		{``, ``},
		{`null`, ``},
		{`{}`, ``},
		{`{"b": "x y", "a": 1, "c": [1, 2]}`, `a=1, b="x y", c=[1,2]`},
		{`[1, 2]`, `[1, 2]`},
	} {
		if got := ParameterSummary(json.RawMessage(c.raw)); got != c.want {
			t.Errorf("ParameterSummary(%s) = %q, want %q", c.raw, got, c.want)
		}
	}
	long := `{"a": "` + strings.Repeat("é", 300) + `", "b": 2}`
	got := ParameterSummary(json.RawMessage(long))
	if len(got) > MaxParameterSummary || !strings.HasSuffix(got, "…") || !utf8.ValidString(got) || !strings.HasPrefix(got, `a="éé`) {
		t.Errorf("a long summary is not cut to %d bytes of valid UTF-8 with an ellipsis: %d bytes %q", MaxParameterSummary, len(got), got)
	}
}

func TestRunMemo(t *testing.T) {
	m := RunMemo(RunInput{Notebook: "/n.ipynb", Output: "/o.ipynb", Parameters: json.RawMessage(`{"n": 3}`), Labels: []string{"x"}, BatchID: "batch-1"})
	want := map[string]any{MemoNotebook: "/n.ipynb", MemoOutput: "/o.ipynb", MemoParameters: "n=3", MemoLabels: []string{"x"}, MemoBatch: "batch-1"}
	if len(m) != len(want) {
		t.Fatalf("RunMemo = %v, want %v", m, want)
	}
	for k, v := range want {
		if got, _ := json.Marshal(m[k]); string(got) != mustJSON(v) {
			t.Errorf("memo %s = %s, want %s", k, got, mustJSON(v))
		}
	}
	if m := RunMemo(RunInput{Output: "/o.ipynb"}); len(m) != 2 {
		t.Errorf("a run without parameters, labels or batch has memo %v: want output and notebook only", m)
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }
