package runenv

import (
	"slices"
	"strings"
	"testing"
)

func TestCheckNames(t *testing.T) {
	for _, name := range []string{"LD_PRELOAD", "LD_LIBRARY_PATH", "DYLD_INSERT_LIBRARIES", "MILLRACE_X", "MILLRACE_ATTEMPT_ID",
		"TEMPORAL_API_KEY", "PYTHONSTARTUP", "PYTHONHOME", "A=B", "A\x00B", "", "1ABC", "A B"} {
		if err := CheckNames(map[string]string{name: "v"}, nil); err == nil {
			t.Errorf("CheckNames(%q) = nil, want a refusal", name)
		}
	}
	for _, name := range []string{"MY_SETTING", "PYTHONPATH", "OMP_NUM_THREADS", "_x1"} {
		if err := CheckNames(map[string]string{name: "v"}, nil); err != nil {
			t.Errorf("CheckNames(%q) = %v, want ok", name, err)
		}
	}
	allow := Patterns{"APP_*", "SEED"}
	if err := CheckNames(map[string]string{"APP_MODE": "1", "SEED": "2"}, allow); err != nil {
		t.Errorf("allowed names refused: %v", err)
	}
	err := CheckNames(map[string]string{"OTHER": "1", "LD_PRELOAD": "x"}, allow)
	if err == nil || !strings.Contains(err.Error(), "OTHER") || !strings.Contains(err.Error(), "LD_PRELOAD") {
		t.Errorf("CheckNames outside the allow-list = %v, want both names refused", err)
	}
	if err := CheckNames(map[string]string{"MILLRACE_X": "1"}, Patterns{"*"}); err == nil {
		t.Error("an allow-list of * let MILLRACE_X through")
	}
}

func TestKernelNeverInheritsSecrets(t *testing.T) {
	worker := []string{
		"PATH=/usr/bin", "HOME=/home/u", "LC_ALL=C", "PYTHONPATH=/p", "PYTHONSTARTUP=/s.py",
		"MILLRACE_MCP_TOKEN=t", "MILLRACE_NOTIFY_SECRET=s", "TEMPORAL_TLS_KEY=k", "TEMPORAL_API_KEY=a",
		"AWS_SECRET_ACCESS_KEY=aws", "MY_DATA=d", "LD_PRELOAD=/evil.so",
	}
	env := Kernel(worker, Patterns{"MY_*", "MILLRACE_*", "TEMPORAL_API_KEY"}, map[string]string{"SEED": "1", "HOME": "/h2"})
	for _, want := range []string{"PATH=/usr/bin", "LC_ALL=C", "PYTHONPATH=/p", "MY_DATA=d", "SEED=1", "HOME=/h2", "PYTHONUNBUFFERED=1"} {
		if !slices.Contains(env, want) {
			t.Errorf("environment lacks %s: %v", want, env)
		}
	}
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "MILLRACE_") || strings.HasPrefix(name, "TEMPORAL_") || name == "AWS_SECRET_ACCESS_KEY" ||
			name == "PYTHONSTARTUP" || name == "LD_PRELOAD" || kv == "HOME=/home/u" {
			t.Errorf("environment has %s", kv)
		}
	}
}

func TestParse(t *testing.T) {
	if p, err := Parse("A, B_*,"); err != nil || !slices.Equal(p, Patterns{"A", "B_*"}) {
		t.Errorf("Parse = %v, %v", p, err)
	}
	if _, err := Parse("A=B"); err == nil {
		t.Error("Parse(A=B) = nil error")
	}
}
