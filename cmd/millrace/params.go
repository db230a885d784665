package main

import (
	"fmt"
	"strings"

	"millrace/internal/jobs"
	"millrace/internal/notebook"
)

// parameterFlags are the ways `run` takes parameters, as papermill's CLI
// does: -f files first, then -r raw strings, then -p typed values, each
// overriding what came before.
type parameterFlags struct {
	files stringList // -f params.yaml|json
	raw   stringList // -r name=value: always a string
	typed stringList // -p name=value: typed like papermill's -p
}

// values merges the parameters in papermill's order.
func (p *parameterFlags) values() (map[string]any, error) {
	out := map[string]any{}
	for _, f := range p.files {
		m, err := jobs.LoadParameterFile(absPath(f))
		if err != nil {
			return nil, err
		}
		for k, v := range m {
			out[k] = v
		}
	}
	for _, kv := range p.raw {
		name, value, err := splitParameter("-r", kv)
		if err != nil {
			return nil, err
		}
		out[name] = value
	}
	for _, kv := range p.typed {
		name, value, err := splitParameter("-p", kv)
		if err != nil {
			return nil, err
		}
		out[name] = jobs.FloatValue(notebook.CoercePapermillValue(value))
	}
	return out, nil
}

// papermillPairs rewrites papermill's two-word form, -p NAME VALUE (and
// -r NAME VALUE), into -p NAME=VALUE, so a papermill command line works
// as it is.
func papermillPairs(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		out = append(out, a)
		if a == "--" {
			return append(out, args[i+1:]...)
		}
		switch a {
		case "-p", "--p", "-r", "--r":
			if i+2 < len(args) && !strings.Contains(args[i+1], "=") && !isFlag(args[i+2]) {
				out = append(out, args[i+1]+"="+args[i+2])
				i += 2
			}
		}
	}
	return out
}

// isFlag tells a flag from a value: -3 and -.5 are values.
func isFlag(a string) bool {
	return strings.HasPrefix(a, "-") && len(a) > 1 && !strings.ContainsAny(a[1:2], "0123456789.")
}

func splitParameter(flagName, kv string) (string, string, error) {
	name, value, ok := strings.Cut(kv, "=")
	name = strings.TrimSpace(name)
	if !ok || name == "" {
		return "", "", fmt.Errorf("%s %q: write name=value, as in %s epochs=5", flagName, kv, flagName)
	}
	return name, value, nil
}
