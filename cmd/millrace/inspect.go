package main

import (
	"context"
	"fmt"

	"millrace/internal/notebook"
)

func inspectCommand() command {
	return command{
		name:    "inspect",
		args:    "NOTEBOOK [flags]",
		summary: "show a notebook's kernel, cells and the parameters it takes",
		help: `Reads NOTEBOOK (nothing runs, Temporal is not contacted) and shows its kernel,
its cells and the parameters of its parameters cell (the cell tagged
"parameters"): name, type, default and help, as papermill's --help-notebook
shows them, with warnings about what a run would do differently than expected.`,
		run: runInspect,
	}
}

func runInspect(ctx context.Context, c *cli, cmd command, args []string) error {
	f := newFlags(c, cmd)
	asJSON := f.withJSON()
	cfg := f.withConfig()
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	svc, err := localService(cmd, cfg)
	if err != nil {
		return err
	}
	in, err := svc.Inspect(absPath(pos[0]))
	if err != nil {
		return err
	}
	if *asJSON {
		return c.printJSON(in)
	}
	s, w := c.out, c.stdout
	kernel := in.KernelName
	if kernel == "" {
		kernel = "(none named)"
	}
	if in.Language != "" {
		kernel += " (" + in.Language + ")"
	}
	fmt.Fprintf(w, "%-11s %s\n", "notebook", s.bold(pos[0]))
	fmt.Fprintf(w, "%-11s %s\n", "kernel", kernel)
	fmt.Fprintf(w, "%-11s %d, %d of them code\n", "cells", in.Cells, in.CodeCells)
	switch {
	case in.ParametersCell < 0:
		fmt.Fprintf(w, "%-11s none (no cell is tagged \"parameters\")\n", "parameters")
	case len(in.Parameters) == 0:
		fmt.Fprintf(w, "%-11s none declared in cell %d\n", "parameters", in.ParametersCell)
	default:
		fmt.Fprintf(w, "%-11s in cell %d:\n", "parameters", in.ParametersCell)
		t := table{header: []string{"  NAME", "TYPE", "DEFAULT", "HELP"}}
		for _, p := range in.Parameters {
			typ := p.InferredType
			if typ == "None" {
				typ = "-" // papermill's "not declared"
			}
			t.add(cell{text: "  " + p.Name}, cell{text: typ}, cell{text: notebook.Shorten(p.Default, 50)}, cell{text: p.Help})
		}
		t.print(w, s)
	}
	for _, warning := range in.Warnings {
		fmt.Fprintf(w, "%s %s\n", s.yellow("warning:"), warning)
	}
	return nil
}
