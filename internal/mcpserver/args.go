package mcpserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
)

// bindArgs decodes a call's arguments into A, strictly: an unknown name, a
// missing required argument or a value of the wrong type is a message a
// model can act on ("unknown argument "stpes"; start_notebook takes: ..."),
// where a JSON Schema validator's report would not be. Required arguments
// are A's fields whose json tag lacks omitempty.
func bindArgs[A any](req mcp.CallToolRequest) (A, string) {
	var args A
	raw, err := json.Marshal(req.GetRawArguments())
	if err != nil {
		return args, "arguments are not JSON: " + err.Error()
	}
	if bytes.Equal(raw, []byte("null")) {
		raw = []byte("{}")
	}
	var present map[string]json.RawMessage
	if err := json.Unmarshal(raw, &present); err != nil {
		return args, "arguments must be a JSON object of named arguments"
	}
	fields := argFields(reflect.TypeFor[A]())
	tool := req.Params.Name
	for _, f := range fields {
		if f.required {
			if v, ok := present[f.name]; !ok || bytes.Equal(v, []byte("null")) {
				return args, fmt.Sprintf("missing argument %s: %s", f.name, f.help)
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err = dec.Decode(&args)
	var typeErr *json.UnmarshalTypeError
	switch {
	case err == nil:
		return args, ""
	case errors.As(err, &typeErr):
		return args, fmt.Sprintf("argument %s: want %s, got %s", typeErr.Field, kindName(typeErr.Type), typeErr.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		names := make([]string, len(fields))
		for i, f := range fields {
			names[i] = f.name
		}
		sort.Strings(names)
		return args, fmt.Sprintf("unknown argument %s; %s takes: %s", strings.TrimPrefix(err.Error(), "json: unknown field "), tool, strings.Join(names, ", "))
	}
	return args, "arguments: " + err.Error()
}

type argField struct {
	name     string
	required bool
	help     string
}

// argFields lists a tool's arguments: A's JSON fields, with those of the
// structs it embeds (the run options) in their place, as encoding/json
// flattens them.
func argFields(t reflect.Type) []argField {
	var out []argField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			out = append(out, argFields(f.Type)...)
			continue
		}
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, argField{name: name, required: !strings.Contains(opts, "omitempty"), help: f.Tag.Get("jsonschema")})
	}
	return out
}

// kindName says in words what JSON a Go type takes.
func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "a whole number"
	case reflect.Float64, reflect.Float32:
		return "a number"
	case reflect.Slice:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return t.String()
}
