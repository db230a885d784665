package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"millrace/internal/notebook"
	"millrace/internal/rundir"
	"millrace/internal/runenv"
	"millrace/internal/runopts"
	"millrace/workflows"
)

// StartRequest asks for a notebook run: the notebook and its options
// (runopts), as every entry point gives them. RunInput maps it to the
// workflow's input.
type StartRequest struct {
	Path string `json:"path"`
	runopts.Options
	runopts.Job
	runopts.Direct

	// Set by the batch workflow for its nodes; not by callers.
	BatchID string `json:"-"`
	NodeID  string `json:"-"`
	// HeartbeatTimeout overrides the lost-worker detection time (tests).
	HeartbeatTimeout time.Duration `json:"-"`
}

// Limits on a request.
const (
	MaxAttemptsLimit = 20
	MaxLabels        = 20
	MaxLabelBytes    = 200
)

// Started is the answer to a start.
type Started struct {
	JobID      string `json:"job_id"`
	Status     string `json:"status"`
	OutputPath string `json:"output_path"`
	Notebook   string `json:"notebook"`
	// Warnings say what was not checked (parameters passed with type
	// checks off); the run's status repeats them.
	Warnings []string `json:"warnings,omitempty"`
}

// Start validates the request and starts the run. Nothing is started when
// any check fails.
func (s *Service) Start(ctx context.Context, req StartRequest) (Started, error) {
	jobID := workflows.RunIDPrefix + uuid.NewString()
	in, err := s.RunInput(jobID, req)
	if err != nil {
		return Started{}, err
	}
	if _, err := s.Client.ExecuteWorkflow(ctx, s.runOptions(jobID, in), workflows.NotebookRunWorkflow, in); err != nil {
		return Started{}, fmt.Errorf("start workflow: %w", err)
	}
	return Started{JobID: jobID, Status: workflows.StatusPending, OutputPath: in.Output, Notebook: in.Notebook, Warnings: in.Warnings}, nil
}

// runOptions are the start options of a run's workflow.
func (s *Service) runOptions(jobID string, in workflows.RunInput) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:        jobID,
		TaskQueue: s.TaskQueue,
		// Without this, starting an existing id silently returns the old run.
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes:                    searchAttributes(in, "run"),
		Memo:                                     runMemo(in),
		// Waiting runs with a smaller key are dispatched first.
		Priority: temporal.Priority{PriorityKey: in.Priority},
	}
}

// Memo keys of a job service's start, beside workflows.RunMemo's: what
// status answers without reading the input.
const (
	memoNotify = "notify_url"   // set when the run has a completion webhook
	memoResume = "resumed_from" // a ResumedFrom, set when the run is a rerun with from_cell
)

func runMemo(in workflows.RunInput) map[string]any {
	m := workflows.RunMemo(in)
	if in.NotifyURL != "" {
		m[memoNotify] = in.NotifyURL
	}
	if r := in.Resume; r != nil {
		m[memoResume] = ResumedFrom{JobID: r.Job, FromCell: r.FromCell, CheckpointCell: r.Checkpoint.Cell}
	}
	return m
}

func searchAttributes(in workflows.RunInput, kind string) temporal.SearchAttributes {
	updates := []temporal.SearchAttributeUpdate{
		workflows.KeyNotebook.ValueSet(in.Notebook),
		workflows.KeyKind.ValueSet(kind),
	}
	if len(in.Labels) > 0 {
		updates = append(updates, workflows.KeyLabels.ValueSet(in.Labels))
	}
	if in.BatchID != "" {
		updates = append(updates, workflows.KeyBatchID.ValueSet(in.BatchID))
	}
	updates = append(updates, workflows.RunScope(in).Attributes()...)
	return temporal.NewSearchAttributes(updates...)
}

