package portable

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	cases := []struct {
		goos, v  string
		portable bool
		bad      bool
	}{
		{"linux", "", false, false},
		{"linux", "native", false, false},
		{"linux", "portable", true, false},
		{"darwin", "", true, false},
		{"darwin", "native", true, false},
		{"darwin", "portable", true, false},
		{"linux", "Portable", false, true},
		{"darwin", "cgroups", true, true},
	}
	for _, c := range cases {
		m := parse(c.goos, c.v)
		if m.portable != c.portable || (m.err != nil) != c.bad {
			t.Errorf("parse(%q, %q) = %+v, want portable %v, error %v", c.goos, c.v, m, c.portable, c.bad)
		}
		if m.err != nil && !strings.Contains(m.err.Error(), `set it to "portable"`) {
			t.Errorf("parse(%q, %q): error %q does not say what to set", c.goos, c.v, m.err)
		}
	}
}
