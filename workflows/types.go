package workflows

import (
	"encoding/json"
	"fmt"
	"time"

	"millrace/internal/failure"
	"millrace/internal/notebook"
)

// RunInput is the input of NotebookRun and of its activity. Add fields, never
// change or remove one: running histories hold it.
type RunInput struct {
	Notebook string `json:"notebook"` // absolute path
	// Output is the output notebook's absolute path. The job service fills
	// in the default (inside the run's own directory).
	Output string `json:"output"`
	// Parameters is a JSON object of typed values, kept as raw JSON so that
	// 2 stays an int and 2.0 a float all the way to the kernel.
	Parameters json.RawMessage   `json:"parameters,omitempty"`
	Kernel     string            `json:"kernel,omitempty"` // "" = the notebook's own
	Cwd        string            `json:"cwd"`              // the kernel's working directory
	Env        map[string]string `json:"env,omitempty"`    // merged over the worker's environment
	// Timeout bounds the whole run, all attempts included; 0 means
	// DefaultRunTimeout.
	Timeout     time.Duration `json:"timeout,omitempty"`
	CellTimeout time.Duration `json:"cell_timeout,omitempty"` // 0 = none
	MaxAttempts int           `json:"max_attempts,omitempty"` // 0 = DefaultMaxAttempts
	// RetryOnError makes a cell exception retryable like a dead kernel.
	RetryOnError bool     `json:"retry_on_error,omitempty"`
	Labels       []string `json:"labels,omitempty"`
	BatchID      string   `json:"batch_id,omitempty"`
	NodeID       string   `json:"node_id,omitempty"`
	// HeartbeatTimeout is how long a silent worker is trusted before the
	// attempt counts as lost; 0 means DefaultHeartbeatTimeout.
	HeartbeatTimeout time.Duration `json:"heartbeat_timeout,omitempty"`
	// Priority is the run's Temporal task queue priority key (PriorityHigh,
	// PriorityNormal, PriorityLow); 0 means normal. Waiting high-priority
	// runs are dispatched to workers first.
	Priority int `json:"priority,omitempty"`
	// NotifyURL receives a signed JSON POST when the run ends; "" = none.
	NotifyURL string `json:"notify_url,omitempty"`
	// MemoryLimit bounds the memory of the runner and its kernel together,
	// in bytes; 0 = none.
	MemoryLimit int64 `json:"memory_limit,omitempty"`
	// CPULimit bounds their CPU use in cores (1.5 = one and a half cores
	// of time per second); 0 = none.
	CPULimit float64 `json:"cpu_limit,omitempty"`
	// Warnings are the job service's, made when the run was started
	// (parameters passed with type checks off); the result repeats them.
	Warnings []string `json:"warnings,omitempty"`
	// DefaultOutput marks Output as the default one in the run's directory
	// under the data dir, which is no root's: the search attributes that
	// say where a job's files are leave it out.
	DefaultOutput bool `json:"default_output,omitempty"`
	// Roots are the roots of the server that started the run. The worker
	// resolves the run's files beneath them (and beneath its own roots)
	// right before it starts the executor, so a folder swapped for a
	// symlink while the run waited is refused even where the worker's
	// own roots are wider. Empty: the worker's roots alone.
	Roots []string `json:"roots,omitempty"`
	// Checkpoint is the run's checkpoint policy: CheckpointAuto (also
	// ""), CheckpointEveryCell or CheckpointOff.
	Checkpoint string `json:"checkpoint,omitempty"`
	// CheckpointMaxBytes caps one checkpoint's size; 0 means
	// DefaultCheckpointMaxBytes. A namespace over it is not saved, and the
	// run's warnings say so.
	CheckpointMaxBytes int64 `json:"checkpoint_max_bytes,omitempty"`
	// Resume makes the run start from an earlier job's checkpoint (a
	// rerun with from_cell) instead of from its first cell.
	Resume *Resume `json:"resume,omitempty"`
}

