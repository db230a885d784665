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
// with failure.TypeBadInput, which no retry can fix.
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
// worker's roots, and beneath the roots of the server that started the run,
// at this moment. output is the run's output path (the default one under
// the data dir is the worker's own).
func (a *Activities) admit(jobID string, in workflows.RunInput, output string) (*admitted, error) {
	if err := runenv.CheckNames(in.Env, a.AllowEnv); err != nil {
		return nil, refuse("%v", err)
	}
	worker, err := a.roots()
	if err != nil {
		return nil, refuse("the worker's roots: %v", err)
	}
	c := confinement{worker: worker}
	if len(in.Roots) > 0 {
		if c.job, err = paths.NewRoots(in.Roots); err != nil {
			return nil, refuse("the roots the run was started with: %v", err)
		}
	}
	ad := &admitted{}
	fail := func(err error) (*admitted, error) {
		ad.Close()
		return nil, err
	}
	nb, err := c.open(in.Notebook, openFile)
	if err != nil {
		return fail(c.refusal("notebook", in.Notebook, err))
	}
	nb.Close()
	if ad.cwd, err = c.open(in.Cwd, openDir); err != nil {
		return fail(c.refusal("working directory", in.Cwd, err))
	}
	outDir := filepath.Dir(output)
	if output == rundir.DefaultOutput(a.DataDir, jobID) {
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			return fail(fmt.Errorf("cannot create the output notebook's folder: %w", err))
		}
		ad.outDir, err = os.Open(outDir)
	} else {
		ad.outDir, err = c.open(outDir, makeDir)
	}
	if err != nil {
		return fail(c.refusal("output folder", outDir, err))
	}
	return ad, nil
}

// confinement is what a run's files must lie beneath: the worker's roots
// and, when the input names them, the starting server's (job).
type confinement struct {
	worker, job *paths.Roots
}

type openKind int

const (
	openFile openKind = iota // a regular file, for reading
	openDir                  // an existing folder
	makeDir                  // a folder, created beneath its root if missing
)

// open opens p beneath the job's root holding it (creating it for makeDir)
// and beneath the worker's, and checks both opens reached the same file:
// then it lay beneath both at this moment. The job's descriptor is kept.
func (c confinement) open(p string, kind openKind) (*os.File, error) {
	if !filepath.IsAbs(p) {
		return nil, paths.ErrOutsideRoots
	}
	p = filepath.Clean(p)
	if c.job == nil {
		return openBeneath(c.worker, p, kind)
	}
	first, err := openBeneath(c.job, p, kind)
	if err != nil {
		return nil, err
	}
	second, err := openBeneath(c.worker, p, openKindNoCreate(kind))
	if err != nil {
		first.Close()
		return nil, err
	}
	defer second.Close()
	if !sameFile(first, second) {
		first.Close()
		return nil, beneath.ErrEscapes
	}
	return first, nil
}

func openKindNoCreate(k openKind) openKind {
	if k == makeDir {
		return openDir
	}
	return k
}

func openBeneath(roots *paths.Roots, p string, kind openKind) (*os.File, error) {
	if roots == nil {
		return nil, paths.ErrOutsideRoots
	}
	root, ok := roots.Contains(p)
	if !ok {
		return nil, paths.ErrOutsideRoots
	}
	switch kind {
	case openDir:
		return beneath.OpenDir(root, p)
	case makeDir:
		return beneath.MkdirAll(root, p, 0o755)
	}
	return beneath.Open(root, p)
}

func sameFile(a, b *os.File) bool {
	sa, err1 := a.Stat()
	sb, err2 := b.Stat()
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// refusal says why a path is refused without saying where a symlink leads
// or what lies outside the roots.
func (c confinement) refusal(what, p string, err error) error {
	where := "the worker's roots (" + strings.Join(c.worker.Dirs(), ", ") + ")"
	if c.job != nil {
		where = "the roots the run was started with (" + strings.Join(c.job.Dirs(), ", ") + ") or " + where
	}
	switch {
	case errors.Is(err, paths.ErrOutsideRoots):
		return refuse("%s %s is outside %s; start the worker with --roots to allow it", what, p, where)
	case errors.Is(err, beneath.ErrEscapes):
		return refuse("%s %s leads out of %s through a symlink; it was not followed", what, p, where)
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
