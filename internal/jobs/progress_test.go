package jobs

import "testing"

// TestProgressString renders the progress line, with where a resumed
// attempt went on.
func TestProgressString(t *testing.T) {
	for _, tc := range []struct {
		p    Progress
		want string
	}{
		{Progress{}, "starting"},
		{Progress{CellsDone: 4, CellsTotal: 12, CurrentCell: 5}, "cell 5/12"},
		{Progress{CellsDone: 12, CellsTotal: 12}, "12/12 cells"},
		{Progress{CellsDone: 11, CellsTotal: 40, CurrentCell: 12, ResumedAt: 12}, "resumed at cell 12/40"},
		{Progress{CellsDone: 13, CellsTotal: 40, CurrentCell: 14, ResumedAt: 12}, "cell 14/40, resumed at cell 12/40"},
	} {
		if got := tc.p.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.p, got, tc.want)
		}
	}
}
