package jobs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"millrace/internal/beneath"
	"millrace/internal/notebook"
	"millrace/internal/paths"
	"millrace/internal/rundir"
)

// errNoOutputYet: the output notebook does not exist (yet).
var errNoOutputYet = errors.New("no output notebook yet")

// readOutputFile reads a job's output notebook, opened beneath its root at
// this moment: the default output beneath the run's own directory, any
// other beneath the root it was checked against at start. A file since
// replaced by a symlink out of the root, or by anything but a regular
// file, is refused without following it: the answer names neither the
// target nor anything of its content. max bounds the bytes read.
func (s *Service) readOutputFile(jobID, p string, max int64) ([]byte, error) {
	var f *os.File
	var err error
	if p == rundir.DefaultOutput(s.DataDir, jobID) {
		f, err = beneath.Open(rundir.JobDir(s.DataDir, jobID), p)
	} else {
		f, err = s.Roots.Open(p)
	}
	var b []byte
	if err == nil {
		b, err = readBounded(f, max)
	}
	switch {
	case err == nil:
		return b, nil
	case errors.Is(err, fs.ErrNotExist):
		return nil, errNoOutputYet
	case errors.Is(err, beneath.ErrEscapes), errors.Is(err, beneath.ErrNotRegular), errors.Is(err, paths.ErrOutsideRoots), errors.Is(err, errTooBig):
		return nil, userErrorf("job %s: its output notebook %s is not served: %v", jobID, p, reason(err))
	}
	return nil, fmt.Errorf("job %s: read its output notebook: %w", jobID, err)
}

var errTooBig = errors.New("too big")

// readBounded reads an open file whole, refusing one of more than max
// bytes (max <= 0: no bound), and closes it.
func readBounded(f *os.File, max int64) ([]byte, error) {
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if max > 0 && st.Size() > max {
		return nil, fmt.Errorf("%w: %d bytes, more than the %d one read returns", errTooBig, st.Size(), max)
	}
	b := make([]byte, st.Size())
	n, err := f.ReadAt(b, 0)
	if n == len(b) {
		err = nil
	}
	return b[:n], err
}

// reason says why an output is refused in words that name no other file.
func reason(err error) string {
	switch {
	case errors.Is(err, beneath.ErrEscapes), errors.Is(err, paths.ErrOutsideRoots):
		return "it has been replaced by a link that leads out of the allowed roots"
	case errors.Is(err, beneath.ErrNotRegular):
		return "it is no longer a regular file"
	}
	return err.Error()
}

// loadOutput parses a job's output notebook (see readOutputFile). Like
// notebook.Load, a notebook without code cells comes with ErrNoCodeCells.
func (s *Service) loadOutput(jobID, p string) (*notebook.Notebook, error) {
	b, err := s.readOutputFile(jobID, p, 0)
	if err != nil {
		return nil, err
	}
	return notebook.Parse(b)
}

// OutputNotebook is a job's output notebook file as it is now, with the
// status it was read under; at most MaxAttachmentBytes.
func (s *Service) OutputNotebook(st Status) ([]byte, error) {
	if st.OutputPath == "" {
		return nil, userErrorf("job %s has no output notebook yet (status %s): it is written when the first cell starts", st.JobID, st.Status)
	}
	b, err := s.readOutputFile(st.JobID, st.OutputPath, MaxAttachmentBytes)
	if errors.Is(err, errNoOutputYet) {
		return nil, userErrorf("job %s has no output notebook yet (status %s): it is written when the first cell starts", st.JobID, st.Status)
	}
	return b, err
}
