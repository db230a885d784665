package notebook

import (
	"errors"
	"fmt"
)

// Sentinel errors, so callers (the MCP tools, the CLI) can turn a bad input
// into an actionable message instead of a generic failure.
var (
	// ErrNotNotebook means the file is not nbformat JSON at all: a user
	// passed a .py file, a truncated download or some other document.
	ErrNotNotebook = errors.New("not a Jupyter notebook")

	// ErrUnsupportedVersion means the file is a notebook in a format this
	// reader does not understand (nbformat 3 and older). Test for it with
	// errors.Is; the concrete error is a *VersionError.
	ErrUnsupportedVersion = errors.New("unsupported nbformat version")

	// ErrNoCodeCells means the notebook has nothing to execute. Parse still
	// returns the notebook with it, so callers that only read can go on.
	ErrNoCodeCells = errors.New("notebook has no code cells: nothing to run")
)

// VersionError reports the nbformat major version of a notebook that is not
// version 4, with the command that converts it, because the fix is one
// command away and the user should not have to look it up.
type VersionError struct {
	Major int
}

func (e *VersionError) Error() string {
	if e.Major > 4 {
		return fmt.Sprintf("nbformat %d is newer than this reader understands (4)", e.Major)
	}
	return fmt.Sprintf("nbformat %d is not supported; convert it with `jupyter nbconvert --to notebook --nbformat 4`", e.Major)
}

// Is makes errors.Is(err, ErrUnsupportedVersion) true.
func (e *VersionError) Is(target error) bool { return target == ErrUnsupportedVersion }

// notNotebook wraps ErrNotNotebook with what was found instead.
func notNotebook(format string, args ...any) error {
	return fmt.Errorf("%w: %s; expected a JSON object with nbformat and cells", ErrNotNotebook, fmt.Sprintf(format, args...))
}
