package security_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Finding the Python runs each candidate once (python -c "import nbclient,
// ipykernel"), and `python -c` puts its working directory first on
// sys.path. Another local user who plants nbclient.py in a folder anyone
// may write to (/tmp) would have that file run as whoever starts millrace
// there, unless the check runs elsewhere.
func TestPlantedNbclientIsNotImportedByPythonDiscovery(t *testing.T) {
	o := attack(t, "another user plants nbclient.py and ipykernel.py in a shared folder, to have them run by millrace's Python check when a user starts millrace there")
	shared := t.TempDir()
	if err := os.Chmod(shared, 0o1777); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(t.TempDir(), "planted-ran")
	for _, mod := range []string{"nbclient.py", "ipykernel.py"} {
		p := filepath.Join(shared, mod)
		code := "open(" + pyQuote(marker) + ", 'a').write(" + pyQuote(mod+" ") + ")\n"
		if err := os.WriteFile(p, []byte(code), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, 65534, 65534); err != nil { // nobody's file
			t.Fatal(err)
		}
	}
	// The planted files do run when a Python imports from that folder:
	// the attack is real.
	probe := exec.Command("/usr/bin/python3", "-c", "import nbclient")
	probe.Dir = shared
	if out, err := probe.CombinedOutput(); err != nil {
		t.Fatalf("python3 in the shared folder: %v\n%s", err, out)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatal("python -c in the shared folder did not import the planted nbclient.py: the test proves nothing")
	}
	os.Remove(marker)

	cmd := exec.Command(bin["millrace"], "dev", "status", "--data-dir", filepath.Join(t.TempDir(), "data"))
	cmd.Dir = shared
	cmd.Env = append(os.Environ(), "MILLRACE_PYTHON=", "TEMPORAL_ADDRESS=")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).ExitStatus() != 1 {
		t.Fatalf("millrace dev status (no service): %v\n%s", err, out)
	}
	if b, err := os.ReadFile(marker); err == nil {
		t.Fatalf("the planted module ran as this user: %s", b)
	}
	line := ""
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "python ") {
			line = strings.TrimSpace(l)
		}
	}
	if line == "" || strings.Contains(line, "none:") {
		t.Fatalf("dev status found no Python, so no check ran: %s", out)
	}
	o.saw("the check ran from /, not the shared folder; neither planted module ran; dev status chose %s", strings.TrimSpace(strings.TrimPrefix(line, "python")))
}

// pyQuote is s as a Python string literal.
func pyQuote(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", `\'`) + "'"
}
