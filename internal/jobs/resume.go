package jobs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"millrace/internal/beneath"
	"millrace/internal/notebook"
	"millrace/internal/rundir"
	"millrace/workflows"
)

// RerunOptions are a rerun's choices. The zero value reruns from the first
// cell, as a rerun always did.
type RerunOptions struct {
	// FromCell, when above 0, makes the rerun go on from that cell (its
	// index in the notebook, as a cell error's cell_index gives it) after
	// restoring the source job's latest checkpoint taken before it. The
	// cells before it are not run again; from it on the notebook runs as it
	// is now, so a cell fixed in the file runs fixed.
	FromCell int `json:"from_cell,omitempty"`
	// AllowPartial lets a checkpoint that could not save some names be
	// restored without them.
	AllowPartial bool `json:"allow_partial,omitempty"`
}

// check refuses options that cannot mean anything.
func (o RerunOptions) check() error {
	switch {
	case o.FromCell < 0:
		return userErrorf("from_cell %d: give the index of the cell to go on from, 1 or more (0 or none: from the first cell)", o.FromCell)
	case o.AllowPartial && o.FromCell == 0:
		return userErrorf("allow_partial applies to a rerun with from_cell")
	}
	return nil
}

// ResumeText says where a resumed run goes on from, for the MCP tool's and
// the CLI's answers.
func ResumeText(r *workflows.Resume) string {
	cp := r.Checkpoint
	s := fmt.Sprintf("the checkpoint %s took after cell %d (attempt %d, %.1f MB); the run goes on from cell %d", r.Job, cp.Cell, cp.Attempt, float64(cp.SizeBytes)/1e6, cp.Cell+1)
	if cp.Partial {
		s += fmt.Sprintf(", without the %d names the partial checkpoint could not save", max(cp.SkippedCount, len(cp.Skipped)))
	}
	return s
}

// resumeWarningPrefix marks the warnings a resume adds to a run's input,
// so that a rerun of that run from its first cell leaves them out.
const resumeWarningPrefix = "resume: "

// resumeFor picks the checkpoint of job (whose recorded input is jobIn) that
// a run with params can go on from at fromCell, and checks it: the
// parameters are the ones the checkpoint was taken with, it is complete
// (or allowPartial), and its file is the one recorded in Temporal. The
// notebook needs no check: a rerun runs the source job's notebook path
// (the same input), as it is now. code says which of the notebook's cells
// are code cells now; a fromCell past its last cell (a batch rerun's "latest of each node") picks the
// latest checkpoint and adds no warning. found is false, with a UserError
// that says why, when the job has no checkpoint to go on from; any other
// error refuses the rerun.
func (s *Service) resumeFor(ctx context.Context, job string, jobIn workflows.RunInput, params json.RawMessage, fromCell int, nb *notebook.Notebook, allowPartial bool) (r *workflows.Resume, warning string, found bool, err error) {
	res, _, err := s.runResult(ctx, job)
	if err != nil {
		return nil, "", false, err
	}
	explicit := fromCell < len(nb.Cells)
	if !explicit {
		fromCell = len(nb.Cells)
	}
	cp, ok := pickCheckpoint(res.Checkpoints, fromCell)
	if !ok {
		return nil, "", false, &UserError{Msg: noCheckpoint(job, res.Checkpoints, fromCell)}
	}
	// A cell at or before the checkpoint's that was edited since would not
	// run again, and the runner refuses such a resume: go back to the latest
	// checkpoint before the first edited cell instead, and say so.
	var edited []string
	for range res.Checkpoints {
		if err := checkPlace(s.DataDir, checkpointOwner(job, jobIn, cp), cp); err != nil {
			return nil, "", true, err
		}
		c, err := s.editedCell(cp, nb)
		if err != nil {
			return nil, "", true, err
		}
		if c < 0 {
			break
		}
		edited = append(edited, fmt.Sprintf("cell %d changed since the checkpoint after cell %d was taken", c, cp.Cell))
		if cp, ok = pickCheckpoint(res.Checkpoints, c); !ok {
			return nil, "", false, userErrorf("%s, and job %s took none before it", strings.Join(edited, "; "), job)
		}
	}
	owner, ownerParams := checkpointOwner(job, jobIn, cp), jobIn.Parameters
	if owner != job {
		ownerIn, err := s.StartedInput(ctx, owner)
		if err != nil {
			return nil, "", true, fmt.Errorf("read the input of %s, whose checkpoint after cell %d %s resumed from: %w", owner, cp.Cell, job, err)
		}
		ownerParams = ownerIn.Parameters
	}
	if diff, err := parameterDiff(ownerParams, params); err != nil {
		return nil, "", true, err
	} else if len(diff) > 0 {
		return nil, "", true, userErrorf("the parameters differ from those of %s, whose checkpoint after cell %d would be restored: %s; a checkpoint holds the values the cells before it computed from its own parameters", owner, cp.Cell, strings.Join(diff, ", "))
	}
	if err := checkPartial(cp, allowPartial); err != nil {
		return nil, "", true, err
	}
	if err := verifyCheckpoint(ctx, s.DataDir, owner, cp); err != nil {
		return nil, "", true, err
	}
	if !explicit {
		fromCell = cp.Cell + 1
	}
	code := make([]bool, len(nb.Cells))
	for i, c := range nb.Cells {
		code[i] = c.Type == notebook.CellCode
	}
	warning = rerunCellsWarning(cp.Cell, fromCell, code)
	if len(edited) > 0 {
		warning = fmt.Sprintf("%s%s: resuming from the checkpoint after cell %d, so %s", resumeWarningPrefix, strings.Join(edited, "; "), cp.Cell, runAgain(cp.Cell, fromCell, code))
	}
	return &workflows.Resume{Job: owner, FromCell: fromCell, Checkpoint: cp, AllowPartial: allowPartial}, warning, true, nil
}

