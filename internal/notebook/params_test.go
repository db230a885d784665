package notebook

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseParameters(t *testing.T) {
	p := func(name, typ, def, help string) Parameter {
		return Parameter{Name: name, InferredType: typ, Default: def, Help: help}
	}
	tests := []struct {
		name string
		src  string
		want []Parameter
	}{
		{"empty", "", nil},
		{"simple", "x = 1\ny='a'", []Parameter{p("x", "None", "1", ""), p("y", "None", "'a'", "")}},
		{"annotation", "n: int = 5", []Parameter{p("n", "int", "5", "")}},
		{"no spaces", "n:int=5", []Parameter{p("n", "int", "5", "")}},
		{"generic annotation", "m: Dict[str, int] = {}", []Parameter{p("m", "Dict[str, int]", "{}", "")}},
		{"union annotation", "m: int | None = None", []Parameter{p("m", "int | None", "None", "")}},
		{"quoted annotation", "c: 'Optional[str]' = None", []Parameter{p("c", "Optional[str]", "None", "")}},
		{"trailing help", "lr = 0.1  # learning rate", []Parameter{p("lr", "None", "0.1", "learning rate")}},
		{"type comment", "ids = []  # type: List[int]", []Parameter{p("ids", "List[int]", "[]", "")}},
		{"type comment and help", "ids = [] #type:List[int]   the ids", []Parameter{p("ids", "List[int]", "[]", "the ids")}},
		{"annotation beats type comment", "n: int = 1 # type: float", []Parameter{p("n", "int", "1", "")}},
		{"comment above", "# how many\nn = 1", []Parameter{p("n", "None", "1", "how many")}},
		{"comment block above", "# how many\n# at most\nn = 1", []Parameter{p("n", "None", "1", "how many at most")}},
		{"trailing beats above", "# above\nn = 1 # trailing", []Parameter{p("n", "None", "1", "trailing")}},
		{"blank line ends help", "# section\n\nn = 1", []Parameter{p("n", "None", "1", "")}},
		{"parameters header", "# Parameters\nvar = 1", []Parameter{p("var", "None", "1", "")}},
		{"help not carried", "# first\na = 1\nb = 2", []Parameter{p("a", "None", "1", "first"), p("b", "None", "2", "")}},
		{"hash in string", `url = "http://x/#frag"  # where`, []Parameter{p("url", "None", `"http://x/#frag"`, "where")}},
		{"equals in string", `q = "a=b"`, []Parameter{p("q", "None", `"a=b"`, "")}},
		{"comparison value", "d = a == 3", []Parameter{p("d", "None", "a == 3", "")}},
		{"keyword arguments", "cfg = dict(a=1, b=2)", []Parameter{p("cfg", "None", "dict(a=1, b=2)", "")}},
		{"multi-line dict", "opts = {\n    'a': 1,  # one\n    'b': 2,\n}  # options", []Parameter{p("opts", "None", "{'a': 1,'b': 2,}", "options")}},
		{"multi-line call", "x = f(a,\n      b)\ny = 2", []Parameter{p("x", "None", "f(a,b)", ""), p("y", "None", "2", "")}},
		{"backslash continuation", "total = 1 + \\\n    2", []Parameter{p("total", "None", "1 + 2", "")}},
		{"triple-quoted string", "sql = \"\"\"\nselect 1 -- a # b\n\"\"\"  # query", []Parameter{p("sql", "None", "\"\"\"\nselect 1 -- a # b\n\"\"\"", "query")}},
		{"semicolons", "a = 1; b = 2  # bee", []Parameter{p("a", "None", "1", ""), p("b", "None", "2", "bee")}},
		{"duplicate keeps last", "a = 1\nb = 2\na = 3", []Parameter{p("a", "None", "3", ""), p("b", "None", "2", "")}},
		{"unicode", "température = 21.5  # °C\nnom = 'café'", []Parameter{p("température", "None", "21.5", "°C"), p("nom", "None", "'café'", "")}},
		{"statements ignored", "import os\nfrom x import y\nprint(1)\ndef f(a=1):\n    return a\nn = 2", []Parameter{p("n", "None", "2", "")}},
		{"augmented ignored", "n = 1\nn += 1\nm -= 2", []Parameter{p("n", "None", "1", "")}},
		{"walrus ignored", "(y := 2)", nil},
		{"broken lines skipped", "= 2\na.b = 1\nx[0] = 1\nu, v = 1, 2\nk = j = 1\nok = True", []Parameter{p("ok", "None", "True", "")}},
		{"keyword target skipped", "None = 1\nclass = 2", nil},
		{"no value skipped", "x =\ny = 1", []Parameter{p("y", "None", "1", "")}},
		{"crlf", "a = 1 # one\r\nb = 2\r\n", []Parameter{p("a", "None", "1", "one"), p("b", "None", "2", "")}},
		{"unterminated string", "s = 'abc\nt = 1", []Parameter{p("s", "None", "'abc", ""), p("t", "None", "1", "")}},
		{"unclosed bracket", "x = [1,\ny = 2\n# zed\nz = (3", []Parameter{p("x", "None", "[1,", ""), p("y", "None", "2", ""), p("z", "None", "(3", "zed")}},
		{"unclosed triple quote", "s = \"\"\"abc\nt = 1", []Parameter{p("s", "None", "\"\"\"abc", ""), p("t", "None", "1", "")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ParseParameters(tt.src)
			if len(got) == 0 && len(tt.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseParameters(%q):\n got %+v\nwant %+v", tt.src, got, tt.want)
			}
		})
	}
}

func TestParseParametersWarnings(t *testing.T) {
	_, warnings := parseParameters("a = 1\n= 2\nk = j = 1\nimport os\nx = [1,\n\n= 3")
	if len(warnings) != 3 || !strings.Contains(warnings[0], "line 2") || !strings.Contains(warnings[1], "line 3") || !strings.Contains(warnings[2], "line 7") {
		t.Errorf("warnings = %q, want lines 2, 3 and 7 reported", warnings)
	}
}

func TestParametersTestdata(t *testing.T) {
	tests := []struct {
		file   string
		cell   int
		params []Parameter
	}{
		{"greeting.ipynb", 0, []Parameter{{Name: "greeting", InferredType: "None", Default: "None"}}},
		{"untagged.ipynb", -1, nil},
		{"r_kernel.ipynb", 0, nil},
		{"sum.ipynb", 0, []Parameter{{Name: "left", InferredType: "None", Default: "1"}, {Name: "right", InferredType: "None", Default: "1"}}},
		{"unparsable_parameters.ipynb", 0, []Parameter{{Name: "name", InferredType: "None", Default: "'x'"}, {Name: "count", InferredType: "float", Default: "1.5", Help: "how many"}}},
	}
	for _, tt := range tests {
		nb, err := Load(testdataFile(t, tt.file))
		if err != nil {
			t.Fatal(err)
		}
		cell, params, found := nb.Parameters()
		if cell != tt.cell || found != (tt.cell >= 0) || !reflect.DeepEqual(params, tt.params) {
			t.Errorf("%s: Parameters() = %d, %+v, %v; want %d, %+v", tt.file, cell, params, found, tt.cell, tt.params)
		}
	}
}
