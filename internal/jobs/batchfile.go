package jobs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// LoadBatchFile reads a batch file (YAML, or JSON, which is YAML too).
// Unknown keys are errors, so a typo (dependson) does not silently drop a
// dependency. Relative notebook, output and working-directory paths are
// taken from the file's folder.
func LoadBatchFile(path string) (BatchRequest, error) {
	var req BatchRequest
	data, err := os.ReadFile(path)
	if err != nil {
		return req, userErrorf("batch file: %v", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&req); err != nil {
		return req, userErrorf("batch file %s: %v", path, err)
	}
	// Parameters again, from the YAML tree: decoded into Go values, 2.0
	// would become 2 and a float parameter an int.
	var doc struct {
		Nodes []struct {
			Parameters yaml.Node `yaml:"parameters"`
		} `yaml:"nodes"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return req, userErrorf("batch file %s: %v", path, err)
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return req, err
	}
	for i := range req.Nodes {
		n := &req.Nodes[i]
		n.Path, n.OutputPath, n.Cwd = under(dir, n.Path), under(dir, n.OutputPath), under(dir, n.Cwd)
		if i < len(doc.Nodes) && doc.Nodes[i].Parameters.Kind != 0 {
			v, err := yamlValue(&doc.Nodes[i].Parameters)
			if err != nil {
				return req, userErrorf("batch file %s, node %s: %v", path, n.ID, err)
			}
			if m, ok := v.(map[string]any); ok {
				n.Parameters = m
			}
		}
	}
	return req, nil
}

func under(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// yamlValue converts a YAML value as a JSON client would send it: numbers
// as json.Number holding the literal, so 2 and 2.0 stay apart.
func yamlValue(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return yamlValue(n.Content[0])
	case yaml.AliasNode:
		return yamlValue(n.Alias)
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			v, err := yamlValue(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			out[n.Content[i].Value] = v
		}
		return out, nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := yamlValue(c)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	switch n.ShortTag() {
	case "!!int", "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			return nil, fmt.Errorf("line %d: %v", n.Line, err)
		}
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("line %d: %s is not a number JSON can carry", n.Line, n.Value)
		}
		lit := strings.ReplaceAll(n.Value, "_", "")
		if _, err := strconv.ParseFloat(lit, 64); err != nil || strings.HasPrefix(lit, "0x") || strings.HasPrefix(lit, "0o") {
			lit = strconv.FormatFloat(f, 'g', -1, 64)
		}
		return json.Number(strings.TrimPrefix(lit, "+")), nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, fmt.Errorf("line %d: %v", n.Line, err)
	}
	return v, nil
}