// editedCell is the first code cell, at or before cp's cell, whose source
// in nb differs from the one the checkpoint's run executed; -1 when none
// does. The run's notebook is the snapshot beside the checkpoint
// (cell-K.ipynb), whose metadata.millrace.checkpoint.origin gives each of
// its cells' index in the input notebook (null for the injected parameters
// cell): the rule the runner applies before it restores.
func (s *Service) editedCell(cp workflows.Checkpoint, nb *notebook.Notebook) (int, error) {
	snapPath := filepath.Join(filepath.Dir(cp.Path), fmt.Sprintf("cell-%d.ipynb", cp.Cell))
	dataDir, err := filepath.Abs(s.DataDir)
	if err != nil {
		return 0, err
	}
	b, err := beneath.ReadFile(dataDir, snapPath, maxSnapshotBytes)
	if err != nil {
		return 0, userErrorf("the notebook snapshot of the checkpoint after cell %d cannot be read (%v); rerun without from_cell", cp.Cell, err)
	}
	snap, err := notebook.Parse(b)
	if err != nil && !errors.Is(err, notebook.ErrNoCodeCells) {
		return 0, userErrorf("the notebook snapshot %s: %v; rerun without from_cell", snapPath, err)
	}
	var md struct {
		Millrace struct {
			Checkpoint struct {
				Cell   int    `json:"cell"`
				Origin []*int `json:"origin"`
			} `json:"checkpoint"`
		} `json:"millrace"`
	}
	_ = json.Unmarshal(snap.Metadata.Raw, &md)
	meta := md.Millrace.Checkpoint
	if meta.Cell != cp.Cell || len(meta.Origin) != len(snap.Cells) {
		return 0, userErrorf("%s is not the notebook snapshot of a checkpoint after cell %d; rerun without from_cell", snapPath, cp.Cell)
	}
	then := map[int]*notebook.Cell{}
	for i, o := range meta.Origin {
		if o != nil {
			then[*o] = &snap.Cells[i]
		}
	}
	for i := 0; i <= cp.Cell; i++ {
		old := then[i]
		var cur *notebook.Cell
		if i < len(nb.Cells) {
			cur = &nb.Cells[i]
		}
		code := old != nil && old.Type == notebook.CellCode || cur != nil && cur.Type == notebook.CellCode
		if code && (old == nil || cur == nil || old.Type != cur.Type || old.Source != cur.Source) {
			return i, nil
		}
	}
	return -1, nil
}

// maxSnapshotBytes bounds the notebook snapshot read to compare sources:
// outputs make it large, not the sources.
const maxSnapshotBytes = 512 << 20

// pickCheckpoint is the latest checkpoint taken before cell fromCell: the
// one with the highest cell below it, the latest saved among equals.
func pickCheckpoint(cps []workflows.Checkpoint, fromCell int) (workflows.Checkpoint, bool) {
	var best workflows.Checkpoint
	found := false
	for _, cp := range cps {
		if cp.Cell >= fromCell {
			continue
		}
		if !found || cp.Cell > best.Cell || cp.Cell == best.Cell && !cp.SavedAt.Before(best.SavedAt) {
			best, found = cp, true
		}
	}
	return best, found
}

