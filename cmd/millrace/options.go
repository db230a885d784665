package main

import (
	"fmt"
	"reflect"

	"millrace/internal/jobs"
	"millrace/internal/runopts"
	"millrace/workflows"
)

// optionFlag is millrace run's flag for one run option.
type optionFlag struct {
	name  string
	alias string // a one-letter form, "" for none
	usage string
	// seconds marks an option counted in seconds, which the flag takes as
	// a duration (90s, 2h) or a number of seconds.
	seconds bool
	// path marks a path, made absolute against the working directory.
	path bool
}

// parametersOption is the run option that -p, -r and -f give, in
// papermill's way, rather than one flag.
const parametersOption = "parameters"

// runOptionFlags are millrace run's flags for the run options
// (runopts.Options, Job and Direct), by the options' JSON names.
// bindRunOptions refuses to start without an entry for every option, so
// an option added to runopts cannot be left out of the CLI.
var runOptionFlags = map[string]optionFlag{
	"output_path":            {name: "output", path: true, usage: "the output notebook's `path` (default: the job's folder in the data dir)"},
	"kernel":                 {name: "kernel", alias: "k", usage: "the kernel `name` to use instead of the notebook's own"},
	"cwd":                    {name: "cwd", path: true, usage: "the kernel's working `dir`ectory (default: the notebook's folder)"},
	"timeout_seconds":        {name: "timeout", seconds: true, usage: "stop the run after this `duration`, all attempts included (90s, 2h, or seconds)"},
	"cell_timeout_seconds":   {name: "cell-timeout", seconds: true, usage: "fail a cell that runs longer than this `duration`"},
	"max_attempts":           {name: "max-attempts", usage: fmt.Sprintf("`attempts` before the run fails when its kernel dies or its worker is lost (default %d, at most %d)", workflows.DefaultMaxAttempts, jobs.MaxAttemptsLimit)},
	"retry_on_error":         {name: "retry-on-error", usage: "retry after a cell error too (a cell error fails the run at once otherwise)"},
	"memory_limit":           {name: "memory-limit", usage: "cap the kernel's memory at this `size` (512MiB, 4GB); the run fails with MemoryLimitExceeded past it"},
	"cpu_limit":              {name: "cpu-limit", usage: "cap the kernel's CPU at this many `cores` (0.5, 2)"},
	"no_type_check":          {name: "no-type-check", usage: "pass parameter values whose type does not fit the parameters cell (a string for an int), with a warning, instead of refusing the run"},
	"checkpoint":             {name: "checkpoint", usage: "save the kernel's variables between cells: `auto` (default), every_cell or off; a retried attempt and rerun --from-cell go on from the last one"},
	"checkpoint_max_size":    {name: "checkpoint-max-size", usage: "keep no checkpoint larger than this `size` (default 8GiB)"},
	"labels":                 {name: "label", usage: "a `label` to find the job by with millrace jobs --label (repeatable)"},
	"priority":               {name: "priority", usage: "`high`, normal or low: waiting high-priority runs start first"},
	"notify_url":             {name: "notify-url", usage: "POST a signed JSON message to this `url` when the run ends (its host must be in MILLRACE_NOTIFY_ALLOW)"},
	"env":                    {name: "env", usage: "an environment variable `NAME=value` for the kernel (repeatable)"},
	"allow_extra_parameters": {name: "allow-extra-params", usage: "pass parameters that the parameters cell does not declare (papermill does, with a warning)"},
}

// bindRunOptions gives f a flag for each run option of req (the fields of
// the runopts groups it embeds), each writing straight into req: the CLI
// keeps no second list of the options.
func bindRunOptions(f *flagSet, req *jobs.StartRequest) {
	runopts.Each(req, func(name string, v reflect.Value) {
		if name == parametersOption {
			return
		}
		of, ok := runOptionFlags[name]
		if !ok {
			panic("millrace run has no flag for the run option " + name + ": add it to runOptionFlags")
		}
		// bind registers the flag, and its one-letter form if it has one.
		bind := func(register func(name, usage string)) {
			register(of.name, of.usage)
			if of.alias != "" {
				register(of.alias, "short for --"+of.name)
			}
		}
		switch p := v.Addr().Interface().(type) {
		case *string:
			if of.path {
				bind(func(n, u string) { f.Var(pathFlag{p}, n, u) })
			} else {
				bind(func(n, u string) { f.StringVar(p, n, "", u) })
			}
		case *float64:
			if of.seconds {
				bind(func(n, u string) { f.Var(secondsFlag{p}, n, u) })
			} else {
				bind(func(n, u string) { f.Float64Var(p, n, 0, u) })
			}
		case *int:
			bind(func(n, u string) { f.IntVar(p, n, 0, u) })
		case *bool:
			bind(func(n, u string) { f.BoolVar(p, n, false, u) })
		case *[]string:
			bind(func(n, u string) { f.Var((*stringList)(p), n, u) })
		case *map[string]string:
			bind(func(n, u string) { f.Var(envFlag{p}, n, u) })
		default:
			panic(fmt.Sprintf("millrace run cannot take the run option %s (%s) as a flag", name, v.Type()))
		}
	})
}
