// Package executor runs one notebook execution as a child process: papermill
// when it is installed, otherwise the project's bundled runner, which follows
// papermill's command line and observable contract. It knows nothing about
// Temporal: the activity drives it.
package executor

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"millrace/internal/atomicfile"
	"millrace/internal/executor/runner"
	"millrace/internal/filemode"
)

// Names of the executors, as recorded in a run's result.
const (
	Papermill = "papermill"
	Bundled   = "millrace-runner"
)

// Choices for Config.Kind.
const (
	ChooseAuto      = "auto"
	ChoosePapermill = "papermill"
	ChooseBundled   = "bundled"
)

// DefaultPython is the interpreter for the bundled runner. Debian's
// python3-nbclient and python3-ipykernel install into the system Python,
// which is often not the first python3 on PATH (pyenv, conda, venvs).
const DefaultPython = "/usr/bin/python3"

// DefaultStartTimeout bounds how long a kernel may take to start.
const DefaultStartTimeout = 60 * time.Second

// ErrNoExecutor means neither papermill nor a usable Python was found.
var ErrNoExecutor = errors.New("no executor: install papermill, or python3 with nbclient and ipykernel (Debian: apt-get install python3-nbclient python3-ipykernel)")

// Config chooses and locates the executor.
type Config struct {
	Kind      string // auto (default), papermill or bundled
	Python    string // interpreter for the bundled runner; default DefaultPython, else python3 on PATH
	Papermill string // papermill executable; default: papermill on PATH
}

// Executor is a resolved executor, ready to build command lines.
type Executor struct {
	Name string // Papermill or Bundled
	Path string // the program to start
	// script is the bundled runner's path once written (Bundled only).
	script string
	// bootstrap is the file of code that installs the checkpoint library
	// in a kernel (runner.CheckpointBootstrap), written beside script.
	bootstrap string
	// Warm, when set, turns the bundled runner's command lines into ones
	// that fork it from a warm process (warmpool.Pool); nil: every run
	// starts cold. Papermill always starts cold.
	Warm Attacher
}

// Attacher rewrites the bundled runner's cold command line (program
// first) into one that starts the same run warm, or returns it unchanged.
type Attacher interface {
	Attach(cold []string) []string
}

// Script returns the bundled runner's script path ("" for papermill).
func (e Executor) Script() string { return e.script }

// Resolve picks the executor. With Kind auto, papermill wins when it is on
// PATH (users who have it expect it), else the bundled runner. The bundled
// runner's script is written under dir (the worker's data dir) so that the
// child runs a file, never a string through a shell.
func (c Config) Resolve(dir string) (Executor, error) {
	kind := c.Kind
	if kind == "" {
		kind = ChooseAuto
	}
	switch kind {
	case ChoosePapermill, ChooseAuto:
		path := c.Papermill
		if path == "" {
			path = "papermill"
		}
		if p, err := exec.LookPath(path); err == nil {
			return Executor{Name: Papermill, Path: p}, nil
		} else if kind == ChoosePapermill {
			return Executor{}, fmt.Errorf("executor papermill: %w", err)
		}
		fallthrough
	case ChooseBundled:
		py, err := c.python()
		if err != nil {
			return Executor{}, err
		}
		script, err := WriteScript(dir, "millrace_runner", runner.Script)
		if err != nil {
			return Executor{}, err
		}
		bootstrap, err := WriteScript(dir, "millrace_checkpoint_bootstrap", []byte(runner.CheckpointBootstrap()))
		if err != nil {
			return Executor{}, err
		}
		return Executor{Name: Bundled, Path: py, script: script, bootstrap: bootstrap}, nil
	}
	return Executor{}, fmt.Errorf("unknown executor %q: use auto, papermill or bundled", kind)
}

func (c Config) python() (string, error) {
	if c.Python != "" {
		p, err := exec.LookPath(c.Python)
		if err != nil {
			return "", fmt.Errorf("python %q: %w", c.Python, err)
		}
		return p, nil
	}
	if _, err := os.Stat(DefaultPython); err == nil {
		return DefaultPython, nil
	}
	if p, err := exec.LookPath("python3"); err == nil {
		return p, nil
	}
	return "", ErrNoExecutor
}

