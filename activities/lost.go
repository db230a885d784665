package activities

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"go.temporal.io/sdk/activity"

	"millrace/internal/executor"
	"millrace/internal/failure"
	"millrace/internal/rundir"
	"millrace/workflows"
)

// closeLostAttempts records the end of earlier attempts that never recorded
// their own: their worker died or was cut off, and Temporal started this
// attempt after the heartbeat timeout. On this host it also kills whatever
// such an attempt left running (a kernel whose runner was SIGKILLed may
// outlive it by a second or two).
func (a *Activities) closeLostAttempts(ctx context.Context, jobID string, attempt int) {
	var last workflows.Progress
	hasLast := activity.HasHeartbeatDetails(ctx) && activity.GetHeartbeatDetails(ctx, &last) == nil
	for n := 1; n < attempt; n++ {
		dir := rundir.AttemptDir(a.DataDir, jobID, n)
		if _, err := os.Stat(dir); err != nil {
			continue
		}
		if _, ok, _ := rundir.ReadEnd(dir); ok {
			continue
		}
		killed := executor.KillMarked(jobID + "." + strconv.Itoa(n))
		if err := a.limitSupport().Remove(jobID + "." + strconv.Itoa(n)); err != nil {
			a.logger().Warn("a lost attempt's cgroup could not be removed", "job", jobID, "attempt", n, "err", err)
		}
		msg := "the worker running this attempt stopped heartbeating (killed, lost its host, or hung)"
		if hasLast && last.Attempt == n && last.CellsTotal > 0 {
			msg += fmt.Sprintf(" at cell %d/%d", min(last.CellsDone+1, last.CellsTotal), last.CellsTotal)
		}
		msg += fmt.Sprintf("; attempt %d took over", attempt)
		if killed > 0 {
			msg += fmt.Sprintf(" and killed %d leftover process(es)", killed)
		}
		end := rundir.AttemptEnd{Attempt: n, EndedAt: time.Now(), Outcome: string(failure.KindLost), Message: msg, Retried: true}
		if hasLast && last.Attempt == n {
			end.ResumedFromCell = last.ResumedFromCell
		}
		_ = rundir.WriteEnd(dir, end)
		a.logger().Warn("earlier attempt was lost", "job", jobID, "attempt", n, "detail", msg)
	}
}