// noCheckpoint says why job has no checkpoint before fromCell.
func noCheckpoint(job string, cps []workflows.Checkpoint, fromCell int) string {
	if len(cps) == 0 {
		return fmt.Sprintf("job %s took no checkpoint (checkpoint: off, or no cell ran long enough for auto)", job)
	}
	cells := checkpointCells(cps)
	s := "cell"
	if len(cells) > 1 {
		s = "cells"
	}
	return fmt.Sprintf("job %s has checkpoints after %s %s, none before cell %d; from_cell must be above %s", job, s, strings.Join(cells, ", "), fromCell, cells[0])
}

// checkpointCells lists the cells checkpoints were taken after, ascending,
// once each.
func checkpointCells(cps []workflows.Checkpoint) []string {
	seen := map[int]bool{}
	var ns []int
	for _, cp := range cps {
		if !seen[cp.Cell] {
			seen[cp.Cell] = true
			ns = append(ns, cp.Cell)
		}
	}
	sort.Ints(ns)
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = strconv.Itoa(n)
	}
	return out
}

// checkpointOwner is the job whose folder holds cp, one of job's records:
// a run that resumed lists the checkpoint it resumed from among its own,
// and that one is the resumed job's.
func checkpointOwner(job string, jobIn workflows.RunInput, cp workflows.Checkpoint) string {
	if r := jobIn.Resume; r != nil && sameCheckpoint(r.Checkpoint, cp) {
		return r.Job
	}
	return job
}

// sameCheckpoint reports whether two records name the same saved file.
func sameCheckpoint(a, b workflows.Checkpoint) bool {
	return a.Path == b.Path && a.SHA256 == b.SHA256 && a.Cell == b.Cell
}

// rerunCellsWarning says which code cells before fromCell run again when
// the checkpoint was taken after cell k, more than one cell before it; ""
// when none do. code says which cells are code cells.
func rerunCellsWarning(k, fromCell int, code []bool) string {
	again := runAgain(k, fromCell, code)
	if again == "" {
		return ""
	}
	return fmt.Sprintf("%sthe latest checkpoint before cell %d was taken after cell %d: %s", resumeWarningPrefix, fromCell, k, again)
}

// runAgain names the code cells between cell k and fromCell ("cell 4 runs
// again", "cells 3, 4 and 6 run again"); "" when there are none.
func runAgain(k, fromCell int, code []bool) string {
	var again []string
	for i := k + 1; i < fromCell && i < len(code); i++ {
		if code[i] {
			again = append(again, strconv.Itoa(i))
		}
	}
	switch {
	case len(again) == 0:
		return ""
	case len(again) == 1:
		return "cell " + again[0] + " runs again"
	case len(again) > 8:
		return fmt.Sprintf("%d code cells, %s to %s, run again", len(again), again[0], again[len(again)-1])
	}
	return "cells " + strings.Join(again[:len(again)-1], ", ") + " and " + again[len(again)-1] + " run again"
}

// withoutResumeWarnings drops the warnings an earlier resume added.
func withoutResumeWarnings(ws []string) []string {
	var out []string
	for _, w := range ws {
		if !strings.HasPrefix(w, resumeWarningPrefix) {
			out = append(out, w)
		}
	}
	return out
}

// checkPartial refuses a checkpoint that left names out, unless allowed.
func checkPartial(cp workflows.Checkpoint, allow bool) error {
	if !cp.Partial || allow {
		return nil
	}
	names := strings.Join(cp.Skipped, ", ")
	if more := cp.SkippedCount - len(cp.Skipped); more > 0 {
		names += fmt.Sprintf(" and %d more", more)
	}
	if names == "" {
		names = "some names"
	}
	return userErrorf("the checkpoint after cell %d is partial: it could not save %s; those names would be missing in the resumed run. Pass allow_partial to restore it without them, or rerun without from_cell", cp.Cell, names)
}

// parameterDiff names the parameters whose values differ between two JSON
// objects, compared as values: key order and spacing do not count, but
// 2 and 2.0 differ (the kernel gets an int and a float).
func parameterDiff(was, now json.RawMessage) ([]string, error) {
	a, err := decodeParameters(was)
	if err != nil {
		return nil, err
	}
	b, err := decodeParameters(now)
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for k := range a {
		names[k] = true
	}
	for k := range b {
		names[k] = true
	}
	var diff []string
	for k := range names {
		va, inA := a[k]
		vb, inB := b[k]
		switch {
		case !inA:
			diff = append(diff, fmt.Sprintf("%s (was not given, now %s)", k, short(vb)))
		case !inB:
			diff = append(diff, fmt.Sprintf("%s (was %s, now not given)", k, short(va)))
		case !sameJSON(va, vb):
			diff = append(diff, fmt.Sprintf("%s (was %s, now %s)", k, short(va), short(vb)))
		}
	}
	sort.Strings(diff)
	return diff, nil
}

