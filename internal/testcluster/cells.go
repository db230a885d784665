package testcluster

import (
	"bufio"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"millrace/internal/executor"
	"millrace/internal/testenv"
)

// CellsLog is the file, in a run's working directory, where the cells of
// a CellsNotebook record themselves.
const CellsLog = "cells.log"

// CellsNotebook writes name into dir: cells code cells, each recording its
// start and end (cell index, kernel pid, attempt id, time) in
// dir/CellsLog and sleeping seconds between. The records are what proves
// that two attempts of a run never ran at once: they come from the
// kernels themselves, not from what the server believes.
func CellsNotebook(t testing.TB, dir, name string, cells int, seconds float64) string {
	t.Helper()
	src := make([]string, cells)
	for i := range src {
		src[i] = fmt.Sprintf(`import os, time
def _record(what, cell=%d):
    with open(%q, 'a') as f:
        f.write('%%s %%d %%d %%s %%.3f\n' %% (what, cell, os.getpid(), os.environ.get(%q, '-'), time.time()))
_record('start')
time.sleep(%g)
_record('end')`, i, CellsLog, executor.MarkerEnv, seconds)
	}
	return testenv.WriteNotebook(t, dir, name, src...)
}

// Record is one line of a CellsLog: a cell of one attempt started or
// ended.
type Record struct {
	What    string // start or end
	Cell    int
	PID     int // the kernel's
	Attempt string
	At      time.Time
}

var recordLine = regexp.MustCompile(`^(start|end) (\d+) (\d+) (\S+) (\d+\.\d+)$`)

// Records reads dir's CellsLog; a line being written is left out.
func Records(t testing.TB, dir string) []Record {
	t.Helper()
	rs, err := readRecords(dir)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func readRecords(dir string) ([]Record, error) {
	f, err := os.Open(filepath.Join(dir, CellsLog))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := recordLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		cell, _ := strconv.Atoi(m[2])
		pid, _ := strconv.Atoi(m[3])
		sec, _ := strconv.ParseFloat(m[5], 64)
		out = append(out, Record{What: m[1], Cell: cell, PID: pid, Attempt: m[4], At: time.Unix(0, int64(sec*1e9))})
	}
	return out, sc.Err()
}

// Of keeps the records of a run's attempts (ids "<run>.<n>").
func Of(rs []Record, run string) []Record {
	var out []Record
	for _, r := range rs {
		if strings.HasPrefix(r.Attempt, run+".") {
			out = append(out, r)
		}
	}
	return out
}

// Ended counts the cells of attempt that ran to their end.
func Ended(rs []Record, attempt string) int {
	n := 0
	for _, r := range rs {
		if r.Attempt == attempt && r.What == "end" {
			n++
		}
	}
	return n
}

// LastEnded is the last cell attempt ran to its end, -1 if none.
func LastEnded(rs []Record, attempt string) int {
	last := -1
	for _, r := range rs {
		if r.What == "end" && r.Attempt == attempt {
			last = r.Cell
		}
	}
	return last
}

// HasRecord reports whether attempt recorded what (start or end) of cell.
func HasRecord(rs []Record, what, attempt string, cell int) bool {
	for _, r := range rs {
		if r.What == what && r.Attempt == attempt && r.Cell == cell {
			return true
		}
	}
	return false
}

// Attempts lists the attempts of rs in the order they first recorded.
func Attempts(rs []Record) []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range rs {
		if !seen[r.Attempt] {
			seen[r.Attempt] = true
			out = append(out, r.Attempt)
		}
	}
	return out
}

// CheckNoOverlap fails t with every Overlaps of rs.
func CheckNoOverlap(t testing.TB, rs []Record, gone map[string]time.Time) {
	t.Helper()
	for _, p := range Overlaps(rs, gone) {
		t.Error(p)
	}
}

