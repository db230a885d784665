package benchreport

import (
	"runtime"
	"strings"
	"testing"
)

// The machine line is read from the machine itself, on Linux and macOS
// alike: a published table never says "unknown" where the host can tell.
func TestReadMachine(t *testing.T) {
	m := ReadMachine()
	t.Log(m.String(), "; load", m.Load)
	if m.CPU == "unknown" && runtime.GOARCH == "amd64" || m.MemoryGiB <= 0 || m.Kernel == "unknown" || m.Cores != runtime.NumCPU() {
		t.Errorf("ReadMachine() = %+v: a field this host can tell is missing", m)
	}
	if f := strings.Fields(m.Load); len(f) != 3 {
		t.Errorf("load %q, want three averages", m.Load)
	}
	if want := map[string]string{"linux": "Linux", "darwin": "macOS"}[runtime.GOOS]; want != "" && (m.OS != want || !strings.Contains(m.String(), want+" "+m.Kernel)) {
		t.Errorf("OS %q in %q, want %s", m.OS, m.String(), want)
	}
}
