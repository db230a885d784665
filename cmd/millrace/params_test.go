package main

import (
	"encoding/json"
	"millrace/internal/jobs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// encode shows a value as the job service will pass it to the kernel.
func encode(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		return "error: " + err.Error()
	}
	return string(b)
}

func TestTypedParametersFollowPapermill(t *testing.T) {
	p := parameterFlags{typed: stringList{
		"i=5", "neg=-3", "f=2.5", "whole=2.0", "exp=1e3", "big=123456789012345678901234567890",
		"t=True", "fa=False", "none=None", "lower=true", "s=hello", "eq=a=b", "empty=", "zero=007",
	}, raw: stringList{"raw=5", "s=overridden by -p"}}
	got, err := p.values()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"i": "5", "neg": "-3", "f": "2.5", "whole": "2.0", "exp": "1000.0", "big": "123456789012345678901234567890",
		"t": "true", "fa": "false", "none": "null", "lower": `"true"`, "s": `"hello"`, "eq": `"a=b"`, "empty": `""`,
		"zero": "7", "raw": `"5"`,
	}
	for name, w := range want {
		if g := encode(t, got[name]); g != w {
			t.Errorf("-p %s: got %s, want %s", name, g, w)
		}
	}
	if _, err := (&parameterFlags{typed: stringList{"noequals"}}).values(); err == nil {
		t.Error("-p without = was accepted")
	}
}

func TestParameterFilesAreTypedAsPapermillReadsThem(t *testing.T) {
	dir := t.TempDir()
	yml := filepath.Join(dir, "p.yaml")
	// PyYAML's safe_load (YAML 1.1), as papermill reads -f files.
	src := `yes_: yes
off_: Off
tilde: ~
empty:
int_: 42
under: 1_000
octal: 010
hex: 0x1F
sexa: 1:30
float_: 2.5
whole: 3.0
exp_no_dot: 1e3
exp_signed: 1.0e+3
inf: .inf
quoted: "5"
date: 2024-01-02
list: [1, two, 2.5, null]
nested: {a: {b: [true]}}
str_tag: !!str 7
alias: &x [1]
again: *x
`
	if err := os.WriteFile(yml, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := jobs.LoadParameterFile(yml)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"yes_": "true", "off_": "false", "tilde": "null", "empty": "null", "int_": "42", "under": "1000",
		"octal": "8", "hex": "31", "sexa": "90", "float_": "2.5", "whole": "3.0", "exp_no_dot": `"1e3"`,
		"exp_signed": "1000.0", "quoted": `"5"`, "date": `"2024-01-02"`, "list": `[1,"two",2.5,null]`,
		"nested": `{"a":{"b":[true]}}`, "str_tag": `"7"`, "alias": "[1]", "again": "[1]",
	}
	for name, w := range want {
		if g := encode(t, got[name]); g != w {
			t.Errorf("%s: got %s, want %s", name, g, w)
		}
	}
	if _, ok := got["inf"].(float64); !ok {
		t.Errorf("inf: got %#v, want +Inf (which the job service refuses: JSON cannot carry it)", got["inf"])
	}

	js := filepath.Join(dir, "p.json")
	if err := os.WriteFile(js, []byte(`{"a": 1, "b": 2.0, "c": 1e3, "d": [true, null], "e": "x"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err = jobs.LoadParameterFile(js)
	if err != nil {
		t.Fatal(err)
	}
	if g := encode(t, got); g != `{"a":1,"b":2.0,"c":1e3,"d":[true,null],"e":"x"}` {
		t.Errorf("JSON file: %s", g)
	}

	for name, text := range map[string]string{"list.yaml": "[1, 2]", "bad.yaml": "a: [", "bad.json": "{"} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := jobs.LoadParameterFile(path); err == nil {
			t.Errorf("%s (%q) was accepted", name, text)
		}
	}
}

func TestFlagsAndArgumentsMayComeInAnyOrder(t *testing.T) {
	c := newCLI(&syncBuffer{}, &syncBuffer{}, nil)
	for _, args := range [][]string{
		{"nb.ipynb", "-p", "a=1", "--detach"},
		{"-p", "a=1", "nb.ipynb", "--detach"},
		{"--detach", "-p", "a=1", "--", "nb.ipynb"},
	} {
		f := newFlags(c, runCommand())
		var p stringList
		f.Var(&p, "p", "")
		detach := f.Bool("detach", false, "")
		pos, err := f.parse(args, 1, 1)
		if err != nil || len(pos) != 1 || pos[0] != "nb.ipynb" || !*detach || len(p) != 1 {
			t.Errorf("%q: pos %q, detach %v, -p %q, err %v", args, pos, *detach, p, err)
		}
	}
	f := newFlags(c, runCommand())
	if pos, err := f.parse([]string{"--", "-odd.ipynb"}, 1, 1); err != nil || pos[0] != "-odd.ipynb" {
		t.Errorf("after --: %q %v", pos, err)
	}
}

func TestPapermillTwoWordParameters(t *testing.T) {
	got := papermillPairs([]string{"nb.ipynb", "-p", "epochs", "5", "-p", "lr=0.1", "-r", "name", "x y", "-p", "n", "-3", "-p", "bad", "--detach", "--", "-p", "a", "b"})
	want := []string{"nb.ipynb", "-p", "epochs=5", "-p", "lr=0.1", "-r", "name=x y", "-p", "n=-3", "-p", "bad", "--detach", "--", "-p", "a", "b"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q, want %q", got, want)
	}
}
