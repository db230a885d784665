// Package filemode decides who may read what millrace writes. By default
// only the user: directories 0700, files 0600, and a umask of 077 so that
// what child processes write (the output notebook, a kernel's files)
// follows. Runs hold code, parameters and results, and the dev service's
// folder holds the credential that lets a process run code as the user.
//
// MILLRACE_FILE_MODE=group lets the user's group read run folders, logs and
// outputs (0750, 0640, umask 027), for a team sharing a data dir. The dev
// service's folder, its token and the Temporal database stay private in
// both modes.
package filemode

import (
	"fmt"
	"os"
	"syscall"
)

// Env names the setting.
const Env = "MILLRACE_FILE_MODE"

// Modes of what only the user may ever read, whatever Env says.
const (
	PrivateDir  os.FileMode = 0o700
	PrivateFile os.FileMode = 0o600
)

// Dir and File are the modes of run folders and files, set by Apply.
var (
	Dir  = PrivateDir
	File = PrivateFile
)

// Apply reads Env, sets Dir and File, and sets the process umask to match.
// A bad value is an error and changes nothing.
func Apply() error {
	switch v := os.Getenv(Env); v {
	case "", "private":
		Dir, File = PrivateDir, PrivateFile
		syscall.Umask(0o077)
	case "group":
		Dir, File = 0o750, 0o640
		syscall.Umask(0o027)
	default:
		return fmt.Errorf("%s=%q: want private (the default: only you can read run files) or group (your group can read them too)", Env, v)
	}
	return nil
}

// ApplyOrExit is Apply for a main function: it is the first thing every
// millrace binary does, before it creates any file or child, and a bad
// setting ends the process with status 2.
func ApplyOrExit() {
	if err := Apply(); err != nil {
		fmt.Fprintln(os.Stderr, "millrace:", err)
		os.Exit(2)
	}
}
