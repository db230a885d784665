// Package jobs is the job service that the MCP server and the CLI share:
// start a notebook run, read its status, logs and outputs, cancel it, list
// jobs. Every answer comes from Temporal (the workflow execution, its
// pending activity and heartbeat) and from the run's files in the data dir,
// so it is the same from any process, before and after restarts.
package jobs

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/client"

	"millrace/internal/paths"
	"millrace/internal/runenv"
)

// UserError is a problem with the caller's request: a bad path, an unknown
// job, a bad parameter. Its message says what to do. Front ends show it as
// it is (an MCP tool error, a CLI message); any other error is plumbing.
type UserError struct{ Msg string }

func (e *UserError) Error() string { return e.Msg }

func userErrorf(format string, args ...any) error {
	return &UserError{Msg: fmt.Sprintf(format, args...)}
}

// IsUserError reports whether err is (or wraps) a UserError.
func IsUserError(err error) bool {
	var u *UserError
	return errors.As(err, &u)
}

// Service answers job requests.
type Service struct {
	Client    client.Client
	Namespace string
	TaskQueue string
	DataDir   string
	Roots     *paths.Roots
	// MaxParameterBytes caps one parameter value's JSON size; 0 means
	// notebook.MaxParameterBytes.
	MaxParameterBytes int
	// NotifyAllow lists the hosts notify_url may name (config.NotifyAllow).
	NotifyAllow []string
	// AllowEnv is the operator's allow-list of run env names
	// (config.Config.AllowEnv); the worker checks it too.
	AllowEnv runenv.Patterns
}
