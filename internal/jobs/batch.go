package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/google/uuid"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"millrace/internal/runopts"
	"millrace/workflows"
)

// BatchNodeRequest is one node of a batch request: a notebook, its place in
// the graph and its run options (a batch file's keys are their YAML names).
// The batch's own labels, priority and no_type_check apply to every node.
type BatchNodeRequest struct {
	ID              string   `json:"id" yaml:"id"`
	Path            string   `json:"path" yaml:"path"`
	DependsOn       []string `json:"depends_on,omitempty" yaml:"depends_on,omitempty"`
	runopts.Options `yaml:",inline"`
}

// BatchRequest asks for a batch: a DAG of notebook runs.
type BatchRequest struct {
	Name        string             `json:"name,omitempty" yaml:"name,omitempty"`
	Nodes       []BatchNodeRequest `json:"nodes" yaml:"nodes"`
	MaxParallel int                `json:"max_parallel,omitempty" yaml:"max_parallel,omitempty"`
	FailFast    bool               `json:"fail_fast,omitempty" yaml:"fail_fast,omitempty"`
	Labels      []string           `json:"labels,omitempty" yaml:"labels,omitempty"`
	// Priority (high, normal, low) applies to every node.
	Priority string `json:"priority,omitempty" yaml:"priority,omitempty"`
	// NotifyURL receives a signed JSON POST when the batch ends.
	NotifyURL string `json:"notify_url,omitempty" yaml:"notify_url,omitempty"`
	// NoTypeCheck turns type checks off for every node.
	NoTypeCheck bool `json:"no_type_check,omitempty" yaml:"no_type_check,omitempty"`
}

// BatchStarted answers StartBatch and a batch rerun.
type BatchStarted struct {
	BatchID string             `json:"batch_id"`
	Status  string             `json:"status"`
	Round   int                `json:"round"`
	Nodes   []StartedBatchNode `json:"nodes"`
}

// StartedBatchNode says which job a node became.
type StartedBatchNode struct {
	ID         string `json:"id"`
	JobID      string `json:"job_id"`
	OutputPath string `json:"output_path"`
	Reused     bool   `json:"reused,omitempty"`
	// Warnings say what was not checked (type checks off), and how a
	// rerun with from_cell resumes the node.
	Warnings []string `json:"warnings,omitempty"`
	// Resume is the checkpoint a rerun with from_cell resumes the node
	// from; nil when it runs from its first cell.
	Resume *workflows.Resume `json:"resume,omitempty"`
}

// StartBatch validates the whole batch, then starts it. Nothing starts when
// any node is invalid.
func (s *Service) StartBatch(ctx context.Context, req BatchRequest) (BatchStarted, error) {
	id := workflows.BatchIDPrefix + uuid.NewString()
	in, err := s.resolveBatch(id, req, 1, nil)
	if err != nil {
		return BatchStarted{}, err
	}
	return s.launchBatch(ctx, id, req, in)
}

// launchBatch starts the Batch workflow of a resolved request (a first
// round, or a rerun's next one).
func (s *Service) launchBatch(ctx context.Context, batchID string, req BatchRequest, in workflows.BatchInput) (BatchStarted, error) {
	updates := []temporal.SearchAttributeUpdate{workflows.KeyKind.ValueSet("batch")}
	updates = append(updates, s.batchScope(in).Attributes()...)
	if len(req.Labels) > 0 {
		updates = append(updates, workflows.KeyLabels.ValueSet(req.Labels))
	}
	opts := client.StartWorkflowOptions{
		ID:                                       batchID,
		TaskQueue:                                s.TaskQueue,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes:                    temporal.NewSearchAttributes(updates...),
		Memo:                                     batchMemo(req.Name, in.NotifyURL),
		Priority:                                 temporal.Priority{PriorityKey: in.Priority},
	}
	if _, err := s.Client.ExecuteWorkflow(ctx, opts, workflows.BatchWorkflow, in); err != nil {
		return BatchStarted{}, fmt.Errorf("start batch: %w", err)
	}
	out := BatchStarted{BatchID: batchID, Status: workflows.StatusRunning, Round: in.Round}
	for _, n := range in.Nodes {
		out.Nodes = append(out.Nodes, StartedBatchNode{ID: n.ID, JobID: n.JobID, OutputPath: n.Run.Output, Reused: n.Reused, Warnings: n.Run.Warnings, Resume: n.Run.Resume})
	}
	return out, nil
}