// RunInput validates a request and turns it into the workflow's input: the
// paths resolved inside the roots, the notebook loaded and its parameters
// checked against the parameters cell.
func (s *Service) RunInput(jobID string, req StartRequest) (workflows.RunInput, error) {
	var in workflows.RunInput
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	nbPath, err := s.Roots.Existing(req.Path)
	if err != nil {
		return in, userErrorf("notebook: %v", err)
	}
	nb, err := notebook.Load(nbPath)
	if err != nil {
		return in, userErrorf("notebook %s: %v", req.Path, err)
	}
	in.Notebook = nbPath
	in.Roots = s.Roots.Dirs()

	in.Output, in.DefaultOutput = rundir.DefaultOutput(s.DataDir, jobID), true
	if req.OutputPath != "" {
		out, err := s.Roots.Writable(req.OutputPath)
		switch {
		case err != nil:
			bad("output_path: %v", err)
		case out == nbPath:
			bad("output_path is the input notebook itself; choose another path (papermill would overwrite your notebook)")
		case isDir(out):
			bad("output_path %s is a directory; name a file such as %s", req.OutputPath, filepath.Join(req.OutputPath, "output.ipynb"))
		default:
			in.Output, in.DefaultOutput = out, false
		}
	}
	in.Cwd = filepath.Dir(nbPath)
	if req.Cwd != "" {
		cwd, err := s.Roots.Existing(req.Cwd)
		switch {
		case err != nil:
			bad("cwd: %v", err)
		case !isDir(cwd):
			bad("cwd %s is not a directory", req.Cwd)
		default:
			in.Cwd = cwd
		}
	}

	params, warnings, err := s.parameters(nb, req)
	if err != nil {
		bad("%v", err)
	}
	in.Parameters, in.Warnings = params, warnings

	if req.Kernel != "" && !validName(req.Kernel) {
		bad("kernel %q is not a kernel name (letters, digits, '-', '_', '.')", req.Kernel)
	}
	in.Kernel = req.Kernel
	if req.TimeoutSeconds < 0 || req.CellTimeoutSeconds < 0 || math.IsNaN(req.TimeoutSeconds) || math.IsNaN(req.CellTimeoutSeconds) {
		bad("timeout_seconds and cell_timeout_seconds must be positive (or 0 for none)")
	}
	in.Timeout = seconds(req.TimeoutSeconds)
	in.CellTimeout = seconds(req.CellTimeoutSeconds)
	if req.MaxAttempts < 0 || req.MaxAttempts > MaxAttemptsLimit {
		bad("max_attempts %d: must be between 1 and %d (0 for the default, %d)", req.MaxAttempts, MaxAttemptsLimit, workflows.DefaultMaxAttempts)
	}
	in.MaxAttempts = req.MaxAttempts
	in.RetryOnError = req.RetryOnError
	if len(req.Labels) > MaxLabels {
		bad("%d labels: at most %d", len(req.Labels), MaxLabels)
	}
	for _, l := range req.Labels {
		if l == "" || len(l) > MaxLabelBytes || strings.ContainsAny(l, "'\"\\\n") {
			bad("label %q: labels are 1 to %d characters without quotes, backslashes or newlines", l, MaxLabelBytes)
		}
	}
	in.Labels = req.Labels
	if err := runenv.CheckNames(req.Env, s.AllowEnv); err != nil {
		bad("%v", err)
	}
	in.Env = req.Env
	in.BatchID, in.NodeID, in.HeartbeatTimeout = req.BatchID, req.NodeID, req.HeartbeatTimeout
	var errs []error
	in.Priority, err = priorityKey(req.Priority)
	errs = append(errs, err)
	in.NotifyURL, err = s.notifyURL(req.NotifyURL)
	errs = append(errs, err)
	in.MemoryLimit, in.CPULimit, err = resourceLimits(req.MemoryLimit, req.CPULimit)
	errs = append(errs, err)
	in.Checkpoint, in.CheckpointMaxBytes, err = checkpointPolicy(req.Checkpoint, req.CheckpointMaxSize)
	errs = append(errs, err)
	for _, err := range errs {
		if err != nil {
			bad("%v", err)
		}
	}
	if len(problems) > 0 {
		return in, &UserError{Msg: strings.Join(problems, "; ")}
	}
	return in, nil
}

// parameters checks the values against the notebook's parameters cell
// (notebook.CheckValues has the rule) and encodes them as JSON, with the
// warnings of a request that turned type checks off. A whole number given
// for a float parameter is written as a float (2.0), because JSON clients
// cannot tell 2 from 2.0 and papermill's -p 2 is an int.
func (s *Service) parameters(nb *notebook.Notebook, req StartRequest) (json.RawMessage, []string, error) {
	if len(req.Parameters) == 0 {
		return nil, nil, nil
	}
	limit := s.MaxParameterBytes
	if limit <= 0 {
		limit = notebook.MaxParameterBytes
	}
	if err := notebook.CheckValueSizes(req.Parameters, limit); err != nil {
		return nil, nil, err
	}
	for k, v := range req.Parameters {
		if err := checkValueDepth(k, v, 0); err != nil {
			return nil, nil, err
		}
	}
	// Without a parameters cell (papermill then injects first, with a
	// warning) or in a language we cannot parse, names cannot be checked
	// against declarations; they are still checked as identifiers.
	_, declared, found := nb.Parameters()
	allowExtra := req.AllowExtraParameters || !found || !nb.IsPython()
	warnings, err := notebook.CheckValues(declared, req.Parameters, notebook.ValuesPolicy{AllowExtra: allowExtra, NoTypeCheck: req.NoTypeCheck})
	if err != nil {
		return nil, nil, err
	}
	floats := map[string]bool{}
	for _, p := range declared {
		floats[p.Name] = p.WantsFloat()
	}
	names := make([]string, 0, len(req.Parameters))
	for k := range req.Parameters {
		names = append(names, k)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, k := range names {
		if i > 0 {
			buf.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		buf.Write(kb)
		buf.WriteByte(':')
		v := req.Parameters[k]
		if f, ok := number(v); ok && floats[k] && f == math.Trunc(f) && !math.IsInf(f, 0) {
			buf.WriteString(strconv.FormatFloat(f, 'f', 1, 64))
			continue
		}
		vb, err := json.Marshal(v)
		if err != nil {
			return nil, nil, fmt.Errorf("parameter %s: %v", k, err)
		}
		buf.Write(vb)
	}
	buf.WriteByte('}')
	return buf.Bytes(), warnings, nil
}

// number is v's value when v is a number of any Go type (`-p n=1` gives
// an int64, JSON a float64 or a json.Number).
func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(rv.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return float64(rv.Uint()), true
	case reflect.Float32:
		return rv.Float(), true
	}
	return 0, false
}

func seconds(s float64) time.Duration {
	if s <= 0 || math.IsNaN(s) {
		return 0
	}
	if s > float64(math.MaxInt64/int64(time.Second)) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(s * float64(time.Second))
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

func validName(s string) bool {
	for _, r := range s {
		if !(r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return s != "" && len(s) <= 100
}
