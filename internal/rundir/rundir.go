// Package rundir is the on-disk layout of a run under the data dir, shared
// by the worker that writes it and the MCP server and CLI that read it:
//
//	runs/<job id>/output.ipynb              default output notebook
//	runs/<job id>/attempt-<n>/log.data|idx  the attempt's log (logstore)
//	runs/<job id>/attempt-<n>/params.json   the typed parameters given
//	runs/<job id>/attempt-<n>/result.json   the bundled runner's outcome
//	runs/<job id>/attempt-<n>/end.json      why the attempt ended
package rundir

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"millrace/internal/atomicfile"
	"millrace/internal/filemode"
	"millrace/internal/logstore"
)

// JobDir returns the directory of a job.
func JobDir(dataDir, jobID string) string {
	return filepath.Join(dataDir, "runs", jobID)
}

// DefaultOutput is where a run's output notebook goes when the caller names
// none: inside the run's own directory, so it never overwrites the input.
func DefaultOutput(dataDir, jobID string) string {
	return filepath.Join(JobDir(dataDir, jobID), "output.ipynb")
}

// AttemptDir returns the directory of attempt n of a job.
func AttemptDir(dataDir, jobID string, n int) string {
	return logstore.AttemptDir(JobDir(dataDir, jobID), n)
}

// Files of an attempt directory.
const (
	ParamsFile = "params.json"
	ResultFile = "result.json"
	EndFile    = "end.json"
)

// AttemptEnd records why an attempt ended. The attempt writes it itself; for
// an attempt whose worker died, the next attempt writes it.
type AttemptEnd struct {
	Attempt  int       `json:"attempt"`
	EndedAt  time.Time `json:"ended_at"`
	Outcome  string    `json:"outcome"` // a failure.Kind, or the failure.Type of an attempt that failed before its executor ran
	Message  string    `json:"message"`
	ExitCode *int      `json:"exit_code,omitempty"`
	Retried  bool      `json:"retried"`
	// ResumedFromCell is the input-notebook index of the first cell the
	// attempt ran after restoring a checkpoint; 0 when it did not resume.
	ResumedFromCell int `json:"resumed_from_cell,omitempty"`
}

// WriteEnd stores the end record of an attempt atomically.
func WriteEnd(dir string, e AttemptEnd) error {
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, EndFile), b, filemode.File)
}

// ReadEnd reads an attempt's end record; ok is false when there is none.
func ReadEnd(dir string) (e AttemptEnd, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, EndFile))
	if errors.Is(err, os.ErrNotExist) {
		return e, false, nil
	}
	if err != nil {
		return e, false, err
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return e, false, fmt.Errorf("read %s: %w", filepath.Join(dir, EndFile), err)
	}
	return e, true, nil
}