// WriteScript stores an embedded script (the runner, the checkpoint
// bootstrap, the warm pool's) under dir, named by its content so that workers of different
// versions sharing a data dir never overwrite each other's script mid-run.
func WriteScript(dir, name string, content []byte) (string, error) {
	sum := sha256.Sum256(content)
	path := filepath.Join(dir, "runner", name+"-"+hex.EncodeToString(sum[:6])+".py")
	if b, err := os.ReadFile(path); err == nil && string(b) == string(content) {
		return path, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), filemode.Dir); err != nil {
		return "", fmt.Errorf("write runner: %w", err)
	}
	if err := atomicfile.Write(path, content, filemode.File); err != nil {
		return "", fmt.Errorf("write runner: %w", err)
	}
	return path, nil
}

// Spec is one execution of one notebook.
type Spec struct {
	Input        string        // notebook to run (absolute)
	Output       string        // output notebook (absolute)
	ParamsFile   string        // JSON object of typed parameters, "" for none
	Kernel       string        // kernel override, "" for the notebook's own
	Cwd          string        // the kernel's working directory
	CellTimeout  time.Duration // 0: none
	StartTimeout time.Duration // 0: DefaultStartTimeout
	ResultFile   string        // where the bundled runner writes its outcome

	// Checkpoints and resume: the bundled runner's alone (papermill gets
	// none of these flags). CheckpointDir is the attempt's checkpoint
	// folder, which the caller creates (0700); "" means no checkpoints.
	CheckpointDir      string
	Checkpoint         string // auto (also ""), every_cell or off
	CheckpointMaxBytes int64  // 0: no cap
	CheckpointKeep     int    // complete checkpoints to keep; 0: the runner's default (3)
	Resume             *Resume
}

// Resume tells the bundled runner to restore a checkpoint and run the cells
// after its cell.
type Resume struct {
	Checkpoint string // absolute path of a cell-K.ckpt
	SHA256     string // the hash recorded when it completed
	Cell       int    // K, the input-notebook index of its last cell
	// AllowPartial restores a checkpoint that left names out.
	AllowPartial bool
	// Required fails the run (failure.KindResumeFailed) when it cannot
	// resume, instead of running from the first cell with a warning.
	Required bool
}

// Args returns the command line (program first). Parameters always go
// through a file of typed values (papermill -f), never as -p strings, and
// the kernel and working directory are always explicit.
func (e Executor) Args(s Spec) []string {
	var args []string
	if e.Name == Bundled {
		args = append(args, e.Path, e.script, s.Input, s.Output)
	} else {
		args = append(args, e.Path, s.Input, s.Output, "--no-progress-bar", "--log-output")
	}
	if s.ParamsFile != "" {
		args = append(args, "-f", s.ParamsFile)
	}
	if s.Kernel != "" {
		args = append(args, "-k", s.Kernel)
	}
	args = append(args, "--cwd", s.Cwd)
	if s.CellTimeout > 0 {
		args = append(args, "--execution-timeout", strconv.Itoa(int(max(1, s.CellTimeout.Round(time.Second)/time.Second))))
	}
	start := s.StartTimeout
	if start <= 0 {
		start = DefaultStartTimeout
	}
	args = append(args, "--start-timeout", strconv.Itoa(int(start/time.Second)))
	if e.Name == Bundled && s.ResultFile != "" {
		args = append(args, "--result-file", s.ResultFile)
	}
	if e.Name == Bundled {
		args = append(args, e.checkpointArgs(s)...)
		if e.Warm != nil {
			args = e.Warm.Attach(args)
		}
	}
	return args
}

// checkpointArgs are the bundled runner's checkpoint and resume flags.
func (e Executor) checkpointArgs(s Spec) []string {
	var args []string
	if s.CheckpointDir != "" {
		args = append(args, "--checkpoint-dir", s.CheckpointDir)
		if s.Checkpoint != "" {
			args = append(args, "--checkpoint", s.Checkpoint)
		}
		if s.CheckpointMaxBytes > 0 {
			args = append(args, "--checkpoint-max-bytes", strconv.FormatInt(s.CheckpointMaxBytes, 10))
		}
		if s.CheckpointKeep > 0 {
			args = append(args, "--checkpoint-keep", strconv.Itoa(s.CheckpointKeep))
		}
	}
	if r := s.Resume; r != nil {
		args = append(args, "--resume-checkpoint", r.Checkpoint, "--resume-sha256", r.SHA256,
			"--resume-cell", strconv.Itoa(r.Cell))
		if r.AllowPartial {
			args = append(args, "--allow-partial")
		}
		if r.Required {
			args = append(args, "--resume-required")
		}
	}
	if len(args) > 0 {
		args = append(args, "--checkpoint-bootstrap", e.bootstrap)
	}
	return args
}