// Checkpoint policies (RunInput.Checkpoint).
const (
	// CheckpointAuto saves after a cell once enough run time has passed
	// since the last save for its cost to stay a small share of the run.
	CheckpointAuto      = "auto"
	CheckpointEveryCell = "every_cell"
	CheckpointOff       = "off"
)

// DefaultCheckpointMaxBytes is the size cap of one checkpoint.
const DefaultCheckpointMaxBytes = 8 << 30

// Checkpoint is one complete saved kernel namespace. Its hash is recorded
// in Temporal (heartbeat details, attempt and run results) when the save
// completes, and a checkpoint is restored only when the file still has it:
// loading a pickle runs code.
type Checkpoint struct {
	// Cell is the input-notebook index of the last cell whose effects the
	// checkpoint holds; a resume runs from the next cell.
	Cell      int       `json:"cell"`
	Attempt   int       `json:"attempt"`
	Path      string    `json:"path"`
	SHA256    string    `json:"sha256"`
	SizeBytes int64     `json:"size_bytes"`
	SavedAt   time.Time `json:"saved_at"`
	// Partial is set when names could not be saved; Skipped lists them
	// (the first MaxSkippedNames of them) and SkippedCount counts them all.
	Partial      bool     `json:"partial,omitempty"`
	Skipped      []string `json:"skipped,omitempty"`
	SkippedCount int      `json:"skipped_count,omitempty"`
}

// CheckpointSummary is a checkpoint as status and webhooks show it.
type CheckpointSummary struct {
	// Cell is the input-notebook index of the last cell it holds (the
	// index cell errors give): a resume goes on from the next one.
	Cell      int       `json:"cell"`
	Attempt   int       `json:"attempt"`
	SavedAt   time.Time `json:"saved_at"`
	SizeBytes int64     `json:"size_bytes"`
	// Partial checkpoints left out the names in Skipped (SkippedCount in
	// all): they could not be saved.
	Partial      bool     `json:"partial,omitempty"`
	Skipped      []string `json:"skipped,omitempty"`
	SkippedCount int      `json:"skipped_count,omitempty"`
}

// Summary is the checkpoint as status and webhooks show it; nil for none.
func (c *Checkpoint) Summary() *CheckpointSummary {
	if c == nil {
		return nil
	}
	return &CheckpointSummary{Cell: c.Cell, Attempt: c.Attempt, SavedAt: c.SavedAt, SizeBytes: c.SizeBytes,
		Partial: c.Partial, Skipped: c.Skipped, SkippedCount: c.SkippedCount}
}

// MaxSkippedNames bounds the names a Checkpoint lists, so that heartbeat
// details stay small.
const MaxSkippedNames = 20

// Resume is where a rerun with from_cell starts: a checkpoint of an earlier
// job of the same notebook, with the same parameters.
type Resume struct {
	// Job is the job whose checkpoint this is.
	Job string `json:"job"`
	// FromCell is the cell the caller asked to go on from; the checkpoint
	// is the latest one taken before it.
	FromCell   int        `json:"from_cell"`
	Checkpoint Checkpoint `json:"checkpoint"`
	// AllowPartial lets a checkpoint that left names out be restored.
	AllowPartial bool `json:"allow_partial,omitempty"`
}

// Defaults for RunInput's zero values.
const (
	DefaultMaxAttempts = 3
	// DefaultRunTimeout is long: an activity needs some bound, and a
	// training run may take days. Lost workers are found by the heartbeat
	// timeout, not by this.
	DefaultRunTimeout       = 14 * 24 * time.Hour
	DefaultHeartbeatTimeout = 15 * time.Second
)

// RunError says why a run did not succeed.
type RunError struct {
	Type    failure.Type          `json:"type"`
	Message string                `json:"message"`
	Cell    *notebook.CellFailure `json:"cell,omitempty"`
}

