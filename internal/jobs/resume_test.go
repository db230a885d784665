package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"millrace/internal/notebook"
	"millrace/internal/rundir"
	"millrace/workflows"
)

func cps(cells ...int) []workflows.Checkpoint {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var out []workflows.Checkpoint
	for i, c := range cells {
		out = append(out, workflows.Checkpoint{Cell: c, Attempt: 1, Path: "/p/cell-" + string(rune('0'+i)), SavedAt: t0.Add(time.Duration(i) * time.Minute)})
	}
	return out
}

func TestPickCheckpointTakesTheLatestBeforeTheCell(t *testing.T) {
	list := cps(2, 5, 9)
	for _, tc := range []struct {
		from, want int
		ok         bool
	}{
		{from: 1, ok: false},
		{from: 2, ok: false}, // a checkpoint after cell 2 is not before cell 2
		{from: 3, want: 2, ok: true},
		{from: 5, want: 2, ok: true},
		{from: 6, want: 5, ok: true},
		{from: 9, want: 5, ok: true},
		{from: 10, want: 9, ok: true},
		{from: 1000, want: 9, ok: true},
	} {
		got, ok := pickCheckpoint(list, tc.from)
		if ok != tc.ok || ok && got.Cell != tc.want {
			t.Errorf("from_cell %d: got cell %d (%v), want %d (%v)", tc.from, got.Cell, ok, tc.want, tc.ok)
		}
	}
	// Of two checkpoints after the same cell (a retried attempt saved it
	// again), the later one is taken, whatever the list's order.
	dup := cps(4, 4)
	dup[0], dup[1] = dup[1], dup[0]
	if got, _ := pickCheckpoint(dup, 5); !got.SavedAt.Equal(dup[0].SavedAt) {
		t.Errorf("picked the older of two checkpoints after cell 4: %v", got.SavedAt)
	}
	if _, ok := pickCheckpoint(nil, 5); ok {
		t.Error("picked a checkpoint from none")
	}
}

func TestNoCheckpointSaysWhatExists(t *testing.T) {
	if got := noCheckpoint("nb-x", cps(5, 2, 5), 2); got != "job nb-x has checkpoints after cells 2, 5, none before cell 2; from_cell must be above 2" {
		t.Errorf("got %q", got)
	}
	if got := noCheckpoint("nb-x", cps(7), 3); got != "job nb-x has checkpoints after cell 7, none before cell 3; from_cell must be above 7" {
		t.Errorf("got %q", got)
	}
	if got := noCheckpoint("nb-x", nil, 3); got != "job nb-x took no checkpoint (checkpoint: off, or no cell ran long enough for auto)" {
		t.Errorf("got %q", got)
	}
}

func TestRerunCellsWarning(t *testing.T) {
	allCode := func(n int) []bool {
		c := make([]bool, n)
		for i := range c {
			c[i] = true
		}
		return c
	}
	// Cells 2 and 4 are markdown: they do not run, again or not.
	mixed := []bool{true, true, false, true, false, true, true, true}
	for _, tc := range []struct {
		k, from int
		code    []bool
		want    string
	}{
		{2, 3, allCode(8), ""},
		{1, 3, allCode(8), "resume: the latest checkpoint before cell 3 was taken after cell 1: cell 2 runs again"},
		{2, 7, allCode(8), "resume: the latest checkpoint before cell 7 was taken after cell 2: cells 3, 4, 5 and 6 run again"},
		{1, 3, mixed, ""},
		{1, 5, mixed, "resume: the latest checkpoint before cell 5 was taken after cell 1: cell 3 runs again"},
		{0, 7, mixed, "resume: the latest checkpoint before cell 7 was taken after cell 0: cells 1, 3, 5 and 6 run again"},
		{0, 40, allCode(50), "resume: the latest checkpoint before cell 40 was taken after cell 0: 39 code cells, 1 to 39, run again"},
	} {
		if got := rerunCellsWarning(tc.k, tc.from, tc.code); got != tc.want {
			t.Errorf("k=%d from=%d: %q, want %q", tc.k, tc.from, got, tc.want)
		}
	}
	ws := withoutResumeWarnings([]string{"parameter x: type not checked", rerunCellsWarning(1, 5, allCode(6))})
	if len(ws) != 1 || ws[0] != "parameter x: type not checked" {
		t.Errorf("withoutResumeWarnings kept %q", ws)
	}
}

