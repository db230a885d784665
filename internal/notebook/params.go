package notebook

import (
	"fmt"
	"strings"
	"unicode"
)

// Parameter is one variable of a notebook's parameters cell, described the
// way `papermill --help-notebook` and papermill's inspect_notebook do, so
// tools built on either see the same names and types.
type Parameter struct {
	Name string `json:"name"`
	// InferredType is the annotation or "# type:" comment; "None" when the
	// cell does not say (papermill's convention for unknown).
	InferredType string `json:"inferred_type_name"`
	// Default is the Python source of the value, not its evaluation.
	Default string `json:"default"`
	Help    string `json:"help"`
}

// unknownType is papermill's inferred_type_name for "not declared".
const unknownType = "None"

// ParseParameters lists the parameters a Python parameters cell assigns,
// following papermill's PythonTranslator.inspect: one parameter per
// top-level `name = value` or `name: Type = value`, values may span lines
// inside brackets, a trailing comment is the help, and a trailing
// "# type: T" comment gives the type. Lines it cannot read are skipped:
// inspection must never fail a run that papermill would attempt.
//
// It goes further than papermill where papermill gives up or misreads, as
// the compatibility corpus asks: an assignment whose value holds another
// '=' (d = a == 3) is kept; a '#' or '=' inside a string is not a comment
// or assignment; a comment line right above an assignment is its help
// when it has no trailing one (a "# Parameters" header is not help).
func ParseParameters(source string) []Parameter {
	params, _ := parseParameters(source)
	return params
}

// parseParameters also returns warnings for lines that look like
// assignments but could not be read, for Inspect to pass on.
func parseParameters(source string) ([]Parameter, []string) {
	var params []Parameter
	var warnings []string
	seen := map[string]int{}
	var above []string // the comment block right above the current line
	for _, ln := range logicalLines(source) {
		if strings.TrimSpace(ln.code) == "" {
			if c := strings.TrimSpace(ln.comment); ln.comment != "" && !isHeaderComment(c) {
				above = append(above, c)
			} else if ln.comment == "" {
				above = nil
			}
			continue
		}
		stmts := splitTopLevel(ln.code, ';')
		for k, stmt := range stmts {
			var trailing, help string
			if k == len(stmts)-1 {
				trailing = ln.comment
			}
			if k == 0 {
				help = strings.Join(above, " ")
			}
			p, problem := parseAssignment(strings.TrimSpace(stmt), trailing, help)
			if problem != "" {
				warnings = append(warnings, fmt.Sprintf("parameters cell line %d: %s; skipped", ln.line, problem))
			}
			if p.Name == "" {
				continue
			}
			if i, dup := seen[p.Name]; dup {
				params[i] = p // Python keeps the last assignment
				continue
			}
			seen[p.Name] = len(params)
			params = append(params, p)
		}
		above = nil
	}
	return params, warnings
}

// isHeaderComment spots "# Parameters", the header papermill writes on its
// injected cell and that users copy onto theirs: it titles the cell and
// would be wrong as the first parameter's help.
func isHeaderComment(c string) bool {
	return strings.EqualFold(strings.TrimSuffix(c, ":"), "parameters")
}

// parseAssignment reads one statement. It returns a zero Parameter for a
// statement that is not an assignment, with a problem when it looks like
// one that cannot be read.
func parseAssignment(stmt, trailing, helpAbove string) (Parameter, string) {
	eqs := assignments(stmt)
	switch {
	case len(eqs) == 0:
		return Parameter{}, "" // an expression, import, def...: not a parameter
	case len(eqs) > 1:
		return Parameter{}, fmt.Sprintf("%q assigns more than once", abbreviate(stmt, 60))
	}
	lhs, value := strings.TrimSpace(stmt[:eqs[0]]), strings.TrimSpace(stmt[eqs[0]+1:])
	name, annotation := lhs, ""
	topLevel(lhs, func(i int) bool {
		if lhs[i] == ':' {
			name, annotation = strings.TrimSpace(lhs[:i]), strings.TrimSpace(lhs[i+1:])
			return false
		}
		return true
	})
	switch {
	case !isIdentifier(name) || pythonKeywords[name]:
		return Parameter{}, fmt.Sprintf("%q does not assign a plain name", abbreviate(stmt, 60))
	case value == "":
		return Parameter{}, fmt.Sprintf("%q has no value", abbreviate(stmt, 60))
	}
	typeComment, help := splitTypeComment(trailing)
	if help == "" {
		help = helpAbove
	}
	inferred := unquote(annotation)
	if inferred == "" {
		inferred = typeComment
	}
	if inferred == "" {
		inferred = unknownType
	}
	return Parameter{Name: name, InferredType: inferred, Default: value, Help: help}, ""
}

// splitTypeComment splits "type: List[str] Nice list" into the type and
// the help, as papermill's pattern does (the type is one word).
func splitTypeComment(comment string) (typ, help string) {
	c := strings.TrimSpace(comment)
	rest, ok := strings.CutPrefix(c, "type:")
	if !ok {
		return "", c
	}
	rest = strings.TrimSpace(rest)
	end := strings.IndexFunc(rest, unicode.IsSpace)
	if end < 0 {
		return rest, ""
	}
	typ, help = rest[:end], rest[end:]
	return typ, strings.TrimSpace(help)
}

// unquote strips the quotes of a string annotation (c: "NoneType").
func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' || s[0] == '\'') && s[len(s)-1] == s[0] {
		return strings.TrimSpace(s[1 : len(s)-1])
	}
	return s
}

// Parameters finds the parameters cell, the first code cell tagged
// "parameters" as in papermill, and parses it. For a notebook that is not
// Python the cell is found but its parameters are not inspected (params is
// nil), since only Python's syntax is understood here.
func (nb *Notebook) Parameters() (cell int, params []Parameter, found bool) {
	cell = nb.parametersCell()
	if cell < 0 {
		return -1, nil, false
	}
	if !nb.IsPython() {
		return cell, nil, true
	}
	return cell, ParseParameters(nb.Cells[cell].Source), true
}

func (nb *Notebook) parametersCell() int {
	for i := range nb.Cells {
		if nb.Cells[i].Type == CellCode && nb.Cells[i].HasTag(TagParameters) {
			return i
		}
	}
	return -1
}
