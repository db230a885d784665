package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"millrace/internal/atomicfile"
	"millrace/internal/filemode"
	"millrace/internal/jobs"
)

func outputCommand() command {
	return command{
		name:    "output",
		args:    "ID [flags]",
		summary: "print the executed code cells of a job's output notebook",
		help: `Prints the code cells of a job's output notebook as they ran: status, duration,
text output and errors; rich outputs (images, HTML) are listed, not shown. It
works while the job runs too: the output notebook is saved at every cell.

With --html, writes the whole notebook as one HTML page instead (nbconvert,
in the Python that runs notebooks): plots inline, no script, nothing loaded
from the network, so the file opens anywhere. The page is cached in the
job's folder and rebuilt when the notebook changes. A batch node is a job:
give its job id (millrace jobs --batch BATCH lists them).`,
		run: runOutput,
	}
}

func runOutput(ctx context.Context, c *cli, cmd command, args []string) error {
	f := newFlags(c, cmd)
	from := f.Int("from", 0, "the first code cell `index` to show")
	to := f.Int("to", 0, "show the code cells before this `index` (default: to the end)")
	maxChars := f.Int("max-chars", jobs.DefaultOutputChars, "at most `n` characters of text per cell")
	asJSON := f.withJSON()
	html := f.Bool("html", false, "write the output notebook as a self-contained HTML page (nbconvert) instead")
	file := f.String("o", "", "with --html, write the page to `file` (private like run files: MILLRACE_FILE_MODE) instead of stdout")
	f.withConfig()
	id, svc, done, err := f.parseJob(ctx, args)
	if err != nil {
		return err
	}
	defer done()
	if *html {
		set := map[string]bool{}
		f.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
		for _, name := range []string{"from", "to", "max-chars", "json"} {
			if set[name] {
				return usagef(cmd, "--%s does not apply to --html: the page is the whole notebook", name)
			}
		}
		return writePage(ctx, c, cmd, svc, id, *file)
	}
	if *file != "" {
		return usagef(cmd, "-o writes a page: add --html")
	}
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

// writePage renders a job's page and writes it to file, or to stdout when
// file is "". A page file is private (filemode.File: MILLRACE_FILE_MODE
// opens it to the group) and replaced whole, so a browser reloading it
// never sees half a page. A terminal gets no page: it would be half a
// megabyte of markup.
func writePage(ctx context.Context, c *cli, cmd command, svc *jobs.Service, id, file string) error {
	if file == "" && isTerminal(c.stdout) {
		return usagef(cmd, "--html writes a page of HTML: give -o FILE, or redirect stdout to a file")
	}
	page, err := svc.OutputHTML(ctx, id)
	if err != nil {
		return err
	}
	if file == "" {
		_, err := c.stdout.Write(page.HTML)
		return err
	}
	if err := atomicfile.Write(file, page.HTML, filemode.File); err != nil {
		return fmt.Errorf("write the page: %w", err)
	}
	fmt.Fprintf(c.stderr, "job %s (%s): %s, %d KB\n", page.JobID, page.Status, displayPath(file), (len(page.HTML)+1023)/1024)
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
