// Package runopts declares a notebook run's options once, for every entry
// point: the MCP tools embed them in their arguments (their JSON names and
// descriptions make the tools' input schemas), batch files and start_batch
// embed Options in each node (the YAML keys), the job service embeds all
// three groups in jobs.StartRequest, and millrace run binds a flag to each
// field. jobs.Service.RunInput is the one mapping from them to the
// workflow's input, and checks them.
//
// The options fall into three groups by who may set them, so that each
// entry point embeds exactly the ones it takes:
//
//   - Options: how the notebook runs. Every entry point takes them,
//     including each node of a batch.
//   - Job: how a job is found, scheduled and reported. A run started on its
//     own takes them; a batch takes them once for itself (its labels and
//     priority then apply to every node, its notify_url reports the batch).
//   - Direct: what only the CLI and Go callers of the job service set: an
//     environment for the kernel and parameters its notebook does not
//     declare. The MCP tools and batch files never took them.
//
// To add an option: add the field to the group whose callers may set it,
// with json and yaml tags (and a jsonschema description for the MCP
// tools), give millrace run a flag for it (cmd/millrace/options.go refuses
// to start without one), and map it in jobs.Service.RunInput. The tests
// that set every field (runoptstest.Fill) then check that it reaches the
// workflow from each entry point.
//
// The package has no Temporal imports: the workflow's own form of these
// options, in workflows.RunInput, is resolved (durations, bytes, absolute
// paths, a priority key) and stays as recorded histories hold it.
package runopts

import (
	"reflect"
	"strings"
)

// Options say how one notebook runs. Zero values are the defaults.
type Options struct {
	Parameters map[string]any `json:"parameters,omitempty" yaml:"parameters,omitempty" jsonschema:"values for the notebook's parameters cell by name, as typed JSON (numbers, strings, booleans, lists, objects, null); inspect_notebook lists the names, types and defaults"`
	OutputPath string         `json:"output_path,omitempty" yaml:"output_path,omitempty" jsonschema:"where to write the executed notebook, inside the roots; default: a file in the job's own folder of the data dir"`
	Kernel     string         `json:"kernel,omitempty" yaml:"kernel,omitempty" jsonschema:"Jupyter kernel name such as python3; default: the notebook's own kernelspec"`
	Cwd        string         `json:"cwd,omitempty" yaml:"cwd,omitempty" jsonschema:"working directory of the kernel, inside the roots; default: the notebook's folder"`
	// TimeoutSeconds bounds the run, all attempts included; 0 = none.
	TimeoutSeconds     float64 `json:"timeout_seconds,omitempty" yaml:"timeout_seconds,omitempty" jsonschema:"stop the run (TIMED_OUT) after this many seconds, all attempts included; 0 or absent: no limit"`
	CellTimeoutSeconds float64 `json:"cell_timeout_seconds,omitempty" yaml:"cell_timeout_seconds,omitempty" jsonschema:"stop the run (TIMED_OUT) when one cell runs longer than this many seconds; 0 or absent: no limit"`
	MaxAttempts        int     `json:"max_attempts,omitempty" yaml:"max_attempts,omitempty" jsonschema:"attempts in all when the kernel dies or the worker is lost (default 3); a cell exception is not retried unless retry_on_error is true"`
	RetryOnError       bool    `json:"retry_on_error,omitempty" yaml:"retry_on_error,omitempty" jsonschema:"also retry when a cell raises an exception (default false)"`
	// MemoryLimit bounds the kernel's and runner's memory: bytes or a size
	// with a unit (512MiB, 4GB); "" = none.
	MemoryLimit string `json:"memory_limit,omitempty" yaml:"memory_limit,omitempty" jsonschema:"memory cap for the kernel and runner together, such as 512MiB or 4GB; a run that exceeds it ends FAILED with MemoryLimitExceeded; absent: no limit"`
	// CPULimit bounds their CPU time in cores per second; 0 = none.
	CPULimit float64 `json:"cpu_limit,omitempty" yaml:"cpu_limit,omitempty" jsonschema:"CPU cap in cores, such as 0.5 or 2; absent: no limit"`
	// NoTypeCheck passes values whose type does not fit the parameters
	// cell, with a warning on the run for each, instead of refusing the
	// run. A batch's own no_type_check applies to every node as well.
	NoTypeCheck bool `json:"no_type_check,omitempty" yaml:"no_type_check,omitempty" jsonschema:"pass parameter values whose type does not fit the parameters cell (a string for an int...) instead of refusing the run; the run's warnings list them. Default false"`
	// Checkpoint is auto, every_cell or off ("" = auto).
	Checkpoint string `json:"checkpoint,omitempty" yaml:"checkpoint,omitempty" jsonschema:"when to save the kernel's variables between cells, so that a retried attempt (worker or kernel lost) and rerun_job with from_cell go on from there instead of from the first cell: auto (default: often enough to cost at most about 3% of the run time), every_cell, or off"`
	// CheckpointMaxSize caps one checkpoint: bytes or a size with a unit.
	CheckpointMaxSize string `json:"checkpoint_max_size,omitempty" yaml:"checkpoint_max_size,omitempty" jsonschema:"largest checkpoint to keep, such as 2GiB (default 8GiB); past it no checkpoint is saved and the run's warnings say so"`
}

