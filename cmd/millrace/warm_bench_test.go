package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"millrace/internal/devmode"
	"millrace/internal/testenv"
)

// BenchmarkRunAgainstJupyterExecute times `millrace run` of a 3-cell
// notebook in dev mode (the millrace binary built from this tree, its dev
// service already up) against nbclient's jupyter-execute on the same
// notebook, alternating, with the warm pool on and off (a dev service
// each), and reports the medians and the ratios.
// `go test -run '^$' -bench RunAgainstJupyterExecute -benchtime 5x ./cmd/millrace/`
func BenchmarkRunAgainstJupyterExecute(b *testing.B) {
	je, err := exec.LookPath("jupyter-execute")
	if err != nil {
		b.Fatalf("jupyter-execute is needed for this comparison (Debian: apt-get install python3-nbclient): %v", err)
	}
	bin, err := testenv.BuildBinary(b.TempDir(), "./cmd/millrace", "millrace")
	if err != nil {
		b.Fatal(err)
	}
	serverBin, _ := testenv.ServerBin()
	root := b.TempDir()
	nb := filepath.Join(root, "three.ipynb")
	if err := os.WriteFile(nb, []byte(threeCells), 0o644); err != nil {
		b.Fatal(err)
	}
	type mode struct {
		name    string
		dataDir string
		env     []string
	}
	modes := []mode{{name: "warm", dataDir: b.TempDir()}, {name: "cold", dataDir: b.TempDir(), env: []string{"MILLRACE_WARM_POOL=false"}}}
	run := func(m mode) time.Duration {
		cmd := exec.Command(bin, "run", nb)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), append([]string{"TEMPORAL_ADDRESS=", "MILLRACE_TEMPORAL_BIN=" + serverBin, "MILLRACE_DATA_DIR=" + m.dataDir, "MILLRACE_ROOTS=" + root}, m.env...)...)
		began := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("millrace run (%s): %v\n%s", m.name, err, out)
		}
		return time.Since(began)
	}
	jupyter := func() time.Duration {
		cmd := exec.Command(je, nb, "--output", filepath.Join(b.TempDir(), "out"))
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "PYDEVD_DISABLE_FILE_VALIDATION=1")
		began := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("jupyter-execute: %v\n%s", err, out)
		}
		return time.Since(began)
	}
	for _, m := range modes {
		run(m) // starts the mode's dev service
		b.Cleanup(func() { _, _ = devmode.Stop(m.dataDir, time.Minute) })
	}
	jupyter()
	times := map[string][]time.Duration{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, m := range modes {
			times[m.name] = append(times[m.name], run(m))
			times["jupyter"] = append(times["jupyter"], jupyter())
		}
	}
	med := func(ds []time.Duration) float64 {
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[len(s)/2].Seconds()
	}
	j := med(times["jupyter"])
	b.ReportMetric(j, "jupyter-execute-s")
	for _, m := range modes {
		b.ReportMetric(med(times[m.name]), fmt.Sprintf("millrace-%s-s", m.name))
		b.ReportMetric(med(times[m.name])/j, fmt.Sprintf("%s-ratio", m.name))
	}
}

const threeCells = `{"cells": [
 {"cell_type": "code", "execution_count": null, "id": "a", "metadata": {}, "outputs": [], "source": "x = 1"},
 {"cell_type": "code", "execution_count": null, "id": "b", "metadata": {}, "outputs": [], "source": "y = x + 1"},
 {"cell_type": "code", "execution_count": null, "id": "c", "metadata": {}, "outputs": [], "source": "print(y)"}],
 "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
 "nbformat": 4, "nbformat_minor": 5}`
