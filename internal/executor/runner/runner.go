// Package runner ships millrace's own papermill-compatible notebook runner,
// a Python script that the executor starts when papermill is not installed.
//
// The script runs on the system Python (DefaultPython) with Debian's
// python3-nbclient and python3-ipykernel, and mirrors papermill's command line:
//
//	python3 millrace_runner.py INPUT OUTPUT [-f PARAMS.json] [-k KERNEL] [--cwd DIR]
//	    [--execution-timeout SECONDS] [--start-timeout SECONDS] [--result-file FILE]
//	    [--checkpoint-dir DIR [--checkpoint auto|every_cell|off] [--checkpoint-max-bytes N]
//	     [--checkpoint-keep N] --checkpoint-bootstrap FILE]
//	    [--resume-checkpoint DIR/cell-K.ckpt --resume-sha256 HEX --resume-cell K
//	     [--allow-partial] [--resume-required]]
//
// Besides papermill's observable behaviour (injected-parameters cell,
// metadata.papermill, output notebook saved at every cell start and end,
// exit 1 on a cell error, 138 on a dead kernel), it writes a Result as JSON to
// --result-file on every path, so the caller learns why a run failed without
// parsing logs.
package runner

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"

	"millrace/internal/failure"
	"millrace/internal/notebook"
)

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

// Exit codes of the runner, EXIT_* in the script. Cell errors and dead
// kernels match papermill's, so the executor reads papermill's exits with them.
const (
	ExitOK          = 0
	ExitCellFailed  = 1   // a cell raised, or a cell passed --execution-timeout
	ExitSetup       = 3   // bad notebook, no such kernel, no parameter translator, a required resume failed
	ExitKernelStart = 4   // the kernel did not start (or not within --start-timeout)
	ExitInternal    = 5   // a bug or an unusable argument; see stderr
	ExitKernelDied  = 138 // papermill's code for a dead kernel
	ExitSIGINT      = 130 // canceled by SIGINT
	ExitSIGTERM     = 143 // canceled by SIGTERM
)

// Kinds are the failure kinds the runner writes to its result file; the
// script declares each as KIND_<VALUE>, and a test holds the two lists equal
// both ways. ReadResult refuses any other kind, so a runner and a worker that
// disagree show up as an unreadable result, not as a misfiled failure.
func Kinds() []failure.Kind {
	return []failure.Kind{
		failure.KindOK, failure.KindCellError, failure.KindCellTimeout, failure.KindKernelDied,
		failure.KindKernelStartFailed, failure.KindNoSuchKernel, failure.KindNoTranslator,
		failure.KindBadNotebook, failure.KindCanceled, failure.KindInternal, failure.KindResumeFailed,
	}
}

// Result is the JSON the runner writes to --result-file, so that a failed run
// can be reported (and classified for retries) from facts, not log scraping.
// It is the one Go model of that file: the executor reads it, and the
// runner's tests check it.
type Result struct {
	Status           string       `json:"status"` // "succeeded" or "failed"
	Kind             failure.Kind `json:"kind"`
	Message          string       `json:"message"`
	KernelName       string       `json:"kernel_name"`
	KernelDefaulted  bool         `json:"kernel_defaulted"` // the notebook named no kernel; python3 was used
	Language         string       `json:"language"`
	CellsTotal       int          `json:"cells_total"`    // code cells, the injected one included
	CellsExecuted    int          `json:"cells_executed"` // code cells that finished or failed
	Warnings         []string     `json:"warnings,omitempty"`
	AvailableKernels []string     `json:"available_kernels,omitempty"`
	// Cell is the cell the run stopped at: it failed, timed out or was
	// interrupted. The file gives a null index for the injected parameters
	// cell, which reads as 0 here; Message names that cell as such.
	Cell *notebook.CellFailure `json:"cell,omitempty"`
	// CellsRestored counts the code cells whose outputs a resume took from
	// the checkpoint's snapshot instead of running them; CellsExecuted
	// leaves them out.
	CellsRestored int `json:"cells_restored,omitempty"`
	// ResumedFromCell is the input-notebook index of the first cell after
	// the restored checkpoint (its cell + 1); nil when the run did not
	// resume.
	ResumedFromCell *int `json:"resumed_from_cell,omitempty"`
	// Checkpoints are the complete checkpoints the run kept
	// (--checkpoint-keep of them), oldest first.
	Checkpoints []Checkpoint `json:"checkpoints,omitempty"`
}

// ReadResult reads a result file. ok is false when there is none: the
// runner died before it could write one.
func ReadResult(path string) (res Result, ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Result{}, false, nil
	}
	if err != nil {
		return Result{}, false, fmt.Errorf("read runner result: %w", err)
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return Result{}, false, fmt.Errorf("read runner result %s: %w", path, err)
	}
	if !slices.Contains(Kinds(), res.Kind) {
		return Result{}, false, fmt.Errorf("read runner result %s: unknown kind %q", path, res.Kind)
	}
	return res, true, nil
}
