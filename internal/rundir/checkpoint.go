package rundir

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

// An attempt's checkpoints live in its own folder:
//
//	runs/<job id>/attempt-<n>/checkpoints/cell-<k>.ckpt       the namespace after cell k (dill)
//	runs/<job id>/attempt-<n>/checkpoints/cell-<k>.ckpt.json  its summary, once complete
//	runs/<job id>/attempt-<n>/checkpoints/cell-<k>.ipynb      the output notebook as it was then
//	runs/<job id>/attempt-<n>/checkpoints/latest.json         the last complete checkpoint
//	runs/<job id>/attempt-<n>/checkpoints/resume.json         whether the attempt resumed, and why not
//
// The folder is private (0700) whatever the data dir's file mode: loading
// a checkpoint runs code.
// The runner names the files inside (runner.LatestFile, runner.ResumeFile).
const CheckpointDir = "checkpoints"

// CheckpointsDir returns the checkpoint folder of attempt n of a job.
func CheckpointsDir(dataDir, jobID string, n int) string {
	return filepath.Join(AttemptDir(dataDir, jobID, n), CheckpointDir)
}

// checkpointFile is the form of a checkpoint's path below its job's folder.
var checkpointFile = regexp.MustCompile(`^attempt-[0-9]+/` + CheckpointDir + `/cell-[0-9]+\.ckpt$`)

// CheckCheckpoint refuses a path that is not a checkpoint file of job
// jobID: one of its attempts' checkpoint files, reached without a symbolic
// link below the data dir, and a regular file. Loading a checkpoint runs
// code, so a path recorded in Temporal is loaded only from the folders of
// the job that saved it; the file's hash is checked when it is read.
func CheckCheckpoint(dataDir, jobID, path string) error {
	job := JobDir(dataDir, jobID)
	rel, err := filepath.Rel(job, path)
	if err != nil || !filepath.IsAbs(path) || !checkpointFile.MatchString(filepath.ToSlash(rel)) {
		return fmt.Errorf("%s is not a checkpoint of job %s (those are %s)", path, jobID, filepath.Join(job, "attempt-N", CheckpointDir, "cell-K.ckpt"))
	}
	realData, err := filepath.EvalSymlinks(dataDir)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", path, err)
	}
	realJob := JobDir(realData, jobID)
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if real != filepath.Join(realJob, rel) {
		return fmt.Errorf("checkpoint %s is reached through a symbolic link: refused", path)
	}
	st, err := os.Lstat(real)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("checkpoint %s is not a regular file", path)
	}
	return nil
}
