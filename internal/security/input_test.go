package security_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"millrace/internal/jobs"
	"millrace/internal/logstore"
	"millrace/internal/testenv"
	"millrace/workflows"
)

// TestBatchReferenceBomb: a 1.6 MB start_batch whose node repeats a
// reference to a 512 KB parameter of its upstream 60,000 times: 30 GB once
// expanded, were the references expanded before any size check.
func TestBatchReferenceBomb(t *testing.T) {
	o := attack(t, "start_batch (1.6 MB) whose ${a.parameters.x} references expand to gigabytes")
	t.Parallel()
	root := t.TempDir()
	nb := testenv.WriteNotebook(t, root, "n.ipynb", "print(1)")
	cfg := server.Config(t)
	p := startMCP(t, cfg, root)
	c := mcpClient(t, p.url, nil, false)
	before, _ := p.memory(t)

	big := strings.Repeat("x", 512<<10)
	refs := strings.Repeat("${a.parameters.x}", 60_000)
	nodes := []map[string]any{
		{"id": "a", "path": nb, "parameters": map[string]any{"x": big}},
		{"id": "b", "path": nb, "depends_on": []string{"a"}, "parameters": map[string]any{"y": refs}},
	}
	_, msg := callTool(t, c, "start_batch", map[string]any{"nodes": nodes})
	_, peak := p.memory(t)
	if !strings.Contains(msg, "references expand to more than") || !strings.Contains(msg, "node b") {
		t.Fatalf("start_batch answered %q, want an error that the references expand too far", msg)
	}
	// The bound: the request is decoded a few times over (JSON-RPC, tool
	// arguments, the batch) and the expansion stops at
	// jobs.MaxBatchInputBytes (1.5 MiB): 128 MiB over the resident set
	// before, where the same request took 1.35 GB without a bound.
	const bound = 128 * mib
	checkGrowth(t, before, peak, bound)
	if n := workflowsOn(t, cfg.TaskQueue); n != 0 {
		t.Fatalf("%d workflows started", n)
	}

	// A 2 MB batch without references is refused too: it could not travel
	// as one Temporal payload.
	nodes = nil
	for i := 0; i < 4; i++ {
		nodes = append(nodes, map[string]any{"id": fmt.Sprintf("n%d", i), "path": nb, "parameters": map[string]any{"x": big}})
	}
	if _, msg2 := callTool(t, c, "start_batch", map[string]any{"nodes": nodes}); !strings.Contains(msg2, "a batch may hold at most") {
		t.Errorf("a 2 MB batch: %q, want refused for its size", msg2)
	}
	o.saw("tool error %q; peak RSS %d MiB (%d MiB before; bound +%d MiB); nothing started", firstSentence(msg), peak/mib, before/mib, bound/mib)
}

// TestLogPageOfLongLines: a run prints 300 lines of 64 KiB (19 MiB); one
// get_job_logs page of 2000 lines would have been all of it.
func TestLogPageOfLongLines(t *testing.T) {
	o := attack(t, "get_job_logs with limit 2000 over a run that printed 300 lines of 64 KiB")
	t.Parallel()
	root := t.TempDir()
	const lines, width = 300, logstore.MaxLineBytes
	nb := testenv.WriteNotebook(t, root, "long.ipynb", fmt.Sprintf("for i in range(%d):\n    print(f'{i:06d}' + 'x' * %d, flush=True)", lines, width-6))
	cfg := server.Config(t)
	server.StartWorker(t, cfg)
	p := startMCP(t, cfg, root)
	c := mcpClient(t, p.url, nil, false)
	res, msg := callTool(t, c, "start_notebook", map[string]any{"path": nb})
	if msg != "" {
		t.Fatal(msg)
	}
	jobID, _ := res["job_id"].(string)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		st, msg := callTool(t, c, "get_job_status", map[string]any{"job_id": jobID})
		if msg != "" {
			t.Fatal(msg)
		}
		if st["status"] == workflows.StatusSucceeded {
			break
		}
		if s, _ := st["status"].(string); s == workflows.StatusFailed || time.Now().After(deadline) {
			t.Fatalf("run: %v", st)
		}
		time.Sleep(500 * time.Millisecond)
	}
	before, _ := p.memory(t)
	var next, pagesSeen = 0, 0
	cursor, biggest := "", 0
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("the pages never reach the end")
		}
		page, msg := callTool(t, c, "get_job_logs", map[string]any{"job_id": jobID, "cursor": cursor, "limit": jobs.MaxLogLines, "stream": "stdout"})
		if msg != "" {
			t.Fatal(msg)
		}
		pagesSeen++
		text := 0
		ls, _ := page["lines"].([]any)
		for _, l := range ls {
			s, _ := l.(map[string]any)["text"].(string)
			text += len(s)
			var i int
			if _, err := fmt.Sscanf(s, "%06d", &i); err == nil && len(s) == width {
				if i != next {
					t.Fatalf("line %d after line %d: a line was skipped or repeated", i, next-1)
				}
				next++
			}
		}
		if text > jobs.MaxLogPageBytes {
			t.Fatalf("a page of %d bytes of text, budget %d", text, jobs.MaxLogPageBytes)
		}
		biggest = max(biggest, text)
		cursor, _ = page["next_cursor"].(string)
		if done, _ := page["done"].(bool); done {
			break
		}
	}
	_, peak := p.memory(t)
	if next != lines {
		t.Fatalf("read %d of %d lines", next, lines)
	}
	// A page is at most 1 MiB of text, sent as structured content and as
	// text: 64 MiB over the resident set before bounds it with room.
	const bound = 64 * mib
	checkGrowth(t, before, peak, bound)
	o.saw("%d pages, the largest %d KiB of text (budget %d KiB), all %d lines once and in order; peak RSS %d MiB (bound +%d MiB over %d MiB)",
		pagesSeen, biggest>>10, jobs.MaxLogPageBytes>>10, lines, peak/mib, bound/mib, before/mib)
}

