// Package runner ships millrace's own papermill-compatible notebook runner,
// a Python script that the executor starts when papermill is not installed.
//
// The script runs on the system Python (DefaultPython) with Debian's
// python3-nbclient and python3-ipykernel, and mirrors papermill's command line:
//
//	python3 millrace_runner.py INPUT OUTPUT [-f PARAMS.json] [-k KERNEL] [--cwd DIR]
//	    [--execution-timeout SECONDS] [--start-timeout SECONDS] [--result-file FILE]
//
// Besides papermill's observable behaviour (injected-parameters cell,
// metadata.papermill, output notebook saved at every cell start and end,
// exit 1 on a cell error, 138 on a dead kernel), it writes a Result as JSON to
// --result-file on every path, so the caller learns why a run failed without
// parsing logs.
package runner

import _ "embed"

// Script is the runner's source, embedded so that a worker needs nothing
// installed by hand besides the Python packages: write it to a file and run it
// with DefaultPython.
//
//go:embed millrace_runner.py
var Script []byte

// DefaultPython is the interpreter the runner is meant for: Debian's system
// Python, where python3-nbclient and python3-ipykernel install. A python3
// earlier on PATH (pyenv, a virtualenv) usually lacks nbclient.
const DefaultPython = "/usr/bin/python3"

// Exit codes of the runner. Cell errors and dead kernels match papermill's.
const (
	ExitOK          = 0
	ExitCellFailed  = 1   // a cell raised, or a cell passed --execution-timeout
	ExitSetup       = 3   // bad notebook, no such kernel, no parameter translator
	ExitKernelStart = 4   // the kernel did not start (or not within --start-timeout)
	ExitInternal    = 5   // a bug or an unusable argument; see stderr
	ExitKernelDied  = 138 // papermill's code for a dead kernel
	ExitSIGINT      = 130
	ExitSIGTERM     = 143
)

// Kind says how a run ended; it is Result.Kind.
type Kind string

// The kinds a runner reports. Only KindOK is a success.
const (
	KindOK                Kind = "ok"
	KindCellError         Kind = "cell_error"
	KindCellTimeout       Kind = "cell_timeout"
	KindKernelDied        Kind = "kernel_died"
	KindKernelStartFailed Kind = "kernel_start_failed"
	KindNoSuchKernel      Kind = "no_such_kernel"
	KindNoTranslator      Kind = "no_translator"
	KindBadNotebook       Kind = "bad_notebook"
	KindCancelled         Kind = "cancelled"
	KindInternal          Kind = "internal"
)

// Result is the JSON the runner writes to --result-file, so that a failed run
// can be reported (and classified for retries) from facts, not log scraping.
type Result struct {
	Status           string     `json:"status"` // "succeeded" or "failed"
	Kind             Kind       `json:"kind"`
	Message          string     `json:"message"`
	KernelName       string     `json:"kernel_name"`
	KernelDefaulted  bool       `json:"kernel_defaulted"` // the notebook named no kernel; python3 was used
	Language         string     `json:"language"`
	CellsTotal       int        `json:"cells_total"`    // code cells, the injected one included
	CellsExecuted    int        `json:"cells_executed"` // code cells that finished or failed
	Warnings         []string   `json:"warnings"`
	AvailableKernels []string   `json:"available_kernels"`
	Cell             *CellError `json:"cell"` // the cell that failed, timed out or was interrupted
}

// CellError describes the cell a run stopped at.
type CellError struct {
	// Index is the cell's position in the input notebook file as the user wrote
	// it; nil when the failing cell is the injected-parameters cell.
	Index *int `json:"index"`
	// OutputIndex is the cell's position in the output notebook, which has the
	// injected cell and papermill's error marker cells.
	OutputIndex    int      `json:"output_index"`
	ExecutionCount *int     `json:"execution_count"`
	SourceExcerpt  string   `json:"source_excerpt"`
	Ename          string   `json:"ename"`
	Evalue         string   `json:"evalue"`
	Traceback      []string `json:"traceback"` // ANSI colour codes stripped
}
