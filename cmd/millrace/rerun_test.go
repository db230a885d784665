package main

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"

	"millrace/internal/jobs"
)

// TestRerunFlags parses millrace rerun's command lines without a server:
// --from-cell and --allow-partial reach the service's options, and
// meaningless combinations are usage errors.
func TestRerunFlags(t *testing.T) {
	c := newCLI(&bytes.Buffer{}, &bytes.Buffer{}, nil)
	for _, tc := range []struct {
		args []string
		want jobs.RerunOptions
	}{
		{[]string{"nb-1"}, jobs.RerunOptions{}},
		{[]string{"nb-1", "--from-cell", "12"}, jobs.RerunOptions{FromCell: 12}},
		{[]string{"--from-cell=3", "--allow-partial", "batch-1"}, jobs.RerunOptions{FromCell: 3, AllowPartial: true}},
	} {
		a, err := parseRerun(c, rerunCommand(), tc.args)
		if err != nil || a.opts != tc.want || a.id != tc.args[0] && !strings.HasPrefix(a.id, "batch-") {
			t.Errorf("%q: %+v %v, want %+v", tc.args, a, err, tc.want)
		}
	}
	for args, want := range map[string]string{
		"nb-1 --from-cell -2":     "--from-cell -2",
		"nb-1 --allow-partial":    "--allow-partial applies to a rerun with --from-cell",
		"nb-1 --from-cell twelve": "invalid value",
		"--from-cell 3":           "missing ID",
		"nb-1 nb-2 --from-cell 3": "unexpected argument",
	} {
		_, err := parseRerun(c, rerunCommand(), strings.Fields(args))
		var u *usageError
		if !errors.As(err, &u) || !strings.Contains(u.msg, want) {
			t.Errorf("%q: %v, want a usage error saying %q", args, err, want)
		}
	}
	var help bytes.Buffer
	if _, err := parseRerun(newCLI(&help, &bytes.Buffer{}, nil), rerunCommand(), []string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	for _, w := range []string{"--from-cell N", "--allow-partial", "millrace rerun nb-... --from-cell 12", "a large N: each node's latest"} {
		if !strings.Contains(help.String(), w) {
			t.Errorf("help does not say %q:\n%s", w, help.String())
		}
	}
}