// Job says how a job is found, scheduled and reported. A batch has its own
// (jobs.BatchRequest), given once for all its nodes.
type Job struct {
	Labels []string `json:"labels,omitempty" yaml:"labels,omitempty" jsonschema:"free-form labels to find the job with list_jobs later"`
	// Priority is high, normal or low ("" = normal).
	Priority string `json:"priority,omitempty" yaml:"priority,omitempty" jsonschema:"high, normal (default) or low: when runs wait for a worker slot, waiting high-priority runs start first"`
	// NotifyURL receives a signed JSON POST when the run ends.
	NotifyURL string `json:"notify_url,omitempty" yaml:"notify_url,omitempty" jsonschema:"http(s) URL that receives a signed JSON POST (job id, status, output path, duration, error summary) when the run ends; its host must be in the server's allow-list (MILLRACE_NOTIFY_ALLOW)"`
}

// Direct holds what only the CLI and Go callers of the job service set. The
// MCP tools and batch files have never taken these, and their schemas and
// keys stay as clients know them.
type Direct struct {
	// Env is merged over the worker's allow-listed environment for the
	// kernel; names are checked against the operator's allow-list.
	Env map[string]string `json:"env,omitempty" yaml:"env,omitempty"`
	// AllowExtraParameters accepts names the parameters cell does not
	// declare (papermill injects them anyway).
	AllowExtraParameters bool `json:"allow_extra_parameters,omitempty" yaml:"allow_extra_parameters,omitempty"`
}

// Each calls fn with the JSON name and the addressable value of every
// option held by the struct that v points to, in the runopts groups it
// embeds (a jobs.StartRequest, an MCP tool's arguments, a batch node, or a
// group itself). Fields of that struct outside the groups are not options
// and are skipped. The CLI binds its flags with it, and the tests fill
// every option with it, so that neither keeps a list of the options.
func Each(v any, fn func(name string, field reflect.Value)) {
	s := reflect.ValueOf(v).Elem()
	if isGroup(s.Type()) {
		eachField(s, fn)
		return
	}
	for i := 0; i < s.NumField(); i++ {
		if f := s.Type().Field(i); f.Anonymous && isGroup(f.Type) {
			eachField(s.Field(i), fn)
		}
	}
}

// Names lists the JSON names of the options that v (as for Each) holds:
// the keys a batch node takes, for the CLI's help.
func Names(v any) []string {
	var names []string
	Each(v, func(name string, _ reflect.Value) { names = append(names, name) })
	return names
}

// isGroup reports whether t is one of this package's option groups.
func isGroup(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && t.PkgPath() == reflect.TypeFor[Options]().PkgPath()
}

func eachField(s reflect.Value, fn func(string, reflect.Value)) {
	for i := 0; i < s.NumField(); i++ {
		name, _, _ := strings.Cut(s.Type().Field(i).Tag.Get("json"), ",")
		fn(name, s.Field(i))
	}
}
