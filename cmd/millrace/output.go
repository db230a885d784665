package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"millrace/internal/jobs"
)

func outputCommand() command {
	return command{
		name:    "output",
		args:    "ID [flags]",
		summary: "print the executed code cells of a job's output notebook",
		help: `Prints the code cells of a job's output notebook as they ran: status, duration,
text output and errors; rich outputs (images, HTML) are listed, not shown. It
works while the job runs too: the output notebook is saved at every cell.`,
		run: runOutput,
	}
}

func runOutput(ctx context.Context, c *cli, cmd command, args []string) error {
	f := newFlags(c, cmd)
	from := f.Int("from", 0, "the first code cell `index` to show")
	to := f.Int("to", 0, "show the code cells before this `index` (default: to the end)")
	maxChars := f.Int("max-chars", jobs.DefaultOutputChars, "at most `n` characters of text per cell")
	asJSON := f.withJSON()
	f.withConfig()
	id, svc, done, err := f.parseJob(ctx, args)
	if err != nil {
		return err
	}
	defer done()
	out, err := svc.Output(ctx, jobs.OutputRequest{JobID: id, CellFrom: *from, CellTo: *to, MaxChars: *maxChars})
	if err != nil {
		return err
	}
	if *asJSON {
		return c.printJSON(out)
	}
	s, w := c.out, c.stdout
	fmt.Fprintf(w, "%s %s  %s\n", s.bold("job "+out.JobID), s.status(out.Status), displayPath(out.OutputPath))
	if len(out.Parameters) > 0 {
		var ps []string
		for _, k := range sortedKeys(out.Parameters) {
			ps = append(ps, fmt.Sprintf("%s=%v", k, pyRepr(out.Parameters[k])))
		}
		fmt.Fprintf(w, "parameters: %s\n", strings.Join(ps, ", "))
	}
	for _, cl := range out.Cells {
		head := fmt.Sprintf("cell %d", cl.Index)
		if cl.ExecutionCount != nil {
			head += fmt.Sprintf(" · In [%d]", *cl.ExecutionCount)
		}
		if cl.Status != "" {
			head += " · " + cl.Status
		}
		if cl.DurationSeconds > 0 {
			head += " · " + fmtDuration(seconds(cl.DurationSeconds))
		}
		fmt.Fprintf(w, "\n%s\n", s.bold("── "+head+" ──"))
		if cl.Text != "" {
			fmt.Fprintln(w, strings.TrimRight(cl.Text, "\n"))
		}
		if cl.Error != nil {
			printFailure(w, s, &jobs.Failure{EName: cl.Error.EName, EValue: cl.Error.EValue, Traceback: cl.Error.Traceback}, "")
		}
		for _, a := range cl.Attachments {
			fmt.Fprintf(w, "%s\n", s.dim(fmt.Sprintf("[%s output, %d bytes, not shown]", a.MimeType, a.Size)))
		}
	}
	return nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// pyRepr shows a parameter value roughly as Python would: None, True,
// 'text', numbers and containers as JSON.
func pyRepr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case string:
		return strconv.Quote(x)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
