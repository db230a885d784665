package activities

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"millrace/internal/beneath"
	"millrace/internal/config"
	"millrace/internal/paths"
	"millrace/internal/rundir"
	"millrace/internal/runenv"
	"millrace/workflows"
)

// The worker trusts no workflow input: anything that can start a workflow
// (the Temporal CLI or UI, a client with the namespace's credentials)
// bypasses the job service. So it checks the job id before using it in a
// path, the env names with the job service's own rule, and, right before
// the executor starts, resolves the notebook, the output folder and the
// working directory beneath its own roots: a folder swapped for a symlink
// while the run waited in the queue is refused, not followed.

// admitted holds what the admission opened: the output folder and the
// working directory, held open so the executor uses the folders that were
// checked, whatever happens to their paths later.
type admitted struct {
	outDir, cwd *os.File
}

func (ad *admitted) Close() {
	for _, f := range []*os.File{ad.outDir, ad.cwd} {
		if f != nil {
			f.Close()
		}
	}
}

// refusal is a workflow input the worker will not run. It fails the run
// with ErrBadInput, which no retry can fix.
type refusal struct{ msg string }

func (r *refusal) Error() string { return "refused by the worker: " + r.msg }

func refuse(format string, args ...any) error {
	return &refusal{msg: fmt.Sprintf(format, args...)}
}

// checkJobID refuses an id that is not a run id, before it names a folder.
func checkJobID(jobID string) error {
	if !workflows.ValidRunID(jobID) {
		return refuse("%q is not a notebook run id (%s<uuid>); start runs through millrace", jobID, workflows.RunIDPrefix)
	}
	return nil
}

// admit checks a run's env names and resolves its files beneath the
// worker's roots at this moment. output is the run's output path (the
// default one under the data dir is the worker's own).
func (a *Activities) admit(jobID string, in workflows.RunInput, output string) (*admitted, error) {
	if err := runenv.CheckNames(in.Env, a.AllowEnv); err != nil {
		return nil, refuse("%v", err)
	}
	roots, err := a.roots()
	if err != nil {
		return nil, refuse("the worker's roots: %v", err)
	}
	ad := &admitted{}
	fail := func(err error) (*admitted, error) {
		ad.Close()
		return nil, err
	}
	nb, err := roots.Open(in.Notebook)
	if err != nil {
		return fail(a.pathRefusal("notebook", in.Notebook, err, roots))
	}
	nb.Close()
	if ad.cwd, err = openDirIn(roots, in.Cwd); err != nil {
		return fail(a.pathRefusal("working directory", in.Cwd, err, roots))
	}
	outDir := filepath.Dir(output)
	if output == rundir.DefaultOutput(a.DataDir, jobID) {
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			return fail(fmt.Errorf("cannot create the output notebook's folder: %w", err))
		}
		ad.outDir, err = os.Open(outDir)
	} else if root, ok := roots.Contains(filepath.Clean(outDir)); ok {
		ad.outDir, err = beneath.MkdirAll(root, filepath.Clean(outDir), 0o755)
	} else {
		err = paths.ErrOutsideRoots
	}
	if err != nil {
		return fail(a.pathRefusal("output folder", outDir, err, roots))
	}
	return ad, nil
}

func openDirIn(roots *paths.Roots, dir string) (*os.File, error) {
	root, ok := roots.Contains(filepath.Clean(dir))
	if !ok || !filepath.IsAbs(dir) {
		return nil, paths.ErrOutsideRoots
	}
	return beneath.OpenDir(root, filepath.Clean(dir))
}

// pathRefusal says why a path is refused without saying where a symlink
// leads or what lies outside the roots.
func (a *Activities) pathRefusal(what, p string, err error, roots *paths.Roots) error {
	where := strings.Join(roots.Dirs(), ", ")
	switch {
	case errors.Is(err, paths.ErrOutsideRoots):
		return refuse("%s %s is outside the worker's roots (%s); start the worker with --roots to allow it", what, p, where)
	case errors.Is(err, beneath.ErrEscapes):
		return refuse("%s %s leads out of the worker's roots (%s) through a symlink; it was not followed", what, p, where)
	case errors.Is(err, beneath.ErrNotRegular):
		return refuse("%s %s is not a regular file", what, p)
	case errors.Is(err, os.ErrNotExist):
		return refuse("%s %s does not exist", what, p)
	}
	return refuse("%s %s: %v", what, p, errors.Unwrap(err))
}

var defaultRoots struct {
	once  sync.Once
	roots *paths.Roots
	err   error
}

// roots are the worker's (Activities.Roots), or config.DefaultWorkerRoots.
func (a *Activities) roots() (*paths.Roots, error) {
	if a.Roots != nil {
		return a.Roots, nil
	}
	defaultRoots.once.Do(func() {
		defaultRoots.roots, defaultRoots.err = paths.NewRoots(config.DefaultWorkerRoots())
	})
	return defaultRoots.roots, defaultRoots.err
}
