// Package jobs is the job service that the MCP server and the CLI share:
// start a notebook run, read its status, logs and outputs, cancel it, list
// jobs. Every answer comes from Temporal (the workflow execution, its
// pending activity and heartbeat) and from the run's files in the data dir,
// so it is the same from any process, before and after restarts. A status
// answer may come from this process's recent read of Temporal, at most
// MaxStatusStaleness old (statuscache.go).
package jobs

import (
	"errors"
	"fmt"

	failurepb "go.temporal.io/api/failure/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

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

// Service answers job requests. It keeps recent status answers
// (statuscache.go), so a Service is shared by pointer, never copied: build
// another one for another client or other roots.
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
	// DataConverter decodes the payloads the service reads from history
	// (a run's input, heartbeat details, memos): Client's own, which
	// decrypts them when a codec key is configured
	// (connect.DataConverter). nil: Temporal's default.
	DataConverter converter.DataConverter
	// AllowEnv is the operator's allow-list of run env names
	// (config.Config.AllowEnv); the worker checks it too.
	AllowEnv runenv.Patterns
	// Python runs nbconvert for OutputHTML: the --python or
	// MILLRACE_PYTHON the bundled runner is given (config.Config.Python);
	// "" for the one it would find.
	Python string

	// statuses holds recent status answers (statuscache.go).
	statuses statusCache
}

// failureMessage is a failure's message as its activity wrote it: a
// client with a codec key stores it sealed (connect: EncodedAttributes).
func (s *Service) failureMessage(f *failurepb.Failure) string {
	f = proto.Clone(f).(*failurepb.Failure)
	converter.DecodeCommonFailureAttributes(s.dc(), f)
	return f.GetMessage()
}

// dc is the converter that decodes what the service reads from history.
func (s *Service) dc() converter.DataConverter {
	if s.DataConverter != nil {
		return s.DataConverter
	}
	return converter.GetDefaultDataConverter()
}
