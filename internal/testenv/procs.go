package testenv

import (
	"os"
	"slices"
	"strings"

	"millrace/internal/proc"
)

// The process table is read through a few primitives per operating system
// (procs_linux.go reads /proc; procs_darwin.go asks sysctl and ps): pids,
// args and environ, plus Alive, MemoryMB and CPUSeconds.

// Process is one entry of the process table.
type Process struct {
	PID     int
	Cmdline string
}

// ProcessesWithEnv lists live processes (not zombies) whose environment
// contains the exact entry kv ("NAME=value"). Tests mark each run's
// environment with a unique value and look for what is left behind.
func ProcessesWithEnv(kv string) []Process {
	var out []Process
	for _, pid := range pids() {
		if pid == os.Getpid() {
			continue
		}
		if env, ok := environ(pid); !ok || !slices.Contains(env, kv) {
			continue
		}
		args, _ := cmdArgs(pid)
		out = append(out, Process{PID: pid, Cmdline: strings.TrimSpace(strings.Join(args, " "))})
	}
	return out
}

// Alive reports whether pid is a live process (not gone, not a zombie).
func Alive(pid int) bool { return proc.Alive(pid) }

// ProcessWithArg is the first live process one of whose arguments
// contains s; 0 when there is none.
func ProcessWithArg(s string) int {
	for _, pid := range pids() {
		args, ok := cmdArgs(pid)
		if ok && slices.ContainsFunc(args, func(a string) bool { return strings.Contains(a, s) }) {
			return pid
		}
	}
	return 0
}
