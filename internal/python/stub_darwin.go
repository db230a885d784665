package python

import "os/exec"

// appleStub skips macOS's /usr/bin/python3 when no developer tools are
// installed: it is then a stub that opens a dialog offering to install
// them instead of running anything. With the tools it is Apple's Python
// (3.9), checked like any other.
func appleStub(path string) string {
	if path != "/usr/bin/python3" {
		return ""
	}
	if exec.Command("/usr/bin/xcode-select", "-p").Run() != nil {
		return "Apple's stub (no Command Line Tools installed); not run"
	}
	return ""
}
