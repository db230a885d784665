package runner

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"millrace/internal/failure"
)

// TestReadResult: a missing file is "no result" (the runner died first); a
// file with a kind outside Kinds, or that is not JSON, is an error naming
// the file, so the executor falls back to the exit status instead of
// filing the run under a kind it does not know.
func TestReadResult(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if _, ok, err := ReadResult(filepath.Join(dir, "none.json")); ok || err != nil {
		t.Errorf("missing file: ok %v, err %v; want no result and no error", ok, err)
	}
	good := write("good.json", `{"status": "failed", "kind": "kernel_died", "message": "the kernel died while cell 1 was running",
		"cells_total": 3, "cells_executed": 2, "cell": {"index": 1, "output_index": 2, "ename": "DeadKernelError", "evalue": "Kernel died", "traceback": []}}`)
	res, ok, err := ReadResult(good)
	if !ok || err != nil || res.Kind != failure.KindKernelDied || res.Cell == nil || res.Cell.Index != 1 || res.Cell.EName != "DeadKernelError" {
		t.Errorf("good file: %+v %v %v", res, ok, err)
	}
	for name, body := range map[string]string{
		"old spelling":      `{"status": "failed", "kind": "cancelled"}`,
		"not a runner kind": `{"status": "failed", "kind": "lost"}`,
		"no kind":           `{"status": "failed"}`,
		"not JSON":          `{"status": `,
	} {
		p := write(strings.ReplaceAll(name, " ", "_")+".json", body)
		if _, ok, err := ReadResult(p); ok || err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: ok %v, err %v; want an error naming %s", name, ok, err, p)
		}
	}
}
