package jobs

import (
	"context"
	"time"
)

// cancelWait is how long Cancel waits for the run to reach CANCELED before
// it answers with the status it has.
const cancelWait = 15 * time.Second

// Cancel asks a running job to stop: its workflow is canceled, its activity
// stops the process tree (SIGTERM, grace, SIGKILL), and the job ends
// CANCELED. Canceling an ended job is an error; canceling twice is not.
func (s *Service) Cancel(ctx context.Context, jobID, reason string) (Status, error) {
	st, err := s.Status(ctx, jobID)
	if err != nil {
		return Status{}, err
	}
	if st.Ended() {
		return st, userErrorf("job %s already ended %s; there is nothing to cancel", jobID, st.Status)
	}
	if err := s.requestCancel(ctx, jobID, reason); err != nil {
		return Status{}, err
	}
	return s.WaitEnded(ctx, jobID, cancelWait, nil)
}
