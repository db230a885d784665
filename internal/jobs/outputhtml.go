package jobs

import (
	"context"
	"errors"
	"path/filepath"

	"millrace/internal/nbhtml"
	"millrace/internal/rundir"
)

// OutputPage is a job's output notebook rendered as one HTML page
// (nbhtml): plots inline as data: URIs, no script.
type OutputPage struct {
	JobID      string `json:"job_id"`
	Status     string `json:"status"` // the job's status when its notebook was read
	OutputPath string `json:"output_path"`
	HTML       []byte `json:"-"`
	// Cached says the page came from the run's cache (runs/<job
	// id>/output.html), rendered before from the same notebook bytes.
	Cached bool `json:"cached"`
}

// OutputHTML renders a job's output notebook as it is now, through the
// cache in the run's directory: the notebook is read once, beneath its
// root (readOutputFile), and those bytes are both rendered and hashed, so
// a page never pairs with a notebook it was not made from. While the job
// runs, the page shows the cells executed so far.
func (s *Service) OutputHTML(ctx context.Context, jobID string) (OutputPage, error) {
	st, err := s.Status(ctx, jobID)
	if err != nil {
		return OutputPage{}, err
	}
	if st.OutputPath == "" {
		return OutputPage{}, userErrorf("job %s has no output notebook yet (status %s): it is written when the first cell starts", jobID, st.Status)
	}
	nb, err := s.readOutputFile(jobID, st.OutputPath, nbhtml.MaxNotebookBytes)
	if errors.Is(err, errNoOutputYet) {
		return OutputPage{}, userErrorf("job %s has no output notebook yet (status %s): it is written when the first cell starts", jobID, st.Status)
	}
	if err != nil {
		return OutputPage{}, err
	}
	title := filepath.Base(st.Notebook) + " · " + jobID
	r := nbhtml.Renderer{Python: s.Python}
	page, cached, err := r.Cached(ctx, nb, title, rundir.JobDir(s.DataDir, jobID))
	if err != nil {
		if ctx.Err() != nil {
			return OutputPage{}, ctx.Err()
		}
		return OutputPage{}, userErrorf("job %s: render its output notebook as HTML: %v", jobID, err)
	}
	return OutputPage{JobID: jobID, Status: st.Status, OutputPath: st.OutputPath, HTML: page, Cached: cached}, nil
}
