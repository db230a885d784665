package jobs

import (
	"bytes"
	"path/filepath"

	"gopkg.in/yaml.v3"
)

// LoadBatchFile reads a batch file (YAML, or JSON, which is YAML too).
// Unknown keys are errors, so a typo (dependson) does not silently drop a
// dependency. Relative notebook, output and working-directory paths are
// taken from the file's folder.
func LoadBatchFile(path string) (BatchRequest, error) {
	var req BatchRequest
	data, err := readInputFile(path)
	if err != nil {
		return req, userErrorf("batch file: %v", err)
	}
	// Bounds first: the decoders below expand aliases.
	if _, err := parseYAML(data); err != nil {
		return req, userErrorf("batch file %s: %v", path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&req); err != nil {
		return req, userErrorf("batch file %s: %v", path, err)
	}
	// Parameters again, from the YAML tree, typed as in a parameters file
	// (-f): decoded into Go values, 2.0 would become 2.
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
			v, err := YAMLValue(&doc.Nodes[i].Parameters)
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