func batchMemo(name, notifyURL string) map[string]any {
	m := map[string]any{"name": name}
	if notifyURL != "" {
		m[memoNotify] = notifyURL
	}
	return m
}

// MaxBatchInputBytes bounds a batch once its ${...} references are
// replaced: both the bytes the references produce (counted as they are
// produced, so a few hundred kilobytes of references to one another cannot
// grow into gigabytes first) and the JSON size of the whole workflow input.
// The input travels as one Temporal payload, which fails at 2 MB; the rest
// is left for the event around it.
const MaxBatchInputBytes = 1536 << 10

// ValidateBatch checks a batch request as StartBatch does, without
// Temporal: the CLI calls it before it connects, so an invalid batch file
// never starts the dev service.
func (s *Service) ValidateBatch(req BatchRequest) error {
	_, err := s.resolveBatch(workflows.BatchIDPrefix+"check", req, 1, nil)
	return err
}

var nodeIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// resolveBatch validates a batch request and resolves every node into a
// run input, in dependency order so references see their upstream outputs.
// Its error lists every problem at once: ids and dependencies, a cycle, and
// each node's own (notebook, parameters, options), so one round of fixes
// is enough.
func (s *Service) resolveBatch(batchID string, req BatchRequest, round int, reuse map[string]workflows.NodeState) (workflows.BatchInput, error) {
	in := workflows.BatchInput{Name: req.Name, MaxParallel: req.MaxParallel, FailFast: req.FailFast, Labels: req.Labels, Round: round}
	if len(req.Nodes) == 0 {
		return in, userErrorf("a batch needs at least one node")
	}
	if len(req.Nodes) > workflows.MaxBatchNodes {
		return in, userErrorf("%d nodes: a batch holds at most %d (split it, or chain batches)", len(req.Nodes), workflows.MaxBatchNodes)
	}
	byID := map[string]int{}
	var problems []string
	var err error
	if req.MaxParallel < 0 || req.MaxParallel > 100 {
		problems = append(problems, fmt.Sprintf("max_parallel %d: must be between 1 and 100 (0 for the default, %d)", req.MaxParallel, workflows.DefaultMaxParallel))
	}
	if in.Priority, err = priorityKey(req.Priority); err != nil {
		problems = append(problems, err.Error())
	}
	if in.NotifyURL, err = s.notifyURL(req.NotifyURL); err != nil {
		problems = append(problems, err.Error())
	}
	for i, n := range req.Nodes {
		switch _, dup := byID[n.ID]; {
		case n.ID == "":
			problems = append(problems, fmt.Sprintf("node %d has no id", i+1))
		case !nodeIDPattern.MatchString(n.ID):
			problems = append(problems, fmt.Sprintf("node id %q: use 1 to 64 letters, digits, '-' or '_'", n.ID))
		case dup:
			problems = append(problems, fmt.Sprintf("duplicate node id %q", n.ID))
		default:
			byID[n.ID] = i
		}
	}
	for _, n := range req.Nodes {
		for _, d := range n.DependsOn {
			if d == n.ID {
				problems = append(problems, fmt.Sprintf("node %s depends on itself", n.ID))
			} else if _, ok := byID[d]; !ok {
				problems = append(problems, fmt.Sprintf("node %s depends on %q, which is not a node of this batch", n.ID, d))
			}
		}
	}
	order, cycle := topoOrder(req.Nodes, byID)
	if cycle != nil {
		problems = append(problems, fmt.Sprintf("the dependencies form a cycle: %s", strings.Join(cycle, " -> ")))
	}
	// With a broken graph, references to upstream nodes cannot be resolved:
	// each node is still checked on its own, in file order, without the
	// parameters that hold references.
	graphOK := len(problems) == 0
	if !graphOK {
		order = make([]int, len(req.Nodes))
		for i := range order {
			order[i] = i
		}
	}
	spec, _ := json.Marshal(req)
	in.Spec = spec

	resolved := map[string]resolvedNode{}
	exp := &expansion{left: MaxBatchInputBytes}
	in.Nodes = make([]workflows.BatchNode, len(req.Nodes))
	for _, i := range order {
		n := req.Nodes[i]
		bn := workflows.BatchNode{ID: n.ID, DependsOn: n.DependsOn}
		if prev, ok := reuse[n.ID]; ok {
			bn.JobID, bn.Reused = prev.JobID, true
			bn.Run = workflows.RunInput{Notebook: prev.Notebook, Output: prev.Output}
			// Its own references are resolved again, as in the round that
			// ran it (its ancestors succeeded too, so they are reused with
			// the same outputs): a node below that refers to one of its
			// parameters gets the value, not the reference.
			params := n.Parameters
			if graphOK {
				if params, err = exp.substitute(n, resolved, ancestors(req.Nodes, byID, n.ID)); err != nil {
					problems = append(problems, fmt.Sprintf("node %s: %v", n.ID, err))
					continue
				}
			}
			resolved[n.ID] = resolvedNode{output: prev.Output, params: params}
			in.Nodes[i] = bn
			continue
		}
		bn.JobID = fmt.Sprintf("%s%s.%s.%d", workflows.RunIDPrefix, strings.TrimPrefix(batchID, workflows.BatchIDPrefix), n.ID, round)
		params := withoutReferences(n.Parameters)
		if graphOK {
			params, err = exp.substitute(n, resolved, ancestors(req.Nodes, byID, n.ID))
			if errors.Is(err, errExpansion) {
				return in, userErrorf("node %s: %v", n.ID, err)
			}
			if err != nil {
				problems = append(problems, fmt.Sprintf("node %s: %v", n.ID, err))
				continue
			}
		}
		opts := n.Options
		opts.Parameters, opts.NoTypeCheck = params, req.NoTypeCheck || n.NoTypeCheck
		run, err := s.RunInput(bn.JobID, StartRequest{
			Path: n.Path, Options: opts, Job: runopts.Job{Labels: req.Labels, Priority: req.Priority},
			BatchID: batchID, NodeID: n.ID,
		})
		if err != nil {
			problems = append(problems, fmt.Sprintf("node %s: %v", n.ID, err))
			continue
		}
		bn.Run = run
		resolved[n.ID] = resolvedNode{output: run.Output, params: params}
		in.Nodes[i] = bn
	}
	if len(problems) > 0 {
		return in, &UserError{Msg: strings.Join(problems, "; ")}
	}
	if b, err := json.Marshal(in); err == nil && len(b) > MaxBatchInputBytes {
		return in, userErrorf("the batch is %d bytes once its references are replaced; a batch may hold at most %d (%d KiB): pass large data in files, not parameters", len(b), MaxBatchInputBytes, MaxBatchInputBytes>>10)
	}
	return in, nil
}

