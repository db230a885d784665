package workflows

import "time"

// MaxBatchNodes caps a batch. Each node costs its batch about ten history
// events (child started, completed, timers of the scheduler), and Temporal
// fails a history past 51,200 events and warns from 10,240: 500 nodes stay
// well inside the warning.
const MaxBatchNodes = 500

// DefaultMaxParallel is how many nodes of a batch run at once by default.
const DefaultMaxParallel = 4

// BatchInput is the input of the Batch workflow: nodes fully resolved by
// the job service (paths, outputs, references), so the workflow only
// schedules. Spec keeps the caller's request for reruns.
type BatchInput struct {
	Name        string      `json:"name,omitempty"`
	Nodes       []BatchNode `json:"nodes"`
	MaxParallel int         `json:"max_parallel,omitempty"` // 0 = DefaultMaxParallel
	FailFast    bool        `json:"fail_fast,omitempty"`
	Labels      []string    `json:"labels,omitempty"`
	// Spec is the request as the caller gave it (JSON), kept so that a
	// rerun can resolve it again.
	Spec []byte `json:"spec,omitempty"`
	// Round counts reruns: 1 for the first run of the batch.
	Round int `json:"round,omitempty"`
	// Priority is the batch's task queue priority key; its nodes carry
	// the same in their RunInput. 0 = normal.
	Priority int `json:"priority,omitempty"`
	// NotifyURL receives a signed JSON POST when the batch ends.
	NotifyURL string `json:"notify_url,omitempty"`
}

// BatchNode is one node: a notebook run with dependencies.
type BatchNode struct {
	ID        string   `json:"id"`
	JobID     string   `json:"job_id"` // the child workflow's id
	DependsOn []string `json:"depends_on,omitempty"`
	Run       RunInput `json:"run"`
	// Reused marks a node that succeeded in an earlier round: it is not
	// run again and its output stands.
	Reused bool `json:"reused,omitempty"`
}

// Node statuses beyond the run statuses.
const (
	NodeWaiting = "WAITING" // dependencies not done yet
	NodeSkipped = "SKIPPED" // a dependency did not succeed
)

// NodeState is a node's state in a batch.
type NodeState struct {
	ID        string     `json:"id"`
	JobID     string     `json:"job_id"`
	Status    string     `json:"status"`
	DependsOn []string   `json:"depends_on,omitempty"`
	Notebook  string     `json:"notebook"`
	Output    string     `json:"output_path"`
	Reused    bool       `json:"reused,omitempty"`
	Error     *RunError  `json:"error,omitempty"`
	StartedAt *time.Time `json:"started_at,omitempty"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
}

// BatchState is the batch's state: the result when it ends, the answer to
// QueryBatchState while it runs.
type BatchState struct {
	Name   string      `json:"name,omitempty"`
	Status string      `json:"status"`
	Round  int         `json:"round"`
	Nodes  []NodeState `json:"nodes"`
}

// QueryBatchState is the query that returns a running batch's BatchState.
const QueryBatchState = "batch_state"
