package notebook

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestValidateValues(t *testing.T) {
	params := []Parameter{
		{Name: "msg", InferredType: "None", Default: "None"},
		{Name: "a", InferredType: "float", Default: "2.25"},
		{Name: "b", InferredType: "List[str]", Default: "['Hello','World']"},
		{Name: "n", InferredType: "None", Default: "10"},
		{Name: "ratio", InferredType: "None", Default: "0.5"},
		{Name: "name", InferredType: "None", Default: `"world"`},
		{Name: "flag", InferredType: "None", Default: "False"},
		{Name: "opts", InferredType: "None", Default: "{'k': 1}"},
		{Name: "items", InferredType: "None", Default: "(1, 2)"},
		{Name: "expr", InferredType: "None", Default: "a == 3"},
		{Name: "maybe", InferredType: "Optional[int]", Default: "1"},
		{Name: "label", InferredType: "str", Default: "None"},
		{Name: "mode", InferredType: `Literal["fast", "slow"]`, Default: `"fast"`},
		{Name: "path", InferredType: "Path", Default: `Path("x")`},
		{Name: "c", InferredType: "NoneType", Default: "None"},
		{Name: "count", InferredType: "int", Default: "0"},
		{Name: "nested", InferredType: "Union[int, List[int]]", Default: "0"},
		{Name: "température", InferredType: "None", Default: "21.5"},
		{Name: "pipe", InferredType: "int | None", Default: "1"},
	}
	big := strings.Repeat("x", 10<<20)
	tests := []struct {
		name       string
		values     map[string]any
		allowExtra bool
		problems   []string // substrings, one per expected problem, in order
	}{
		{"nothing", nil, false, nil},
		{"None default takes anything", map[string]any{"msg": []any{1, "x"}, "c": 3.5, "expr": "s"}, false, nil},
		{"int into float", map[string]any{"a": float64(3), "ratio": json.Number("1")}, false, nil},
		{"float into float", map[string]any{"a": 3.5, "ratio": 0.25}, false, nil},
		{"integral float into int", map[string]any{"n": 4.0, "count": json.Number("1e3")}, false, nil},
		{"go ints", map[string]any{"n": 4, "count": int64(5), "a": uint8(1)}, false, nil},
		{"str into str", map[string]any{"name": "x", "label": "y", "mode": "slow"}, false, nil},
		{"None into Optional and None default", map[string]any{"maybe": nil, "label": nil, "pipe": nil}, false, nil},
		{"int into union", map[string]any{"pipe": 3.0, "maybe": 2.0}, false, nil},
		{"str into union", map[string]any{"pipe": "x", "maybe": "y"}, false, []string{`"maybe" expects int or None (declared Optional[int])`, `"pipe" expects int or None (declared int | None), got string "x"`}},
		{"list into list", map[string]any{"b": []any{"x"}, "items": []any{1}, "nested": []any{1}}, false, nil},
		{"go slice into list", map[string]any{"b": []string{"x"}}, false, nil},
		{"dict into dict", map[string]any{"opts": map[string]any{"k": 2}}, false, nil},
		{"bool into bool", map[string]any{"flag": true}, false, nil},
		{"unknown annotation", map[string]any{"path": 3}, false, nil},
		{"unicode name and value", map[string]any{"température": 20.0, "name": "héllo ✓ 日本"}, false, nil},
		{"injection-looking value is a string", map[string]any{"name": "x\"; import os; os.system('rm -rf /')  #"}, false, nil},
		{"10 MB value", map[string]any{"name": big}, false, nil},
		{"str into int", map[string]any{"n": "5"}, false, []string{`parameter "n" expects int or None (default 10), got string "5"`}},
		{"str into float", map[string]any{"a": "2.5"}, false, []string{`parameter "a" expects float (declared float), got string "2.5"`}},
		{"str into bool", map[string]any{"flag": "True"}, false, []string{`"flag" expects bool`}},
		{"number into str", map[string]any{"name": 5.0, "label": 1.0}, false, []string{`"label" expects str or None (declared str), got number 1`, `"name" expects str or None (default "world"), got number 5`}},
		{"fraction into int", map[string]any{"n": 2.5, "count": json.Number("2.5")}, false, []string{`"count" expects int (declared int), got number 2.5`, `"n" expects int`}},
		{"bool into int", map[string]any{"n": true}, false, []string{`"n" expects int or None (default 10), got boolean true`}},
		{"bool into float", map[string]any{"ratio": false}, false, []string{`"ratio" expects float`}},
		{"list into scalar", map[string]any{"a": []any{1.0}}, false, []string{`"a" expects float (declared float), got list [1]`}},
		{"dict into list", map[string]any{"b": map[string]any{}}, false, []string{`"b" expects list (declared List[str]), got object {}`}},
		{"None into a type inferred from the default", map[string]any{"n": nil, "ratio": nil, "name": nil, "flag": nil, "opts": nil, "items": nil}, false, nil},
		{"None into an annotation", map[string]any{"count": nil, "a": nil, "b": nil}, false, []string{`"a" expects float (declared float), got null`, `"b" expects list (declared List[str]), got null`, `"count" expects int (declared int), got null`}},
		{"literal kinds", map[string]any{"mode": 1.0}, false, []string{`"mode" expects str`}},
		{"unsupported go type", map[string]any{"n": struct{}{}}, false, []string{`parameter "n": a struct {} cannot be passed`}},
		{"unknown name", map[string]any{"x": 1.0}, false, []string{`unknown parameter "x"; the notebook's parameters are: a, b, c, count, expr, flag, items, label, maybe, mode, msg, n, name, nested, opts, path, pipe, ratio, température`}},
		{"unknown name allowed", map[string]any{"x": 1.0}, true, nil},
		{"injection as a name", map[string]any{"a; import os": 1.0}, true, []string{`"a; import os" is not a valid parameter name`}},
		{"newline in name", map[string]any{"a\nimport os\nb": 1.0}, true, []string{`is not a valid parameter name`}},
		{"keyword name", map[string]any{"class": 1.0, "None": 1.0}, true, []string{`"None" is a Python keyword`, `"class" is a Python keyword`}},
		{"empty and digit names", map[string]any{"": 1.0, "1x": 1.0, "x y": 1.0}, true, []string{`"" is not`, `"1x" is not`, `"x y" is not`}},
		{"every problem at once", map[string]any{"n": "5", "zz": 1.0, "a b": 1.0, "flag": 1.0}, false, []string{`"a b" is not`, `"flag" expects bool`, `"n" expects int`, `unknown parameter "zz"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateValues(params, tt.values, tt.allowExtra)
			if len(tt.problems) == 0 {
				if err != nil {
					t.Fatalf("ValidateValues = %v, want nil", err)
				}
				return
			}
			var ve *ValuesError
			if !errors.As(err, &ve) || !errors.Is(err, ErrInvalidValues) {
				t.Fatalf("ValidateValues = %v, want a *ValuesError", err)
			}
			if len(ve.Problems) != len(tt.problems) {
				t.Fatalf("problems = %q, want %d", ve.Problems, len(tt.problems))
			}
			for i, want := range tt.problems {
				if !strings.Contains(ve.Problems[i], want) {
					t.Errorf("problem %d = %q, want it to contain %q", i, ve.Problems[i], want)
				}
			}
		})
	}
}

func TestValidateValuesNoParameters(t *testing.T) {
	err := ValidateValues(nil, map[string]any{"x": 1.0}, false)
	if err == nil || err.Error() != `unknown parameter "x"; the notebook declares no parameters` {
		t.Errorf("err = %v", err)
	}
}

func TestCheckValueSizes(t *testing.T) {
	if err := CheckValueSizes(map[string]any{"a": strings.Repeat("x", MaxParameterBytes-2)}, 0); err != nil {
		t.Errorf("value at the limit: %v", err)
	}
	err := CheckValueSizes(map[string]any{"a": strings.Repeat("x", MaxParameterBytes), "b": 1.0}, 0)
	if !errors.Is(err, ErrParameterTooLarge) || !strings.Contains(err.Error(), `parameter "a" is 1048578 bytes as JSON; the limit is 1048576`) {
		t.Errorf("err = %v", err)
	}
	err = CheckValueSizes(map[string]any{"a": []any{"xxxxxxxx"}}, 8)
	if !errors.Is(err, ErrParameterTooLarge) {
		t.Errorf("custom limit: err = %v", err)
	}
	err = CheckValueSizes(map[string]any{"n": math.NaN()}, 0)
	if !errors.Is(err, ErrInvalidValues) || errors.Is(err, ErrParameterTooLarge) {
		t.Errorf("NaN: err = %v", err)
	}
}

// TestCheckValuesNoTypeCheck: with type checks off, a type problem is a
// warning that names what was not checked; names are still checked.
func TestCheckValuesNoTypeCheck(t *testing.T) {
	params := []Parameter{
		{Name: "count", InferredType: "int", Default: "0"},
		{Name: "n", InferredType: "None", Default: "10"},
	}
	values := map[string]any{"count": "five", "n": nil}
	warnings, err := CheckValues(params, values, ValuesPolicy{NoTypeCheck: true})
	if err != nil {
		t.Fatalf("CheckValues = %v, want only warnings", err)
	}
	want := []string{`parameter "count" expects int (declared int), got string "five"; passed unchecked (type checks are off)`}
	if !reflect.DeepEqual(warnings, want) {
		t.Errorf("warnings = %q, want %q", warnings, want)
	}
	if w, err := CheckValues(params, values, ValuesPolicy{}); err == nil || len(w) != 0 || !strings.Contains(err.Error(), `"count" expects int`) {
		t.Errorf("with type checks: warnings %q, err %v", w, err)
	}
	_, err = CheckValues(params, map[string]any{"a b": 1, "zz": 1}, ValuesPolicy{NoTypeCheck: true})
	var ve *ValuesError
	if !errors.As(err, &ve) || len(ve.Problems) != 2 {
		t.Errorf("bad and unknown names with type checks off: %v, want both refused", err)
	}
}

func TestWantsFloat(t *testing.T) {
	for _, tt := range []struct {
		p    Parameter
		want bool
	}{
		{Parameter{Name: "lr", InferredType: "None", Default: "0.1"}, true},
		{Parameter{Name: "lr", InferredType: "None", Default: "1e-3"}, true},
		{Parameter{Name: "lr", InferredType: "float", Default: "1"}, true},
		{Parameter{Name: "lr", InferredType: "Optional[float]", Default: "None"}, true},
		{Parameter{Name: "n", InferredType: "None", Default: "1"}, false},
		{Parameter{Name: "n", InferredType: "Union[int, float]", Default: "1"}, false},
		{Parameter{Name: "x", InferredType: "None", Default: "None"}, false},
		{Parameter{Name: "x", InferredType: "complex", Default: "1j"}, false},
	} {
		if got := tt.p.WantsFloat(); got != tt.want {
			t.Errorf("%+v: WantsFloat = %v, want %v", tt.p, got, tt.want)
		}
	}
}
