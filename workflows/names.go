package workflows

import "strings"

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
	// The folders a job's files are in (see PathScope): a server shows a
	// job only when all three lie inside its roots.
	AttrNotebookDir = "MillraceNotebookDir" // Keyword
	AttrOutputDir   = "MillraceOutputDir"   // Keyword; unset for the default output
	AttrCwd         = "MillraceCwd"         // Keyword
)

// SearchAttributeTypes maps each attribute to its type name, as
// `temporal server start-dev --search-attribute NAME=TYPE` takes it.
var SearchAttributeTypes = map[string]string{
	AttrNotebook: "Keyword",
	AttrStatus:   "Keyword",
	AttrLabels:   "KeywordList",
	AttrBatchID:  "Keyword",
	AttrKind:     "Keyword",

	AttrNotebookDir: "Keyword",
	AttrOutputDir:   "Keyword",
	AttrCwd:         "Keyword",
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

// ValidRunID reports whether id has the form of a run's id: RunIDPrefix and
// a UUID, or, for a batch's node, RunIDPrefix, the batch's UUID, the node
// id and the round (nb-<uuid>.<node>.<round>). A worker refuses any other
// id before using it in a path under its data dir.
func ValidRunID(id string) bool {
	rest, ok := strings.CutPrefix(id, RunIDPrefix)
	if !ok || len(rest) < 36 || !isUUID(rest[:36]) {
		return false
	}
	if rest = rest[36:]; rest == "" {
		return true
	}
	node, round, ok := strings.Cut(strings.TrimPrefix(rest, "."), ".")
	if !ok || !strings.HasPrefix(rest, ".") || node == "" || len(node) > 64 || round == "" || len(round) > 9 {
		return false
	}
	for _, r := range node {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	for _, r := range round {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// isUUID reports whether s is a UUID in its canonical lowercase text form.
func isUUID(s string) bool {
	for i, r := range s {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if r != '-' {
				return false
			}
		case !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f'):
			return false
		}
	}
	return len(s) == 36
}
