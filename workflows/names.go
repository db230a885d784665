// Package workflows holds millrace's deterministic workflow code and the
// names and types shared by everything that talks to those workflows. It
// must not do I/O, read the clock or start goroutines except through the
// workflow API.
package workflows

// TaskQueue is the default task queue for workflows and activities.
const TaskQueue = "millrace"

// Registered names. They are part of every recorded history: renaming one
// breaks running and replayed workflows.
const (
	NotebookRunWorkflow = "NotebookRun"
	BatchWorkflow       = "Batch"
	RunNotebookActivity = "RunNotebook"
	// NotifyActivity delivers a completion webhook.
	NotifyActivity = "DeliverNotification"
)

// Task queue priority keys (Temporal's PriorityKey: 1 is dispatched first;
// the server's default for unset is the middle of 5 levels).
const (
	PriorityHigh   = 1
	PriorityNormal = 3
	PriorityLow    = 5
)

// Job id prefixes: a job id is the workflow id, a prefix plus a UUID, so it
// is unique and says what it is.
const (
	RunIDPrefix   = "nb-"
	BatchIDPrefix = "batch-"
)

// Search attributes. The dev server registers them at every start and the
// worker registers them on a real cluster. SQLite visibility supports custom
// attributes of these types.
const (
	AttrNotebook = "MillraceNotebook" // Keyword: absolute notebook path
	AttrStatus   = "MillraceStatus"   // Keyword: final status, set when the run ends
	AttrLabels   = "MillraceLabels"   // KeywordList
	AttrBatchID  = "MillraceBatchId"  // Keyword: the batch a run belongs to
	AttrKind     = "MillraceKind"     // Keyword: "run" or "batch"
)

// SearchAttributeTypes maps each attribute to its type name, as
// `temporal server start-dev --search-attribute NAME=TYPE` takes it.
var SearchAttributeTypes = map[string]string{
	AttrNotebook: "Keyword",
	AttrStatus:   "Keyword",
	AttrLabels:   "KeywordList",
	AttrBatchID:  "Keyword",
	AttrKind:     "Keyword",
}

// Job statuses as clients see them. They are derived from the workflow
// execution (and its pending activity), never from attributes alone, so a
// terminated run never shows RUNNING.
const (
	StatusPending   = "PENDING" // waiting for a worker slot, or for its next attempt
	StatusRunning   = "RUNNING"
	StatusSucceeded = "SUCCEEDED"
	StatusFailed    = "FAILED"
	StatusCanceled  = "CANCELED"
	StatusTimedOut  = "TIMED_OUT"
)

// Failure types: the application error types the activity and workflows
// return. Clients and the retry policy match on them.
const (
	ErrCellError         = "NotebookCellError"
	ErrCellTimeout       = "CellTimeout"
	ErrKernelDied        = "KernelDied"
	ErrKernelStartFailed = "KernelStartFailed"
	ErrNoSuchKernel      = "NoSuchKernel"
	ErrNoTranslator      = "NoTranslator"
	ErrBadInput          = "BadInput"
	ErrExecutorExited    = "ExecutorExited"
	ErrStorage           = "StorageError"
	// ErrMemoryLimit: the runner or its kernel exceeded the run's
	// memory_limit and was killed. Not retried: the next attempt would
	// need the same memory.
	ErrMemoryLimit = "MemoryLimitExceeded"

	// Workflow-level failures of NotebookRun.
	ErrRunFailed   = "RunFailed"
	ErrRunTimedOut = "RunTimedOut"
)

// PriorityNames maps the priority names that requests use to keys.
var PriorityNames = map[string]int{"high": PriorityHigh, "normal": PriorityNormal, "low": PriorityLow}

// PriorityName is the name of a priority key; 0 (unset) is "normal".
func PriorityName(key int) string {
	for name, k := range PriorityNames {
		if k == key {
			return name
		}
	}
	return "normal"
}
