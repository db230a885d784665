package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"gopkg.in/yaml.v3"
)

// Bounds of a file a user hands in (a parameters file, a batch file).
// Without them a few hundred bytes of YAML aliases (a "billion laughs")
// expand to gigabytes, and an alias that contains itself recurses until
// the stack overflows.
const (
	// MaxInputFileBytes bounds the file read.
	MaxInputFileBytes = 8 << 20
	// MaxYAMLNodes bounds a YAML document's values, counting each alias
	// as the whole value it stands for.
	MaxYAMLNodes = 10_000
	// MaxInputDepth bounds the nesting of lists and mappings in YAML and
	// JSON.
	MaxInputDepth = 64
)

// readInputFile reads at most MaxInputFileBytes of path; a larger file is
// refused without being read whole.
func readInputFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxInputFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxInputFileBytes {
		return nil, fmt.Errorf("%s is larger than %d MiB, the most millrace reads", path, MaxInputFileBytes>>20)
	}
	return data, nil
}

// parseYAML parses the first document of data into a node tree and checks
// it against MaxYAMLNodes and MaxInputDepth, so that nothing built from it
// afterwards (decoding into Go values expands aliases) can explode.
func parseYAML(data []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	w := yamlWalk{active: map[*yaml.Node]bool{}}
	if err := w.walk(&doc, 0); err != nil {
		return nil, err
	}
	return &doc, nil
}

// yamlWalk counts a YAML tree's nodes as if every alias were expanded,
// stopping at the first bound passed: its work is bounded by MaxYAMLNodes
// whatever the aliases multiply to.
type yamlWalk struct {
	nodes int
	// active holds the anchored nodes being walked: an alias to one of
	// them is an alias inside its own anchor.
	active map[*yaml.Node]bool
}

func (w *yamlWalk) walk(n *yaml.Node, depth int) error {
	if w.nodes++; w.nodes > MaxYAMLNodes {
		return fmt.Errorf("more than %d values once aliases are expanded (line %d); millrace refuses larger documents, which a few aliases can make explode", MaxYAMLNodes, n.Line)
	}
	if depth > MaxInputDepth {
		return fmt.Errorf("nested deeper than %d levels (line %d)", MaxInputDepth, n.Line)
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil || w.active[n.Alias] {
			return fmt.Errorf("line %d: alias *%s refers to a value that contains it (a recursive alias), which has no end", n.Line, n.Value)
		}
		return w.walk(n.Alias, depth)
	}
	if n.Anchor != "" {
		w.active[n] = true
		defer delete(w.active, n)
	}
	for _, c := range n.Content {
		if err := w.walk(c, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// checkJSONDepth refuses JSON nested deeper than MaxInputDepth (JSON has no
// aliases: its size bounds the rest).
func checkJSONDepth(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	depth := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('['), json.Delim('{'):
			if depth++; depth > MaxInputDepth {
				return fmt.Errorf("nested deeper than %d levels (at byte %d)", MaxInputDepth, dec.InputOffset())
			}
		case json.Delim(']'), json.Delim('}'):
			depth--
		}
	}
}

// checkValueDepth refuses parameter values nested deeper than
// MaxInputDepth, whichever way they came (a file, MCP JSON, a batch):
// the kernel's JSON decoder and the injected cell have recursion limits
// of their own, far below what encoding/json accepts.
func checkValueDepth(name string, v any, depth int) error {
	if depth > MaxInputDepth {
		return userErrorf("parameter %s: nested deeper than %d levels", name, MaxInputDepth)
	}
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			if err := checkValueDepth(name, e, depth+1); err != nil {
				return err
			}
		}
	case map[string]any:
		for _, e := range x {
			if err := checkValueDepth(name, e, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}
