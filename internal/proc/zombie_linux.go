package proc

import (
	"bytes"
	"fmt"
	"os"
)

// zombie reads the state in /proc/<pid>/stat (Z or X, after the
// parenthesised command name); a process whose stat cannot be read is
// gone.
func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z' || b[i+2] == 'X'
}