func decodeParameters(raw json.RawMessage) (map[string]any, error) {
	out := map[string]any{}
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return out, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("read parameters: %w", err)
	}
	return out, nil
}

// sameJSON compares decoded values; numbers (json.Number) are equal when
// both are integers of the same value or both are floats of the same value.
func sameJSON(a, b any) bool {
	switch x := a.(type) {
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		xi, xInt := isInteger(x)
		yi, yInt := isInteger(y)
		if xInt || yInt {
			return xInt && yInt && xi == yi
		}
		xf, err1 := x.Float64()
		yf, err2 := y.Float64()
		return err1 == nil && err2 == nil && xf == yf
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !sameJSON(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameJSON(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return a == b
}

// isInteger reports whether n is written as an integer (no fraction or
// exponent: Python reads it as an int), with its value as a string
// without leading zeros or a minus zero.
func isInteger(n json.Number) (string, bool) {
	s := n.String()
	if strings.ContainsAny(s, ".eE") {
		return "", false
	}
	neg := strings.HasPrefix(s, "-")
	digits := strings.TrimLeft(strings.TrimPrefix(s, "-"), "0")
	if digits == "" {
		return "0", true
	}
	if neg {
		return "-" + digits, true
	}
	return digits, true
}

// short is a value as a message shows it: its JSON, cut at 60 bytes.
func short(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 60 {
		return string(b[:57]) + "..."
	}
	return string(b)
}

// verifyCheckpoint checks, before anything starts, what the worker and the
// kernel check again before they load it (loading a pickle runs code): the
// file is one of the checkpoint files of the job that took it, a regular
// file reached through no symbolic link below the data dir
// (rundir.CheckCheckpoint), with the size and sha256 recorded in Temporal
// when it was saved. The hash is read as a stream: a checkpoint may be
// gigabytes.
func verifyCheckpoint(ctx context.Context, dataDir, owner string, cp workflows.Checkpoint) error {
	if err := checkPlace(dataDir, owner, cp); err != nil {
		return err
	}
	what := fmt.Sprintf("the checkpoint after cell %d of %s", cp.Cell, owner)
	dataDir, err := filepath.Abs(dataDir)
	if err != nil {
		return err
	}
	// Opened beneath the data dir: a folder swapped for a symlink since the
	// check cannot take the read outside it, and the hash decides the rest.
	f, err := beneath.Open(dataDir, cp.Path)
	if err != nil {
		return userErrorf("%s: %v; rerun without from_cell", what, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	changed := fmt.Sprintf("%s (%s) does not match the hash recorded when it was saved: it was changed on disk; rerun without from_cell", what, cp.Path)
	if st.Size() != cp.SizeBytes {
		return &UserError{Msg: changed}
	}
	h := sha256.New()
	if _, err := io.CopyBuffer(h, ctxReader{ctx, f}, make([]byte, 1<<20)); err != nil {
		return fmt.Errorf("hash %s: %w", cp.Path, err)
	}
	if !strings.EqualFold(hex.EncodeToString(h.Sum(nil)), cp.SHA256) {
		return &UserError{Msg: changed}
	}
	return nil
}

// checkPlace refuses a checkpoint that is not one of owner's checkpoint
// files, reached through no symbolic link below the data dir.
func checkPlace(dataDir, owner string, cp workflows.Checkpoint) error {
	what := fmt.Sprintf("the checkpoint after cell %d of %s", cp.Cell, owner)
	if err := checkJobID(owner); err != nil {
		return userErrorf("%s: %v", what, err)
	}
	dataDir, err := filepath.Abs(dataDir)
	if err != nil {
		return err
	}
	err = rundir.CheckCheckpoint(dataDir, owner, cp.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return userErrorf("%s is gone from disk (%s); rerun without from_cell", what, cp.Path)
	}
	if err != nil {
		return userErrorf("%s: %v; rerun without from_cell", what, err)
	}
	return nil
}

// ctxReader stops a long read (a checkpoint may be gigabytes) once ctx is
// done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