// withoutReferences drops the parameters whose values refer to upstream
// nodes, for checking a node whose references cannot be resolved.
func withoutReferences(params map[string]any) map[string]any {
	out := make(map[string]any, len(params))
	for k, v := range params {
		if !hasReference(v) {
			out[k] = v
		}
	}
	return out
}

func hasReference(v any) bool {
	switch x := v.(type) {
	case string:
		return refPattern.MatchString(x)
	case []any:
		return slices.ContainsFunc(x, hasReference)
	case map[string]any:
		for _, e := range x {
			if hasReference(e) {
				return true
			}
		}
	}
	return false
}

type resolvedNode struct {
	output string
	params map[string]any
}

// topoOrder returns the node indices in dependency order, or a cycle.
func topoOrder(nodes []BatchNodeRequest, byID map[string]int) ([]int, []string) {
	const (
		white = iota
		grey
		black
	)
	color := make([]int, len(nodes))
	var order []int
	var stack []string
	var cycle []string
	var visit func(i int) bool
	visit = func(i int) bool {
		color[i] = grey
		stack = append(stack, nodes[i].ID)
		for _, d := range nodes[i].DependsOn {
			// Unknown and self dependencies are reported on their own.
			j, ok := byID[d]
			if !ok || d == nodes[i].ID {
				continue
			}
			switch color[j] {
			case grey:
				for k, id := range stack {
					if id == d {
						cycle = append(append([]string{}, stack[k:]...), d)
					}
				}
				return false
			case white:
				if !visit(j) {
					return false
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[i] = black
		order = append(order, i)
		return true
	}
	for i := range nodes {
		if color[i] == white && !visit(i) {
			return nil, cycle
		}
	}
	return order, nil
}

// ancestors returns every node id that id depends on, directly or not.
func ancestors(nodes []BatchNodeRequest, byID map[string]int, id string) map[string]bool {
	seen := map[string]bool{}
	var walk func(string)
	walk = func(n string) {
		for _, d := range nodes[byID[n]].DependsOn {
			if !seen[d] {
				seen[d] = true
				walk(d)
			}
		}
	}
	walk(id)
	return seen
}

// refPattern matches a reference to an upstream node:
// ${node.output_path} or ${node.parameters.name}.
var refPattern = regexp.MustCompile(`\$\{\s*([A-Za-z0-9_-]+)\.(output_path|parameters\.([A-Za-z_][A-Za-z0-9_]*))\s*\}`)

// errExpansion marks a batch whose references produce more than
// MaxBatchInputBytes.
var errExpansion = fmt.Errorf("its ${...} references expand to more than %d bytes (%d KiB), the most a batch may hold: reference smaller values, or pass large data in files", MaxBatchInputBytes, MaxBatchInputBytes>>10)

// expansion counts the bytes that references produce across a batch, and
// stops the expansion as soon as they pass the budget.
type expansion struct{ left int }

// spend charges n produced bytes, reporting errExpansion past the budget.
func (e *expansion) spend(n int) error {
	if e.left -= n; e.left < 0 {
		return errExpansion
	}
	return nil
}

// substitute replaces references in a node's parameter values. A value that
// is exactly one reference takes the referenced value with its type; a
// reference inside a longer string is formatted into it. Only ancestors may
// be referenced: anything else may not have run yet.
func (e *expansion) substitute(n BatchNodeRequest, done map[string]resolvedNode, anc map[string]bool) (map[string]any, error) {
	if len(n.Parameters) == 0 {
		return n.Parameters, nil
	}
	out := make(map[string]any, len(n.Parameters))
	names := make([]string, 0, len(n.Parameters))
	for k := range n.Parameters {
		names = append(names, k)
	}
	sort.Strings(names)
	var errs []string
	for _, k := range names {
		v, err := e.value(n.Parameters[k], done, anc)
		if errors.Is(err, errExpansion) {
			return nil, err
		}
		if err != nil {
			errs = append(errs, fmt.Sprintf("parameter %s: %v", k, err))
		}
		out[k] = v
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return out, nil
}

func (e *expansion) value(v any, done map[string]resolvedNode, anc map[string]bool) (any, error) {
	switch x := v.(type) {
	case string:
		return e.str(x, done, anc)
	case []any:
		out := make([]any, len(x))
		for i, el := range x {
			r, err := e.value(el, done, anc)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, el := range x {
			r, err := e.value(el, done, anc)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	}
	return v, nil
}

func (e *expansion) str(s string, done map[string]resolvedNode, anc map[string]bool) (any, error) {
	var firstErr error
	fail := func(err error) {
		if firstErr == nil || errors.Is(err, errExpansion) {
			firstErr = err
		}
	}
	lookup := func(m []string) any {
		node, field, param := m[1], m[2], m[3]
		if !anc[node] {
			fail(fmt.Errorf("${%s.%s} refers to %q, which is not among this node's dependencies (add it to depends_on)", node, field, node))
			return nil
		}
		up := done[node]
		if param == "" {
			return up.output
		}
		val, ok := up.params[param]
		if !ok {
			fail(fmt.Errorf("${%s.parameters.%s}: node %s does not set parameter %s", node, param, node, param))
		}
		return val
	}
	// text is a referenced value as it goes into a string, charged to the
	// budget before it is copied anywhere.
	text := func(v any) string {
		str, ok := v.(string)
		if !ok {
			b, _ := json.Marshal(v)
			str = string(b)
		}
		if err := e.spend(len(str)); err != nil {
			fail(err)
			return ""
		}
		return str
	}
	if m := refPattern.FindStringSubmatch(s); m != nil && m[0] == strings.TrimSpace(s) {
		v := lookup(m)
		text(v) // the typed value is kept; its size is charged all the same
		if errors.Is(firstErr, errExpansion) {
			return nil, firstErr
		}
		return v, firstErr
	}
	out := refPattern.ReplaceAllStringFunc(s, func(ref string) string {
		if errors.Is(firstErr, errExpansion) {
			return ""
		}
		return text(lookup(refPattern.FindStringSubmatch(ref)))
	})
	if errors.Is(firstErr, errExpansion) {
		return nil, firstErr
	}
	return out, firstErr
}
