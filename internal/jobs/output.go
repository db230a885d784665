package jobs

import (
	"context"
	"errors"

	"millrace/internal/notebook"
)

// OutputRequest asks for the executed cells of a job's output notebook.
type OutputRequest struct {
	JobID    string `json:"job_id"`
	CellFrom int    `json:"cell_from,omitempty"`
	CellTo   int    `json:"cell_to,omitempty"` // exclusive; 0 = to the end
	MaxChars int    `json:"max_chars,omitempty"`
}

// DefaultOutputChars bounds each cell's text in an output answer.
const DefaultOutputChars = 2000

// Output is a job's output notebook, cell by cell.
type Output struct {
	JobID      string                `json:"job_id"`
	Status     string                `json:"status"`
	OutputPath string                `json:"output_path"`
	Cells      []notebook.CellReport `json:"cells"`
	Parameters map[string]any        `json:"parameters,omitempty"`
}

// Output reads the code cells of a job's output notebook, text truncated to
// a budget; rich outputs are listed, not inlined.
func (s *Service) Output(ctx context.Context, req OutputRequest) (Output, error) {
	st, err := s.Status(ctx, req.JobID)
	if err != nil {
		return Output{}, err
	}
	if req.CellFrom < 0 || req.CellTo < 0 {
		return Output{}, userErrorf("cell_from and cell_to are cell indices (0 or more)")
	}
	nb, err := s.loadOutput(req.JobID, st.OutputPath)
	if errors.Is(err, errNoOutputYet) {
		return Output{}, userErrorf("job %s has no output notebook yet (status %s): it is written when the first cell starts", req.JobID, st.Status)
	}
	if IsUserError(err) {
		return Output{}, err
	}
	if err != nil && !errors.Is(err, notebook.ErrNoCodeCells) {
		return Output{}, userErrorf("output notebook %s: %v", st.OutputPath, err)
	}
	maxChars := req.MaxChars
	if maxChars <= 0 {
		maxChars = DefaultOutputChars
	}
	to := req.CellTo
	if to == 0 {
		to = -1
	}
	out := Output{JobID: req.JobID, Status: st.Status, OutputPath: st.OutputPath, Cells: notebook.CellOutputs(nb, req.CellFrom, to, maxChars)}
	if pm := nb.Metadata.Papermill; pm != nil {
		out.Parameters = pm.Parameters
	}
	if out.Cells == nil {
		out.Cells = []notebook.CellReport{}
	}
	return out, nil
}

// Inspect reads a notebook inside the roots: kernel, language, cells and the
// parameters of its parameters cell.
func (s *Service) Inspect(path string) (*notebook.Inspection, error) {
	p, err := s.Roots.Existing(path)
	if err != nil {
		return nil, userErrorf("notebook: %v", err)
	}
	in, err := notebook.Inspect(p)
	if err != nil {
		return nil, userErrorf("notebook %s: %v", path, err)
	}
	return in, nil
}
