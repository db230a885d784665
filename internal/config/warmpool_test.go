package config

import (
	"slices"
	"testing"
)

func TestWarmPoolFlags(t *testing.T) {
	t.Setenv("MILLRACE_WARM_POOL", "")
	t.Setenv("MILLRACE_WARM_IMPORTS", "")
	cases := []struct {
		args    []string
		env     string
		off     bool
		imports []string
	}{
		{nil, "", false, nil},
		{[]string{"--warm-pool=false"}, "", true, nil},
		{[]string{"--warm-pool"}, "false", false, nil},
		{nil, "false", true, nil},
		{nil, "0", true, nil},
		{[]string{"--warm-imports", "numpy, pandas"}, "", false, []string{"numpy", "pandas"}},
	}
	for _, c := range cases {
		t.Setenv("MILLRACE_WARM_POOL", c.env)
		cfg, err := parseWorker(t, c.args...)
		if err != nil || cfg.WarmPoolOff != c.off || !slices.Equal(cfg.WarmImports, c.imports) {
			t.Errorf("%q with MILLRACE_WARM_POOL=%q: off %v, imports %q (%v); want off %v, imports %q", c.args, c.env, cfg.WarmPoolOff, cfg.WarmImports, err, c.off, c.imports)
		}
	}
	t.Setenv("MILLRACE_WARM_POOL", "")
	t.Setenv("MILLRACE_WARM_IMPORTS", "scipy")
	if cfg, err := parseWorker(t); err != nil || !slices.Equal(cfg.WarmImports, []string{"scipy"}) {
		t.Errorf("MILLRACE_WARM_IMPORTS=scipy: imports %q (%v)", cfg.WarmImports, err)
	}
	if _, err := parseWorker(t, "--warm-pool=maybe"); err == nil {
		t.Error("--warm-pool=maybe was accepted")
	}
}