func TestParameterDiffComparesValues(t *testing.T) {
	same := [][2]string{
		{`{"a":1,"b":"x"}`, `{"b": "x", "a": 1}`},
		{``, `{}`},
		{`null`, ``},
		{`{"n":{"k":[1,2.5,true,null]}}`, `{"n":{"k":[1,2.5,true,null]}}`},
		{`{"n":1e2}`, `{"n":100.0}`},
		{`{"n":-0}`, `{"n":0}`},
	}
	for _, p := range same {
		if d, err := parameterDiff(json.RawMessage(p[0]), json.RawMessage(p[1])); err != nil || len(d) != 0 {
			t.Errorf("%s vs %s: %q %v, want no difference", p[0], p[1], d, err)
		}
	}
	d, err := parameterDiff(json.RawMessage(`{"rows":10,"lr":2,"name":"a","gone":true}`), json.RawMessage(`{"rows":20,"lr":2.0,"name":"a","new":[1]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"gone (was true, now not given)", "lr (was 2, now 2.0)", "new (was not given, now [1])", "rows (was 10, now 20)"}
	if strings.Join(d, "|") != strings.Join(want, "|") {
		t.Errorf("diff %q, want %q", d, want)
	}
	if _, err := parameterDiff(json.RawMessage(`{"a":`), nil); err == nil {
		t.Error("no error for broken JSON")
	}
}

func TestCheckPartial(t *testing.T) {
	cp := workflows.Checkpoint{Cell: 4, Partial: true, Skipped: []string{"fh", "sock"}, SkippedCount: 5}
	err := checkPartial(cp, false)
	if !IsUserError(err) || !strings.Contains(err.Error(), "could not save fh, sock and 3 more") || !strings.Contains(err.Error(), "allow_partial") {
		t.Errorf("partial without allow_partial: %v", err)
	}
	if err := checkPartial(cp, true); err != nil {
		t.Errorf("partial with allow_partial: %v", err)
	}
	if err := checkPartial(workflows.Checkpoint{Cell: 4}, false); err != nil {
		t.Errorf("complete checkpoint: %v", err)
	}
}

func TestRerunOptionsCheck(t *testing.T) {
	for _, o := range []RerunOptions{{FromCell: -1}, {AllowPartial: true}} {
		if err := o.check(); !IsUserError(err) {
			t.Errorf("%+v: %v, want a user error", o, err)
		}
	}
	for _, o := range []RerunOptions{{}, {FromCell: 3}, {FromCell: 3, AllowPartial: true}} {
		if err := o.check(); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
}

// checkpointFile writes a checkpoint of job where the runner puts it and
// returns its record.
func checkpointFile(t *testing.T, dataDir, job string, cell int, body string) workflows.Checkpoint {
	t.Helper()
	dir := filepath.Join(rundir.AttemptDir(dataDir, job, 1), "checkpoints")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "cell-"+string(rune('0'+cell))+".ckpt")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(body))
	return workflows.Checkpoint{Cell: cell, Attempt: 1, Path: p, SHA256: hex.EncodeToString(sum[:]), SizeBytes: int64(len(body))}
}

func TestVerifyCheckpoint(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	const job, other = "nb-aaaa", "nb-bbbb"
	good := checkpointFile(t, data, job, 2, "namespace of cell 2")
	if err := verifyCheckpoint(ctx, data, job, good); err != nil {
		t.Fatalf("untouched checkpoint: %v", err)
	}
	refused := func(what string, cp workflows.Checkpoint, owner, want string) {
		t.Helper()
		err := verifyCheckpoint(ctx, data, owner, cp)
		if !IsUserError(err) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want a user error saying %q", what, err, want)
		}
	}
	// Its bytes changed, at the same size and at another.
	same := checkpointFile(t, data, job, 3, "namespace of cell 3")
	os.WriteFile(same.Path, []byte("NAMESPACE OF CELL 3"), 0o600)
	refused("same size, other bytes", same, job, "does not match the hash recorded when it was saved: it was changed on disk; rerun without from_cell")
	grown := checkpointFile(t, data, job, 4, "namespace of cell 4")
	os.WriteFile(grown.Path, []byte("namespace of cell 4 and a payload"), 0o600)
	refused("other size", grown, job, "it was changed on disk")
	// Gone.
	gone := checkpointFile(t, data, job, 5, "x")
	os.Remove(gone.Path)
	refused("missing file", gone, job, "is gone from disk")
	// Recorded elsewhere than its job's checkpoints folder.
	theirs := checkpointFile(t, data, other, 2, "namespace of cell 2")
	refused("another job's checkpoint", theirs, job, "is not a checkpoint of job "+job)
	loose := theirs
	loose.Path = filepath.Join(rundir.JobDir(data, job), "output.ipynb")
	refused("a file of the job outside checkpoints", loose, job, "is not a checkpoint of job")
	dotted := good
	dotted.Path = filepath.Join(rundir.JobDir(data, job), "attempt-1", "checkpoints", "..", "..", "..", other, "attempt-1", "checkpoints", "cell-2.ckpt")
	refused("a path with ..", dotted, job, "is not a checkpoint of job")
	refused("not a job id", good, "../x", "is not a job id")
	// A symlink in its path, to a file with the right bytes.
	linked := checkpointFile(t, data, job, 6, "namespace of cell 6")
	target := linked.Path + ".real"
	os.Rename(linked.Path, target)
	if err := os.Symlink(target, linked.Path); err != nil {
		t.Fatal(err)
	}
	refused("symlinked file", linked, job, "symbolic link")
	dirJob := "nb-cccc"
	moved := checkpointFile(t, data, dirJob, 2, "namespace")
	attempt := rundir.AttemptDir(data, dirJob, 1)
	os.Rename(attempt, attempt+".real")
	os.Symlink(attempt+".real", attempt)
	refused("symlinked attempt folder", moved, dirJob, "symbolic link")
	// A folder where the file should be.
	dir := checkpointFile(t, data, job, 7, "x")
	os.Remove(dir.Path)
	os.Mkdir(dir.Path, 0o700)
	refused("a directory", dir, job, "is not a regular file")
	// A canceled call stops hashing.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := verifyCheckpoint(cctx, data, job, good); err == nil || IsUserError(err) {
		t.Errorf("canceled: %v, want the context's error", err)
	}
}

// BenchmarkVerifyCheckpoint measures the check a rerun with from_cell makes
// at the call: the whole file is hashed (MILLRACE_BENCH_CHECKPOINT_MB,
// default 256 MB).
func BenchmarkVerifyCheckpoint(b *testing.B) {
	mb := 256
	if v := os.Getenv("MILLRACE_BENCH_CHECKPOINT_MB"); v != "" {
		fmt.Sscan(v, &mb)
	}
	data := b.TempDir()
	dir := filepath.Join(rundir.AttemptDir(data, "nb-bench", 1), "checkpoints")
	os.MkdirAll(dir, 0o700)
	p := filepath.Join(dir, "cell-1.ckpt")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	h := sha256.New()
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i * 7)
	}
	for range mb {
		f.Write(chunk)
		h.Write(chunk)
	}
	f.Close()
	cp := workflows.Checkpoint{Cell: 1, Path: p, SHA256: hex.EncodeToString(h.Sum(nil)), SizeBytes: int64(mb) << 20}
	b.SetBytes(cp.SizeBytes)
	b.ResetTimer()
	for range b.N {
		if err := verifyCheckpoint(context.Background(), data, "nb-bench", cp); err != nil {
			b.Fatal(err)
		}
	}
}

// nbJSON is an nbformat 4 notebook of cells "code:SRC" or "md:SRC", with
// notebook metadata md.
func nbJSON(t *testing.T, md map[string]any, cells ...string) []byte {
	t.Helper()
	var cs []map[string]any
	for _, c := range cells {
		kind, src, _ := strings.Cut(c, ":")
		cell := map[string]any{"cell_type": "markdown", "metadata": map[string]any{}, "source": src}
		if kind == "code" {
			cell["cell_type"], cell["outputs"], cell["execution_count"] = "code", []any{}, nil
		}
		cs = append(cs, cell)
	}
	b, err := json.Marshal(map[string]any{"nbformat": 4, "nbformat_minor": 5, "metadata": md, "cells": cs})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEditedCellComparesWithTheSnapshot(t *testing.T) {
	data := t.TempDir()
	s := &Service{DataDir: data}
	cp := checkpointFile(t, data, "nb-aaaa", 3, "namespace")
	origin := []any{0, nil, 1, 2, 3} // the injected parameters cell has none
	snapshot := nbJSON(t, map[string]any{"millrace": map[string]any{"checkpoint": map[string]any{"cell": 3, "origin": origin}}},
		"code:n = 1", "code:n = 5", "code:x = n", "md:notes", "code:y = x")
	snapPath := filepath.Join(filepath.Dir(cp.Path), "cell-3.ipynb")
	if err := os.WriteFile(snapPath, snapshot, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		what  string
		cells []string
		want  int
	}{
		{"unchanged, a cell added after", []string{"code:n = 1", "code:x = n", "md:notes", "code:y = x", "code:z = y"}, -1},
		{"markdown edited", []string{"code:n = 1", "code:x = n", "md:other notes", "code:y = x", "code:z = y"}, -1},
		{"a cell after the checkpoint edited", []string{"code:n = 1", "code:x = n", "md:notes", "code:y = x", "code:z = 2 * y"}, -1},
		{"cell 1 edited", []string{"code:n = 1", "code:x = 2 * n", "md:notes", "code:y = x", "code:z = y"}, 1},
		{"the parameters cell edited", []string{"code:n = 2", "code:x = n", "md:notes", "code:y = x"}, 0},
		{"markdown turned into code", []string{"code:n = 1", "code:x = n", "code:notes", "code:y = x"}, 2},
		{"cells cut", []string{"code:n = 1", "code:x = n", "md:notes"}, 3},
	} {
		nb, err := notebook.Parse(nbJSON(t, map[string]any{}, tc.cells...))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := s.editedCell(cp, nb); err != nil || got != tc.want {
			t.Errorf("%s: %d %v, want %d", tc.what, got, err, tc.want)
		}
	}
	nb, _ := notebook.Parse(nbJSON(t, map[string]any{}, "code:n = 1"))
	os.WriteFile(snapPath, nbJSON(t, map[string]any{"millrace": map[string]any{"checkpoint": map[string]any{"cell": 2, "origin": origin}}}, "code:n = 1", "code:n = 5", "code:x = n", "md:notes", "code:y = x"), 0o600)
	if _, err := s.editedCell(cp, nb); !IsUserError(err) || !strings.Contains(err.Error(), "is not the notebook snapshot of a checkpoint after cell 3") {
		t.Errorf("another checkpoint's snapshot: %v", err)
	}
	os.Remove(snapPath)
	if _, err := s.editedCell(cp, nb); !IsUserError(err) || !strings.Contains(err.Error(), "snapshot of the checkpoint after cell 3 cannot be read") {
		t.Errorf("no snapshot: %v", err)
	}
}
