package limits

import (
	"errors"
	"strings"
	"testing"

	"millrace/internal/portable"
)

// TestUnenforcedHostRefusesLimits: on a host that enforces neither limit
// (macOS), both are refused with ErrUnsupported and a message that says
// why and what to do, a run without limits gets no group, and the status
// line says memory limits are refused.
func TestUnenforcedHostRefusesLimits(t *testing.T) {
	s := unenforced("darwin")
	if _, err := s.NewGroup("job.1", Spec{Memory: 512 << 20}); !errors.Is(err, ErrUnsupported) ||
		!strings.HasPrefix(err.Error(), "memory_limit 512 MiB: cannot be enforced on this worker: darwin has no cgroups") ||
		!strings.HasSuffix(err.Error(), "run it without memory_limit, or on a Linux worker") {
		t.Fatalf("memory_limit on darwin: %v", err)
	}
	if _, err := s.NewGroup("job.1", Spec{CPU: 0.5}); !errors.Is(err, ErrUnsupported) ||
		!strings.HasPrefix(err.Error(), "cpu_limit 0.5: cannot be enforced on this worker") ||
		!strings.HasSuffix(err.Error(), "run it without cpu_limit, or on a Linux worker that has such a cgroup") {
		t.Fatalf("cpu_limit on darwin: %v", err)
	}
	if g, err := s.NewGroup("job.1", Spec{}); g != nil || err != nil {
		t.Fatalf("no limits on darwin: %v %v, want no group and no error", g, err)
	}
	if got := s.String(); !strings.HasPrefix(got, "memory_limit: refused (nothing here enforces one); cpu_limit: refused") || !strings.Contains(got, "darwin has no cgroups") {
		t.Fatalf("String() = %q", got)
	}
	if s.Isolates() || !strings.Contains(s.Unisolated(), "darwin has no cgroups") {
		t.Fatalf("Isolates %v, Unisolated %q", s.Isolates(), s.Unisolated())
	}
}

// TestPortableDetect: with the portable supervisor, Linux detects no
// cgroups (and makes none): memory by rlimit, cpu_limit refused, runs in
// no cgroup of their own, all said in the status line.
func TestPortableDetect(t *testing.T) {
	if !portable.Enabled() {
		t.Skipf("runs with %s=%s (make test's second pass)", portable.EnvVar, portable.Portable)
	}
	s := Detected()
	if s.Memory != Rlimit || s.CPU != "" || s.Isolates() || len(s.Parents()) != 0 {
		t.Fatalf("portable Support %+v, want rlimit memory, no cpu, no cgroups", s)
	}
	if got := s.String(); !strings.Contains(got, "memory_limit: rlimit (RLIMIT_DATA per process); cpu_limit: refused") || !strings.Contains(got, "MILLRACE_SUPERVISOR=portable") {
		t.Fatalf("String() = %q", got)
	}
	if _, err := s.NewGroup("job.1", Spec{CPU: 1}); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "portable supervisor") {
		t.Fatalf("cpu_limit with the portable supervisor: %v", err)
	}
}
