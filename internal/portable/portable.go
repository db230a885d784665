// Package portable decides, once per process, whether child processes are
// supervised and limited with Linux-only mechanisms (Pdeathsig, /proc,
// cgroups, prlimit) or with the portable ones that also work on macOS (a
// watchdog process, ps, rlimits, no CPU limit). macOS always uses the
// portable ones; on Linux, EnvVar selects them, so that the one test
// binary exercises, on Linux, the code a Mac runs.
package portable

import (
	"fmt"
	"os"
	"runtime"
	"sync"
)

// EnvVar selects the supervisor: "portable" makes Linux supervise and limit
// children as macOS does; unset, empty or "native" keeps Linux's own
// mechanisms. It is read once per process, at first use, so a process
// never mixes the two (a run started one way is stopped the same way).
const EnvVar = "MILLRACE_SUPERVISOR"

// Values of EnvVar.
const (
	Portable = "portable"
	Native   = "native"
)

type mode struct {
	portable bool
	err      error
}

var current = sync.OnceValue(func() mode {
	return parse(runtime.GOOS, os.Getenv(EnvVar))
})

func parse(goos, v string) mode {
	switch v {
	case "", Native:
		return mode{portable: goos != "linux"}
	case Portable:
		return mode{portable: true}
	}
	return mode{portable: goos != "linux", err: fmt.Errorf("%s=%q is not a supervisor: set it to %q (the mechanisms macOS has) or %q (the default), or unset it", EnvVar, v, Portable, Native)}
}

// Enabled reports whether this process uses the portable supervisor.
func Enabled() bool { return current().portable }

// Err is the error of an EnvVar value that names no supervisor. Whoever
// starts children refuses to while it is set, so a typo never silently
// picks one.
func Err() error { return current().err }

// Name says which supervisor this process uses, for status and logs.
func Name() string {
	if Enabled() {
		return Portable
	}
	return Native
}
