package mcpserver

import (
	"context"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"millrace/internal/notebook"
)

// InspectNotebookArgs are inspect_notebook's arguments.
type InspectNotebookArgs struct {
	Path string `json:"path" jsonschema:"the notebook (.ipynb): absolute, or relative to the server's first root; it must lie inside the roots"`
}

func (t *tools) inspectNotebook() server.ServerTool {
	tool := mcp.NewTool("inspect_notebook",
		mcp.WithToolTitle("Inspect a notebook"),
		mcp.WithDescription(`Read a notebook without running it: its kernel and language, how many cells (and code cells) it has, and the parameters of its cell tagged "parameters" (name, inferred type, default as Python source, help text from comments), as papermill's --help-notebook shows them. Call it before start_notebook to know which parameters to pass. Warnings say what papermill would do surprisingly (no parameters cell, no kernelspec...).`),
		inputSchema[InspectNotebookArgs](nil),
		mcp.WithOutputSchema[notebook.Inspection](),
		annotations("Inspect a notebook", true, false, true),
	)
	return server.ServerTool{Tool: tool, Handler: handle(t, t.inspect)}
}

func (t *tools) inspect(_ context.Context, _ mcp.CallToolRequest, args InspectNotebookArgs) (notebook.Inspection, string, []mcp.Content, error) {
	in, err := t.svc.Inspect(args.Path)
	if err != nil {
		return notebook.Inspection{}, "", nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: kernel %s (%s), %d cells (%d code)", args.Path, orNone(in.KernelName), orNone(in.Language), in.Cells, in.CodeCells)
	if len(in.Parameters) == 0 {
		b.WriteString("; no parameters")
	} else {
		fmt.Fprintf(&b, "; parameters (cell %d):", in.ParametersCell)
	}
	for _, p := range in.Parameters {
		fmt.Fprintf(&b, "\n  %s", p.Name)
		if p.InferredType != "" && p.InferredType != "None" {
			b.WriteString(": " + p.InferredType)
		}
		b.WriteString(" = " + notebook.Shorten(p.Default, 200))
		if p.Help != "" {
			b.WriteString("  # " + p.Help)
		}
	}
	for _, w := range in.Warnings {
		b.WriteString("\nwarning: " + w)
	}
	return *in, b.String(), nil, nil
}

func orNone(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
