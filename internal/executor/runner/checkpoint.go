package runner

import (
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// CheckpointScript is the kernel-side checkpoint library
// (millrace_checkpoint.py): it runs inside the notebook's kernel and saves
// or restores the user namespace between cells with dill. It is embedded so
// that the runner can send it to a kernel with nothing installed besides
// python3-dill.
//
//go:embed millrace_checkpoint.py
var CheckpointScript []byte

// CheckpointModule is the name the library is registered under in the
// kernel's sys.modules; calls reach it as __import__(CheckpointModule).
const CheckpointModule = "millrace_checkpoint"

// CheckpointBootstrap is the code to send once to a kernel, as a silent
// execute_request, to install the library. It is one expression statement
// inside an if, so that IPython displays nothing and binds no name (not even
// _): the user's namespace, which the checkpoints save, stays the notebook's
// own. The source is registered in linecache under a name no file has, so a
// traceback through the library shows its own lines, not those of a file
// that happens to share its name in the kernel's working directory.
// Installing twice keeps the first module, and with it any forked save still
// in flight.
func CheckpointBootstrap() string {
	src := base64.StdEncoding.EncodeToString(CheckpointScript)
	name := strconv.Quote(CheckpointModule)
	file := strconv.Quote("<" + CheckpointModule + ">")
	return fmt.Sprintf(`if True:
    (lambda sys, types, linecache, src: sys.modules.get(%[1]s) or (lambda m: (
        linecache.cache.__setitem__(%[2]s, (len(src), None, src.decode().splitlines(True), %[2]s)),
        exec(compile(src, %[2]s, "exec"), m.__dict__),
        sys.modules.__setitem__(%[1]s, m)))(types.ModuleType(%[1]s)))(
        __import__("sys"), __import__("types"), __import__("linecache"),
        __import__("base64").b64decode("%[3]s"))
`, name, file, src)
}

// Files the runner writes in its --checkpoint-dir besides the checkpoints
// (cell-K.ckpt, its sidecar cell-K.ckpt.json and the notebook snapshot
// cell-K.ipynb).
const (
	LatestFile = "latest.json" // the last complete checkpoint, a Checkpoint
	ResumeFile = "resume.json" // whether the run resumed, a ResumeOutcome
)

// Checkpoint is one complete checkpoint as the runner records it, in
// latest.json and in the result's "checkpoints". Cell is the input-notebook
// index of the last cell whose effects it holds: a resume runs from Cell+1.
type Checkpoint struct {
	Cell      int       `json:"cell"`
	Path      string    `json:"path"` // absolute path of cell-K.ckpt
	SHA256    string    `json:"sha256"`
	SizeBytes int64     `json:"size_bytes"`
	SavedAt   time.Time `json:"saved_at"` // when the runner learnt it was complete
	// Partial: names could not be saved. Skipped lists the first
	// MaxSkippedNames of them, sorted; SkippedCount counts them all.
	Partial      bool     `json:"partial"`
	Skipped      []string `json:"skipped"`
	SkippedCount int      `json:"skipped_count"`
	// Mode is "fork" (written by a child while the next cells ran) or
	// "inline". PauseSeconds is how long the kernel was held;
	// TotalSeconds how long the save took to complete.
	Mode         string  `json:"mode"`
	PauseSeconds float64 `json:"pause_seconds"`
	TotalSeconds float64 `json:"total_seconds"`
}

// MaxSkippedNames bounds Checkpoint.Skipped (MAX_SKIPPED_NAMES in the script).
const MaxSkippedNames = 20

// ResumeOutcome is resume.json: whether a run given a checkpoint resumed
// from it, written as soon as that is known (before the first cell runs).
type ResumeOutcome struct {
	Resumed   bool   `json:"resumed"`
	Cell      int    `json:"cell"`       // the checkpoint's cell, K
	FirstCell int    `json:"first_cell"` // K+1
	Reason    string `json:"reason,omitempty"`
}

// ReadLatest reads dir's latest.json; ok is false when there is none (no
// checkpoint completed yet).
func ReadLatest(dir string) (c Checkpoint, ok bool, err error) {
	ok, err = readJSON(filepath.Join(dir, LatestFile), &c)
	return c, ok, err
}

// ReadResumeOutcome reads dir's resume.json; ok is false when there is
// none (the run was not asked to resume, or stopped before it knew).
func ReadResumeOutcome(dir string) (r ResumeOutcome, ok bool, err error) {
	ok, err = readJSON(filepath.Join(dir, ResumeFile), &r)
	return r, ok, err
}

func readJSON(path string, v any) (bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	return true, nil
}
