package notebook

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
)

// This file types values and parameters coarsely, as Python kinds (str,
// int, float...), which is all ValidateValues needs to catch a caller
// passing "5" where the notebook computes with 5.

// kinds is a set of Python value kinds, as a bit mask.
type kinds uint8

const (
	kStr kinds = 1 << iota
	kInt
	kFloat
	kBool
	kList
	kDict
	kNone
	kAny kinds = 1<<iota - 1
)

var kindNames = []struct {
	k    kinds
	name string
}{{kStr, "str"}, {kInt, "int"}, {kFloat, "float"}, {kBool, "bool"}, {kList, "list"}, {kDict, "dict"}, {kNone, "None"}}

func (k kinds) String() string {
	var names []string
	for _, kn := range kindNames {
		if k&kn.k != 0 {
			names = append(names, kn.name)
		}
	}
	return strings.Join(names, " or ")
}

// expectedKinds derives what a parameter accepts from its declared type,
// else from its default, and says which one decided.
func expectedKinds(p Parameter) (kinds, string) {
	if p.InferredType != "" && p.InferredType != unknownType {
		// A bare None/NoneType annotation only restates a None default:
		// papermill writes it for `c: "NoneType" = None`. It admits anything.
		if k := annotationKinds(p.InferredType); k != kAny && k != kNone {
			if strings.TrimSpace(p.Default) == "None" {
				k |= kNone // `x: str = None` means None is a valid value
			}
			return k, "declared " + p.InferredType
		}
		return kAny, ""
	}
	// A default only shows how the notebook is usually run: None (no
	// limit, no seed) is as valid as the default itself.
	k := literalKinds(p.Default)
	if k != kAny {
		k |= kNone
	}
	return k, "default " + abbreviate(p.Default, 40)
}

// annotationKinds maps a type annotation to the kinds it admits. Anything
// it does not recognise admits everything: a wrong refusal is worse than a
// missed one, since the notebook still runs its own checks.
func annotationKinds(t string) kinds {
	t = strings.TrimSpace(unquote(t))
	for _, prefix := range []string{"typing.", "t.", "collections.abc.", "collections."} {
		t = strings.TrimPrefix(t, prefix)
	}
	if t == "" {
		return kAny
	}
	if parts := splitTopLevel(t, '|'); len(parts) > 1 {
		return unionKinds(parts, annotationKinds)
	}
	base, args := t, ""
	if i := strings.IndexByte(t, '['); i > 0 && strings.HasSuffix(t, "]") {
		base, args = strings.TrimSpace(t[:i]), t[i+1:len(t)-1]
	}
	switch base {
	case "str":
		return kStr
	case "int":
		return kInt
	case "float":
		return kFloat // an integral number is a float too (valueKinds)
	case "complex":
		return kFloat | kInt
	case "bool":
		return kBool
	case "list", "List", "tuple", "Tuple", "set", "Set", "frozenset", "FrozenSet",
		"Sequence", "MutableSequence", "Iterable", "Collection":
		return kList
	case "dict", "Dict", "Mapping", "MutableMapping", "OrderedDict", "defaultdict":
		return kDict
	case "None", "NoneType":
		return kNone
	case "Optional":
		return annotationKinds(args) | kNone
	case "Union":
		return unionKinds(splitTopLevel(args, ','), annotationKinds)
	case "Literal":
		return unionKinds(splitTopLevel(args, ','), literalKinds)
	}
	return kAny // Any, object, classes: not checkable
}

func unionKinds(parts []string, of func(string) kinds) kinds {
	var k kinds
	for _, part := range parts {
		k |= of(strings.TrimSpace(part))
	}
	return k
}