// Progress is the activity's heartbeat payload: small (a few hundred bytes),
// because the server keeps the latest one and every status call reads it.
type Progress struct {
	Attempt       int       `json:"attempt"`
	CellsDone     int       `json:"cells_done"`
	CellsTotal    int       `json:"cells_total"`
	CurrentCell   int       `json:"current_cell"` // 0-based among code cells; -1 none
	CurrentSource string    `json:"current_source,omitempty"`
	LogLines      int64     `json:"log_lines"`
	LogBytes      int64     `json:"log_bytes"`
	Executor      string    `json:"executor"`
	OutputPath    string    `json:"output_path"`
	StartedAt     time.Time `json:"started_at"`
	// Checkpoint is the last complete checkpoint of the run so far: the
	// next attempt resumes from it.
	Checkpoint *Checkpoint `json:"checkpoint,omitempty"`
	// ResumedFromCell is the input-notebook index of the first cell this
	// attempt ran after restoring a checkpoint; 0 when it did not resume.
	ResumedFromCell int `json:"resumed_from_cell,omitempty"`
	// ResumedAt is the same cell counted among code cells from 1, as the
	// progress line counts ("resumed at cell 12/40").
	ResumedAt int `json:"resumed_at,omitempty"`
}

// AttemptResult is what one activity attempt reports: its result when the
// notebook ran to its end, and the details of its failure otherwise.
type AttemptResult struct {
	Attempt         int       `json:"attempt"`
	Executor        string    `json:"executor"`
	Kernel          string    `json:"kernel"`
	KernelDefaulted bool      `json:"kernel_defaulted,omitempty"`
	OutputPath      string    `json:"output_path"`
	CellsExecuted   int       `json:"cells_executed"`
	CellsTotal      int       `json:"cells_total"`
	Warnings        []string  `json:"warnings,omitempty"`
	StartedAt       time.Time `json:"started_at"`
	EndedAt         time.Time `json:"ended_at"`
	Error           *RunError `json:"error,omitempty"`
	// ResumedFromCell is as in Progress.
	ResumedFromCell int `json:"resumed_from_cell,omitempty"`
	// Checkpoints are the attempt's complete checkpoints still on disk,
	// oldest first, with the one it resumed from.
	Checkpoints []Checkpoint `json:"checkpoints,omitempty"`
}

// RunResult is NotebookRun's result, also carried as the details of its
// failure when the run does not succeed.
type RunResult struct {
	Status        string    `json:"status"`
	Notebook      string    `json:"notebook"`
	OutputPath    string    `json:"output_path"`
	Executor      string    `json:"executor,omitempty"`
	Kernel        string    `json:"kernel,omitempty"`
	CellsExecuted int       `json:"cells_executed"`
	CellsTotal    int       `json:"cells_total"`
	Attempts      int       `json:"attempts"`
	StartedAt     time.Time `json:"started_at"`
	EndedAt       time.Time `json:"ended_at"`
	Duration      float64   `json:"duration_seconds"`
	Warnings      []string  `json:"warnings,omitempty"`
	Error         *RunError `json:"error,omitempty"`
	// Checkpoints are the last attempt's, as in AttemptResult; a rerun
	// with from_cell picks one of them.
	Checkpoints []Checkpoint `json:"checkpoints,omitempty"`
}

// Notification records a completion webhook's delivery.
type Notification struct {
	URL       string    `json:"url"`
	Status    string    `json:"status"` // NotifyDelivered or NotifyFailed
	Attempts  int       `json:"attempts"`
	Error     string    `json:"error,omitempty"` // the last attempt's, when it failed
	Delivered time.Time `json:"delivered_at,omitempty"`
}

// Notification statuses. While a delivery is being retried the job's status
// says NotifyPending with the last attempt's error. The Notify workflow's
// result is the final record.
const (
	NotifyPending   = "PENDING"
	NotifyDelivered = "DELIVERED"
	NotifyFailed    = "FAILED"
)

// String says how the delivery went in one line, for status texts.
func (n *Notification) String() string {
	s := n.Status + " " + n.URL
	switch {
	case n.Status == NotifyDelivered:
		s += fmt.Sprintf(" (attempt %d)", n.Attempts)
	case n.Status == NotifyPending && n.Error == "":
		s += " (sending)"
	case n.Error != "":
		s += ": " + n.Error
	}
	return s
}