// Overlaps lists what went wrong between the attempts of rs: a cell of
// one attempt that ran while a cell of another did, an attempt that ran
// in more than one kernel, two attempts in one kernel. A cell without an
// end record was killed: it counts as running until gone[its attempt],
// when the test saw that attempt's kernel gone (a bound from above);
// such a cell with no time in gone is a problem too.
func Overlaps(rs []Record, gone map[string]time.Time) []string {
	type span struct {
		cell       int
		start, end time.Time
	}
	var out []string
	attempts := Attempts(rs)
	spans := map[string][]span{}
	pids := map[string]map[int]bool{}
	for _, r := range rs {
		if pids[r.Attempt] == nil {
			pids[r.Attempt] = map[int]bool{}
		}
		pids[r.Attempt][r.PID] = true
		if r.What == "start" {
			spans[r.Attempt] = append(spans[r.Attempt], span{cell: r.Cell, start: r.At})
			continue
		}
		s := spans[r.Attempt]
		if len(s) == 0 || s[len(s)-1].cell != r.Cell {
			out = append(out, fmt.Sprintf("attempt %s: end of cell %d without its start", r.Attempt, r.Cell))
			continue
		}
		s[len(s)-1].end = r.At
	}
	for _, a := range attempts {
		for j := range spans[a] {
			if spans[a][j].end.IsZero() {
				bound, ok := gone[a]
				if !ok {
					out = append(out, fmt.Sprintf("attempt %s: cell %d has no end, and its kernel was not seen gone", a, spans[a][j].cell))
				}
				spans[a][j].end = bound
			}
		}
		if len(pids[a]) != 1 {
			out = append(out, fmt.Sprintf("attempt %s ran in %d kernels, want 1", a, len(pids[a])))
		}
	}
	for i, a := range attempts {
		for _, b := range attempts[i+1:] {
			for p := range pids[a] {
				if pids[b][p] {
					out = append(out, fmt.Sprintf("attempts %s and %s both ran in kernel %d", a, b, p))
				}
			}
			for _, x := range spans[a] {
				for _, y := range spans[b] {
					if x.start.Before(y.end) && y.start.Before(x.end) {
						out = append(out, fmt.Sprintf("cell %d of %s [%s, %s] and cell %d of %s [%s, %s] ran at the same time", x.cell, a, x.start.Format(time.StampMilli), x.end.Format(time.StampMilli), y.cell, b, y.start.Format(time.StampMilli), y.end.Format(time.StampMilli)))
					}
				}
			}
		}
	}
	return out
}

// KernelWatch notes when the kernel of each attempt recorded in a
// CellsLog is first seen gone: the bound CheckNoOverlap needs for a cell
// that was killed before it could record its end.
type KernelWatch struct {
	mu   sync.Mutex
	gone map[string]time.Time
}

// WatchKernels polls dir's CellsLog and the process table every 100 ms
// until t ends.
func WatchKernels(t testing.TB, dir string) *KernelWatch {
	w := &KernelWatch{gone: map[string]time.Time{}}
	stop := make(chan struct{})
	done := make(chan struct{})
	t.Cleanup(func() { close(stop); <-done })
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			rs, err := readRecords(dir)
			if err != nil {
				continue
			}
			now := time.Now()
			w.mu.Lock()
			for _, r := range rs {
				if _, seen := w.gone[r.Attempt]; !seen && !testenv.Alive(r.PID) {
					w.gone[r.Attempt] = now
				}
			}
			w.mu.Unlock()
		}
	}()
	return w
}

// Gone returns when each attempt's kernel was first seen gone.
func (w *KernelWatch) Gone() map[string]time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.gone)
}

// Wait waits up to timeout for attempt's kernel to be seen gone, and
// returns when it was.
func (w *KernelWatch) Wait(t testing.TB, attempt string, timeout time.Duration) time.Time {
	t.Helper()
	var at time.Time
	testenv.Eventually(t, timeout, "the kernel of attempt "+attempt+" to be gone", func() bool {
		var ok bool
		at, ok = w.Gone()[attempt]
		return ok
	})
	return at
}
