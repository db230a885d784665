package benchreport

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Group is one `go test` run: the benchmarks of one package that share a
// -benchtime and an environment. Each group starts its package's own
// embedded server, so groups never disturb each other.
type Group struct {
	Package   string   // import path relative to the module root, "./activities/"
	Bench     string   // the -bench regexp
	Benchtime string   // the -benchtime ("10x": ten operations, such as ten runs each way)
	Quick     string   // the -benchtime in quick mode; "" skips the group there
	Env       []string // extra environment, "NAME=value"
	QuickEnv  []string // extra environment in quick mode (after Env, so it wins)
	Timeout   time.Duration
	// Prefix, when set, is put before the names of the group's results, so
	// the same benchmark can run twice in different settings.
	Prefix string
	// Needs is a path the group needs (a folder its environment names);
	// without it the group is skipped.
	Needs string
}

// Results maps a benchmark's name (without the GOMAXPROCS suffix) to the
// figures it reported, by unit.
type Results map[string]map[string]float64

// Value returns one figure and whether it was reported.
func (r Results) Value(bench, unit string) (float64, bool) {
	v, ok := r[bench][unit]
	return v, ok
}

// testEvent is the part of `go test -json`'s events that is read.
type testEvent struct {
	Action string
	Test   string
	Output string
}

// resultLine is a benchmark's result line: name, operations, then pairs of
// value and unit ("3.10 direct-s").
var resultLine = regexp.MustCompile(`^(Benchmark\S+)\s+(\d+)\s+(.+)$`)

// procsSuffix is the -GOMAXPROCS suffix the testing package appends.
var procsSuffix = regexp.MustCompile(`-\d+$`)

// Run runs the group with go test from dir (the module root) and returns
// what its benchmarks reported. Every line the benchmarks print goes to
// log. A package that fails is an error carrying its last lines, but the
// figures read before the failure are still returned.
func (g Group) Run(ctx context.Context, dir string, quick bool, log io.Writer) (Results, error) {
	benchtime, env := g.Benchtime, g.Env
	if quick {
		benchtime, env = g.Quick, append(append([]string(nil), g.Env...), g.QuickEnv...)
	}
	timeout := g.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Minute
	}
	args := []string{"test", "-json", "-count=1", "-run", "^$", "-bench", g.Bench,
		"-benchtime", benchtime, "-timeout", timeout.String(), g.Package}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = log
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "\n$ %s go %s\n", strings.Join(env, " "), strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("go test %s: %w", g.Package, err)
	}
	res, tail := parse(out, log, g.Prefix)
	if err := cmd.Wait(); err != nil {
		return res, fmt.Errorf("go test %s -bench %s: %v\n%s", g.Package, g.Bench, err, strings.Join(tail, ""))
	}
	return res, nil
}

// parse reads go test's JSON events, copies each output line to log, and
// gathers the result lines. It returns the last lines too, to explain a
// failure.
func parse(r io.Reader, log io.Writer, prefix string) (Results, []string) {
	res := Results{}
	partial := map[string]string{}
	var tail []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var ev testEvent
		if json.Unmarshal(sc.Bytes(), &ev) != nil {
			fmt.Fprintln(log, sc.Text()) // a build error, say: not JSON
			tail = appendTail(tail, sc.Text()+"\n")
			continue
		}
		if ev.Action != "output" {
			continue
		}
		io.WriteString(log, ev.Output)
		tail = appendTail(tail, ev.Output)
		// test2json may split a result line in two events (the name, then
		// the figures): join the pieces of each test's line.
		partial[ev.Test] += ev.Output
		if !strings.HasSuffix(ev.Output, "\n") {
			continue
		}
		line := partial[ev.Test]
		delete(partial, ev.Test)
		name, figures, ok := ParseResult(strings.TrimSpace(line))
		if !ok {
			continue
		}
		name = prefix + name
		if res[name] == nil {
			res[name] = map[string]float64{}
		}
		for unit, v := range figures {
			res[name][unit] = v
		}
	}
	return res, tail
}

func appendTail(tail []string, s string) []string {
	const keep = 40
	tail = append(tail, s)
	if len(tail) > keep {
		tail = tail[len(tail)-keep:]
	}
	return tail
}

// ParseResult reads one benchmark result line, such as
// "BenchmarkReadPage/end-2   200   146238 ns/op   12 B/op". It returns the
// benchmark's name without the GOMAXPROCS suffix and its figures by unit.
func ParseResult(line string) (string, map[string]float64, bool) {
	m := resultLine.FindStringSubmatch(line)
	if m == nil {
		return "", nil, false
	}
	f := strings.Fields(m[3])
	if len(f)%2 != 0 {
		return "", nil, false
	}
	figures := map[string]float64{}
	for i := 0; i < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return "", nil, false
		}
		figures[f[i+1]] = v
	}
	return procsSuffix.ReplaceAllString(m[1], ""), figures, true
}