// aliasBomb is the "billion laughs": 380 bytes that expand to 9^9 strings.
const aliasBomb = `a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
`

// TestHostileInputFiles hands the millrace CLI a parameters file (-f) and
// a batch file that explode or never end once parsed.
func TestHostileInputFiles(t *testing.T) {
	o := attack(t, "a -f parameters file or batch file with a YAML alias bomb, a recursive alias, or JSON nested 100,000 deep")
	t.Parallel()
	dir := t.TempDir()
	nb := testenv.WriteNotebook(t, dir, "n.ipynb", "print(1)")
	indent := func(s string) string { return "      " + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n      ") }
	files := []struct {
		name, content, want string
		batch               bool
	}{
		{"bomb.yaml", aliasBomb, "aliases are expanded", false},
		{"recursive.yaml", "y: &a [*a]\n", "recursive alias", false},
		{"deep.json", `{"x": ` + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + "}", "nested deeper than 64", false},
		{"deep.yaml", "x: " + strings.Repeat("[", 5_000) + strings.Repeat("]", 5_000) + "\n", "nested deeper than 64", false},
		{"bomb-batch.yaml", "nodes:\n  - id: a\n    path: n.ipynb\n    parameters:\n" + indent(aliasBomb) + "\n", "aliases are expanded", true},
		{"recursive-batch.yaml", "nodes:\n  - id: a\n    path: n.ipynb\n    parameters:\n      y: &a [*a]\n", "recursive alias", true},
	}
	// The bound is over the CLI's own footprint, measured the same way
	// (`millrace version`) just before each file: a child's ru_maxrss
	// starts from this test process's peak, whose memory the child shared
	// until it ran exec, so an absolute figure would measure the test. The
	// bomb took 2.5 GB and the recursive alias overflowed the stack.
	const bound = 64 * mib
	var peakAll int64
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if err := os.WriteFile(path, []byte(f.content), 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"run", "-f", path, nb}
		if f.batch {
			args = []string{"batch", path}
		}
		base := exec.Command(bin["millrace"], "version")
		if err := base.Run(); err != nil {
			t.Fatalf("millrace version: %v", err)
		}
		basePeak := base.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10
		cmd := exec.Command(bin["millrace"], args...)
		cmd.Env = append(environWithout("TEMPORAL_ADDRESS"), "TEMPORAL_ADDRESS="+server.Address)
		out, err := cmd.CombinedOutput()
		code := -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		peak := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss<<10 - basePeak
		peakAll = max(peakAll, peak)
		if code != 2 || !strings.Contains(string(out), f.want) || !strings.Contains(string(out), path) {
			t.Errorf("millrace %s: exit %d\n%s\nwant exit 2 with %q naming the file", strings.Join(args, " "), code, out, f.want)
		}
		if peak > bound {
			t.Errorf("millrace %s: peak resident set %d MiB over `millrace version`'s, want under %d MiB", f.name, peak/mib, bound/mib)
		}
	}
	o.saw("exit 2 with an error naming the file (values past %d after alias expansion; recursive alias; nesting past %d); peak RSS at most %d MiB over the CLI's own (bound %d MiB)",
		jobs.MaxYAMLNodes, jobs.MaxInputDepth, peakAll/mib, bound/mib)
}

// firstSentence shortens an error for the report.
func firstSentence(s string) string {
	if i := strings.Index(s, ":"); i > 0 && i < 120 {
		if j := strings.Index(s[i+1:], ":"); j > 0 {
			return s[:i+1+j]
		}
	}
	if len(s) > 160 {
		return s[:160] + "..."
	}
	return s
}
