package jobs

import (
	"fmt"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"millrace/internal/rundir"
	"millrace/workflows"
)

// Visibility: servers with different roots share a namespace (the dev
// service serves the CLI and every MCP server, each with its own --roots),
// so each shows only the jobs whose files lie inside its own roots. A job
// outside them is answered exactly as an unknown id: not listed, not read,
// not rerun, not canceled, and nothing in the answer tells it exists.
//
// The rule reads the job's scope (workflows.PathScope, in its search
// attributes): the folders of its notebook, its output and its working
// directory must each lie inside a root; an output in the run's own
// directory under the data dir (the default) needs none. A batch's scope
// is, for each, the folder common to all its nodes, so a batch is visible
// when all its nodes' files lie inside one root each of the three ways.
// Jobs started before scopes were recorded have none and are shown to no
// server (the Temporal UI and CLI still show them).

// visible reports whether a job with these search attributes is this
// server's to show.
func (s *Service) visible(sa *commonpb.SearchAttributes) bool {
	fields := sa.GetIndexedFields()
	str := func(name string) string {
		var v string
		if p, ok := fields[name]; ok {
			_ = converter.GetDefaultDataConverter().FromPayload(p, &v)
		}
		return v
	}
	in := func(dir string) bool {
		_, ok := s.Roots.Contains(dir)
		return ok
	}
	nb, out, cwd := str(workflows.AttrNotebookDir), str(workflows.AttrOutputDir), str(workflows.AttrCwd)
	return nb != "" && cwd != "" && in(nb) && in(cwd) && (out == "" || in(out))
}

// scopeQuery is the visibility query clause of visible, so listings page
// and count only visible jobs. SQLite's LIKE (behind STARTS_WITH) ignores
// ASCII case, so a listing also checks each row with visible; only the
// counts could include a job under a root spelled in another case.
func (s *Service) scopeQuery() string {
	under := func(attr string) string {
		var alt []string
		for _, d := range s.Roots.Dirs() {
			if d == "/" {
				return attr + " STARTS_WITH '/'"
			}
			alt = append(alt, fmt.Sprintf("%s = %s", attr, quote(d)), fmt.Sprintf("%s STARTS_WITH %s", attr, quote(d+"/")))
		}
		return "(" + strings.Join(alt, " OR ") + ")"
	}
	return fmt.Sprintf("%s AND %s AND (%s IS NULL OR %s)", under(workflows.AttrNotebookDir), under(workflows.AttrCwd), workflows.AttrOutputDir, under(workflows.AttrOutputDir))
}

// batchScope is the scope of a batch: its nodes' scopes joined. A node
// reused from an earlier round keeps its output where it is; one in its
// run's directory is the default output.
func (s *Service) batchScope(in workflows.BatchInput) workflows.PathScope {
	var scope workflows.PathScope
	for _, n := range in.Nodes {
		run := n.Run
		if run.Output == rundir.DefaultOutput(s.DataDir, n.JobID) {
			run.DefaultOutput = true
		}
		scope = scope.Join(workflows.RunScope(run))
	}
	return scope
}

// unknownJob is the answer for an id that names no job this server may
// show: the same for a job that does not exist and one outside the roots.
func (s *Service) unknownJob(jobID string) error {
	return userErrorf("no job %q in namespace %s: list_jobs shows the jobs there are", jobID, s.Namespace)
}
