package workflows

import (
	"path"
	"strings"

	"go.temporal.io/sdk/temporal"
)

// PathScope is where a job's files are: the folder of its notebook, of its
// output (empty for the default output under the data dir) and its working
// directory. A batch's scope holds, for each, the deepest folder common to
// all its nodes. Servers with different roots share one namespace (the dev
// service serves the CLI and every MCP server): each shows a job only when
// its scope lies inside its own roots, and the scope is in search
// attributes so a listing filters (and counts) in the visibility query.
type PathScope struct {
	NotebookDir string
	OutputDir   string
	Cwd         string
}

// RunScope is the scope of one run.
func RunScope(in RunInput) PathScope {
	s := PathScope{NotebookDir: path.Dir(in.Notebook), Cwd: in.Cwd}
	if !in.DefaultOutput && in.Output != "" {
		s.OutputDir = path.Dir(in.Output)
	}
	return s
}

// Join is the scope that holds both s and o.
func (s PathScope) Join(o PathScope) PathScope {
	return PathScope{NotebookDir: commonDir(s.NotebookDir, o.NotebookDir), OutputDir: commonDir(s.OutputDir, o.OutputDir), Cwd: commonDir(s.Cwd, o.Cwd)}
}

// Attributes are the scope's search attribute updates.
func (s PathScope) Attributes() []temporal.SearchAttributeUpdate {
	var u []temporal.SearchAttributeUpdate
	for _, kv := range []struct {
		key temporal.SearchAttributeKeyKeyword
		v   string
	}{{KeyNotebookDir, s.NotebookDir}, {KeyOutputDir, s.OutputDir}, {KeyCwd, s.Cwd}} {
		if kv.v != "" {
			u = append(u, kv.key.ValueSet(kv.v))
		}
	}
	return u
}

// commonDir is the deepest folder holding both absolute folders a and b;
// an empty one is no constraint.
func commonDir(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" {
		return a
	}
	for a != b {
		if len(a) > len(b) {
			a = path.Dir(a)
		} else if len(b) > len(a) {
			b = path.Dir(b)
		} else {
			a, b = path.Dir(a), path.Dir(b)
		}
		if a == "/" || b == "/" || !strings.HasPrefix(a, "/") {
			return "/"
		}
	}
	return a
}
