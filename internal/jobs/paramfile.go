package jobs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// FloatValue writes a whole float (2.0) as a JSON number with a decimal
// point, so it reaches the kernel as a float, as `papermill -p x 2.0`
// makes it. NaN and infinities stay float64: JSON cannot carry them and the
// job service says so.
func FloatValue(v any) any {
	f, ok := v.(float64)
	if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
		return v
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return json.Number(s)
}

// LoadParameterFile reads a parameters file (papermill's -f): JSON when it
// is named .json, YAML otherwise. YAML scalars are typed as papermill's YAML loader (PyYAML's
// safe_load, YAML 1.1) types them: yes/no/on/off are booleans, 1e3 is a
// string but 1.0e+3 a float, 0o... and 010 octal, dates stay text.
func LoadParameterFile(path string) (map[string]any, error) {
	data, err := readInputFile(path)
	if err != nil {
		return nil, fmt.Errorf("-f: %v", err)
	}
	if strings.EqualFold(filepath.Ext(path), ".json") {
		if err := checkJSONDepth(data); err != nil {
			return nil, fmt.Errorf("-f %s: %v", path, err)
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("-f %s: not a JSON object: %v", path, err)
		}
		return m, nil
	}
	doc, err := parseYAML(data)
	if err != nil {
		return nil, fmt.Errorf("-f %s: %v", path, err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return map[string]any{}, nil // an empty file
	}
	v, err := YAMLValue(doc.Content[0])
	if err != nil {
		return nil, fmt.Errorf("-f %s: %v", path, err)
	}
	m, ok := v.(map[string]any)
	if v == nil {
		return map[string]any{}, nil
	} else if !ok {
		return nil, fmt.Errorf("-f %s: the file must hold a mapping of parameter names to values", path)
	}
	return m, nil
}

// YAMLValue converts a YAML value to what a JSON client would send,
// typing plain scalars as papermill's YAML loader does. It expands
// aliases: give it only a tree parseYAML has checked.
func YAMLValue(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.AliasNode:
		return YAMLValue(n.Alias)
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return YAMLValue(n.Content[0])
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := YAMLValue(c)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: keys must be plain names, not lists or mappings", k.Line)
			}
			val, err := YAMLValue(v)
			if err != nil {
				return nil, err
			}
			out[k.Value] = val
		}
		return out, nil
	case yaml.ScalarNode:
		return yamlScalar(n)
	}
	return nil, fmt.Errorf("line %d: unsupported YAML node", n.Line)
}

// PyYAML's implicit resolvers (resolver.py) for the types it gives plain
// scalars.
var (
	yamlBool  = regexp.MustCompile(`^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$`)
	yamlNull  = regexp.MustCompile(`^(?:~|null|Null|NULL|)$`)
	yamlInt   = regexp.MustCompile(`^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$`)
	yamlFloat = regexp.MustCompile(`^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$`)
)

func yamlScalar(n *yaml.Node) (any, error) {
	s := n.Value
	if n.Style&yaml.TaggedStyle != 0 {
		// An explicit tag: !!str "5", !!float 2...
		switch {
		case n.Tag == "!!str":
			return s, nil
		case n.Tag == "!!null":
			return nil, nil
		case n.Tag == "!!bool" && yamlBool.MatchString(s):
			return yamlBoolValue(s), nil
		case n.Tag == "!!int" && yamlInt.MatchString(s):
			return yamlIntValue(s), nil
		case n.Tag == "!!float":
			if f, err := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64); err == nil {
				return FloatValue(f), nil
			}
			if yamlFloat.MatchString(s) {
				return yamlFloatValue(s), nil
			}
		}
		return nil, fmt.Errorf("line %d: %s %q is not a value millrace can pass on", n.Line, n.Tag, s)
	}
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		return s, nil
	}
	switch {
	case yamlNull.MatchString(s):
		return nil, nil
	case yamlBool.MatchString(s):
		return yamlBoolValue(s), nil
	case yamlInt.MatchString(s):
		return yamlIntValue(s), nil
	case yamlFloat.MatchString(s):
		return yamlFloatValue(s), nil
	}
	return s, nil // timestamps too: papermill passes them on as text
}

func yamlBoolValue(s string) bool {
	switch strings.ToLower(s) {
	case "yes", "true", "on":
		return true
	}
	return false
}

func yamlIntValue(s string) any {
	s = strings.ReplaceAll(s, "_", "")
	sign := ""
	if s[0] == '-' || s[0] == '+' {
		if s[0] == '-' {
			sign = "-"
		}
		s = s[1:]
	}
	n := new(big.Int)
	switch {
	case s == "0":
	case strings.HasPrefix(s, "0b"):
		n.SetString(s[2:], 2)
	case strings.HasPrefix(s, "0x"):
		n.SetString(s[2:], 16)
	case strings.HasPrefix(s, "0"):
		n.SetString(s[1:], 8)
	case strings.Contains(s, ":"):
		for _, part := range strings.Split(s, ":") {
			d, _ := strconv.Atoi(part)
			n.Mul(n, big.NewInt(60)).Add(n, big.NewInt(int64(d)))
		}
	default:
		n.SetString(s, 10)
	}
	if sign == "-" {
		n.Neg(n)
	}
	if n.IsInt64() {
		return n.Int64()
	}
	return json.Number(n.String())
}

func yamlFloatValue(s string) any {
	s = strings.ToLower(strings.ReplaceAll(s, "_", ""))
	switch strings.TrimLeft(s, "+-") {
	case ".inf":
		if strings.HasPrefix(s, "-") {
			return math.Inf(-1)
		}
		return math.Inf(1)
	case ".nan":
		return math.NaN()
	}
	if strings.Contains(s, ":") {
		neg := strings.HasPrefix(s, "-")
		var f float64
		for _, part := range strings.Split(strings.TrimLeft(s, "+-"), ":") {
			d, _ := strconv.ParseFloat(part, 64)
			f = f*60 + d
		}
		if neg {
			f = -f
		}
		return FloatValue(f)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return s
	}
	return FloatValue(f)
}
