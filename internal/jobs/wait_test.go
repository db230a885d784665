package jobs

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.temporal.io/api/serviceerror"
)

// TestTransient: a wait goes on after a status read that timed out or found
// the server unavailable, and stops on anything else or when the caller's
// own context is done.
func TestTransient(t *testing.T) {
	live := context.Background()
	done, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		ctx  context.Context
		err  error
		want bool
	}{
		{live, fmt.Errorf("describe nb-1: %w", context.DeadlineExceeded), true},
		{live, fmt.Errorf("describe nb-1: %w", serviceerror.NewUnavailable("restarting")), true},
		{live, fmt.Errorf("describe nb-1: %w", serviceerror.NewDeadlineExceeded("slow")), true},
		{live, &UserError{Msg: "no job nb-1"}, false},
		{live, errors.New("permission denied"), false},
		{done, fmt.Errorf("describe nb-1: %w", context.DeadlineExceeded), false},
	} {
		if got := transient(c.ctx, c.err); got != c.want {
			t.Errorf("transient(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
