package config

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"millrace/internal/heartbeat"
)

// parseWorker parses a worker's flags as millrace-worker does.
func parseWorker(t *testing.T, args ...string) (*Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("millrace-worker", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var c Config
	c.Register(fs)
	c.RegisterWorker(fs)
	return &c, c.Parse(fs, append([]string{"--data-dir", t.TempDir()}, args...))
}

func TestHeartbeatEveryDefaultsByMode(t *testing.T) {
	t.Setenv("MILLRACE_HEARTBEAT_EVERY", "")
	t.Setenv("TEMPORAL_ADDRESS", "")
	for _, c := range []struct {
		args []string
		want time.Duration
	}{
		{nil, heartbeat.DefaultDev},
		{[]string{"--temporal-address", "temporal:7233"}, heartbeat.DefaultCluster},
		{[]string{"--temporal-address", "temporal:7233", "--heartbeat-every", "500ms"}, 500 * time.Millisecond},
		{[]string{"--heartbeat-every", "7s"}, 7 * time.Second},
	} {
		cfg, err := parseWorker(t, c.args...)
		if err != nil || cfg.HeartbeatEvery != c.want {
			t.Errorf("%q: heartbeat every %s (%v), want %s", c.args, cfg.HeartbeatEvery, err, c.want)
		}
	}
	t.Setenv("MILLRACE_HEARTBEAT_EVERY", "2s")
	if cfg, err := parseWorker(t); err != nil || cfg.HeartbeatEvery != 2*time.Second {
		t.Errorf("MILLRACE_HEARTBEAT_EVERY=2s: heartbeat every %s (%v), want 2s", cfg.HeartbeatEvery, err)
	}
	if cfg, err := parseWorker(t, "--heartbeat-every", "4s"); err != nil || cfg.HeartbeatEvery != 4*time.Second {
		t.Errorf("the flag over the environment: heartbeat every %s (%v), want 4s", cfg.HeartbeatEvery, err)
	}
}

func TestHeartbeatEveryRefusals(t *testing.T) {
	t.Setenv("MILLRACE_HEARTBEAT_EVERY", "")
	for flagValue, want := range map[string][]string{
		"0s":    {"--heartbeat-every 0s", "more than 0"},
		"-1s":   {"--heartbeat-every -1s", "more than 0"},
		"8s":    {"--heartbeat-every 8s", "heartbeat timeout", "15s", "less than 7.5s"},
		"30s":   {"--heartbeat-every 30s", "heartbeat timeout", "15s"},
		"often": {`--heartbeat-every "often"`, "not a duration"},
	} {
		_, err := parseWorker(t, "--temporal-address", "temporal:7233", "--heartbeat-every", flagValue)
		if err == nil {
			t.Errorf("--heartbeat-every %s: accepted", flagValue)
			continue
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("--heartbeat-every %s: %q does not say %q", flagValue, err, w)
			}
		}
	}
	t.Setenv("MILLRACE_HEARTBEAT_EVERY", "1m")
	if _, err := parseWorker(t); err == nil || !strings.Contains(err.Error(), "--heartbeat-every 1m0s") {
		t.Errorf("MILLRACE_HEARTBEAT_EVERY=1m: %v, want the refusal", err)
	}
}