// literalKinds maps a default's source to its kind when it is a literal
// (or an obvious constructor call); any other expression admits anything.
func literalKinds(src string) kinds {
	s := strings.TrimSpace(src)
	switch {
	case s == "None" || s == "":
		return kAny
	case s == "True" || s == "False":
		return kBool
	case isIntLiteral(s):
		return kInt
	case isFloatLiteral(s):
		return kFloat
	case isStringLiteral(s):
		return kStr
	}
	if end := matchingClose(s); end == len(s)-1 {
		inner := strings.TrimSpace(s[1:end])
		switch s[0] {
		case '[':
			return kList
		case '{':
			if inner == "" || hasTopLevel(inner, ':') {
				return kDict
			}
			return kList // a set: a JSON list is the closest value
		case '(':
			if inner == "" || hasTopLevel(inner, ',') {
				return kList
			}
			return literalKinds(inner)
		}
	}
	if name, _, ok := strings.Cut(s, "("); ok && strings.HasSuffix(s, ")") {
		switch name {
		case "str":
			return kStr
		case "int":
			return kInt
		case "float":
			return kFloat
		case "bool":
			return kBool
		case "list", "tuple", "set":
			return kList
		case "dict":
			return kDict
		}
	}
	return kAny
}

func hasTopLevel(s string, c byte) bool {
	found := false
	topLevel(s, func(i int) bool {
		found = s[i] == c
		return !found
	})
	return found
}

func isIntLiteral(s string) bool {
	s = strings.TrimLeft(s, "+-")
	if len(s) > 2 && s[0] == '0' && strings.ContainsRune("xXoObB", rune(s[1])) {
		digits := map[byte]string{'x': "0123456789abcdefABCDEF_", 'o': "01234567_", 'b': "01_"}[s[1]|0x20]
		return strings.Trim(s[2:], digits) == ""
	}
	return s != "" && s[0] >= '0' && s[0] <= '9' && strings.Trim(s, "0123456789_") == ""
}

func isFloatLiteral(s string) bool {
	s = strings.TrimLeft(s, "+-")
	mant, exp, hasExp := strings.Cut(strings.ToLower(s), "e")
	if hasExp && strings.Trim(strings.TrimLeft(exp, "+-"), "0123456789_") != "" || hasExp && strings.TrimLeft(exp, "+-") == "" {
		return false
	}
	whole, frac, hasDot := strings.Cut(mant, ".")
	if !hasDot && !hasExp {
		return false
	}
	digits := whole + frac
	return digits != "" && strings.Trim(digits, "0123456789_") == ""
}

// isStringLiteral accepts str literals, with prefixes and implicit
// concatenation ("a" 'b'); bytes literals are not str.
func isStringLiteral(s string) bool {
	prefixEnd := strings.IndexAny(s, `"'`)
	if prefixEnd < 0 || prefixEnd > 2 {
		return false
	}
	prefix := strings.ToLower(s[:prefixEnd])
	if strings.Trim(prefix, "rfu") != "" {
		return false
	}
	last := s[len(s)-1]
	return last == '"' || last == '\''
}

// valueKinds classifies a caller's value. A JSON number with an integral
// value is both int and float.
func valueKinds(v any) (kinds, error) {
	switch x := v.(type) {
	case nil:
		return kNone, nil
	case string:
		return kStr, nil
	case bool:
		return kBool, nil
	case float64:
		return numberKinds(x), nil
	case float32:
		return numberKinds(float64(x)), nil
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return kInt | kFloat, nil
	case json.Number:
		if _, err := x.Int64(); err == nil {
			return kInt | kFloat, nil
		}
		f, err := x.Float64()
		if err != nil && !math.IsInf(f, 0) {
			return 0, fmt.Errorf("%q is not a number", string(x))
		}
		return numberKinds(f), nil
	case []any:
		return kList, nil
	case map[string]any:
		return kDict, nil
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Slice, reflect.Array:
		return kList, nil
	case reflect.Map:
		if rv.Type().Key().Kind() == reflect.String {
			return kDict, nil
		}
	}
	return 0, fmt.Errorf("a %T cannot be passed to a notebook (use strings, numbers, booleans, null, lists and objects)", v)
}

func numberKinds(f float64) kinds {
	if f == math.Trunc(f) && !math.IsInf(f, 0) {
		return kInt | kFloat
	}
	return kFloat
}

func describeValue(v any, k kinds) string {
	var what string
	switch {
	case k == kNone:
		return "null"
	case k == kStr:
		what = "string"
	case k == kBool:
		what = "boolean"
	case k&kFloat != 0:
		what = "number"
	case k == kList:
		what = "list"
	case k == kDict:
		what = "object"
	}
	enc, err := json.Marshal(v)
	if err != nil {
		return what
	}
	return what + " " + abbreviate(string(enc), 40)
}
