package jobs

import (
	"context"
	"errors"

	"millrace/internal/logstore"
	"millrace/internal/rundir"
)

// LogsRequest asks for a page of a job's log.
type LogsRequest struct {
	JobID  string `json:"job_id"`
	Cursor string `json:"cursor,omitempty"`
	Limit  int    `json:"limit,omitempty"`
	Stream string `json:"stream,omitempty"` // stdout, stderr or both
	// Tail returns the last Tail lines instead of reading from Cursor.
	Tail int `json:"tail,omitempty"`
}

// Limits of a logs page. A page stops at MaxLogLines lines or
// MaxLogPageBytes of text, whichever comes first, so a page of long lines
// stays a page (2000 lines of 64 KiB would be 128 MiB); its next_cursor
// goes on from the first line left out.
const (
	DefaultLogLines = 200
	MaxLogLines     = 2000
	MaxLogPageBytes = logstore.DefaultPageBytes
)

// Logs is a page of a job's log.
type Logs struct {
	JobID      string          `json:"job_id"`
	Lines      []logstore.Line `json:"lines"`
	NextCursor string          `json:"next_cursor"`
	// Done is true when the run has ended and nothing is left to read.
	Done   bool   `json:"done"`
	Status string `json:"status"`
}

// Logs reads a page of a job's log. Reading while the run writes never
// skips or repeats a line: pass NextCursor back to continue.
func (s *Service) Logs(ctx context.Context, req LogsRequest) (Logs, error) {
	streams, ok := logstore.ParseStreams(req.Stream)
	if !ok {
		return Logs{}, userErrorf("stream %q: use stdout, stderr or both", req.Stream)
	}
	limit := req.Limit
	if limit <= 0 {
		limit = DefaultLogLines
	}
	if limit > MaxLogLines {
		limit = MaxLogLines
	}
	cur, err := logstore.ParseCursor(req.Cursor)
	if errors.Is(err, logstore.ErrBadCursor) {
		return Logs{}, userErrorf("%v", err)
	}
	if req.Tail < 0 || req.Tail > MaxLogLines {
		return Logs{}, userErrorf("tail %d: must be between 1 and %d", req.Tail, MaxLogLines)
	}
	// The status first: if the run has ended before the read, a read that
	// reaches the end has read everything.
	st, err := s.Status(ctx, req.JobID)
	if err != nil {
		return Logs{}, err
	}
	dir := rundir.JobDir(s.DataDir, req.JobID)
	var page logstore.Page
	if req.Tail > 0 {
		page, err = logstore.Tail(dir, logstore.PageLimit{Lines: req.Tail, Bytes: MaxLogPageBytes}, streams)
	} else {
		page, err = logstore.Read(dir, cur, logstore.PageLimit{Lines: limit, Bytes: MaxLogPageBytes}, streams)
	}
	if err != nil {
		return Logs{}, err
	}
	if page.Lines == nil {
		page.Lines = []logstore.Line{}
	}
	return Logs{
		JobID:      req.JobID,
		Lines:      page.Lines,
		NextCursor: page.Next.String(),
		Done:       st.Ended() && page.AtEnd,
		Status:     st.Status,
	}, nil
}
