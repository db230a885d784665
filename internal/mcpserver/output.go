package mcpserver

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"millrace/internal/jobs"
	"millrace/internal/notebook"
)

// MaxOutputChars bounds get_job_output's max_chars: past it, read the text
// as a resource.
const MaxOutputChars = 100_000

// GetJobOutputArgs are get_job_output's arguments.
type GetJobOutputArgs struct {
	JobID    string `json:"job_id" jsonschema:"the job whose executed notebook to read"`
	CellFrom int    `json:"cell_from,omitempty" jsonschema:"first cell index to report (indices of the output notebook, which has the injected-parameters cell); default 0"`
	CellTo   int    `json:"cell_to,omitempty" jsonschema:"stop before this cell index; default: to the last cell"`
	MaxChars int    `json:"max_chars,omitempty" jsonschema:"text budget per cell in characters (default 2000, at most 100000); longer text is cut and offered whole as a resource"`
	Format   string `json:"format,omitempty" jsonschema:"cells (default), or html: the whole notebook as one HTML page (plots inline, no script) in an embedded text/html resource, for a person to open; cell_from, cell_to and max_chars do not apply"`
}

// Formats of get_job_output.
const (
	formatCells = "cells"
	formatHTML  = "html"
)

// OutputResult is get_job_output's answer.
type OutputResult struct {
	JobID      string         `json:"job_id"`
	Status     string         `json:"status" jsonschema:"the job's status when the output notebook was read"`
	OutputPath string         `json:"output_path"`
	Parameters map[string]any `json:"parameters,omitempty" jsonschema:"the parameters the run was given"`
	Cells      []OutputCell   `json:"cells" jsonschema:"the code cells in the range, in order; empty with format html"`
	Page       *OutputPage    `json:"page,omitempty" jsonschema:"format html: the page, sent as an embedded resource"`
}

// OutputPage describes the HTML page get_job_output sends with format html.
type OutputPage struct {
	URI    string `json:"uri" jsonschema:"read it again with resources/read"`
	Size   int    `json:"size" jsonschema:"bytes"`
	Cached bool   `json:"cached" jsonschema:"rendered before from the same notebook"`
}

// OutputCell is one executed code cell.
type OutputCell struct {
	Index           int                 `json:"index" jsonschema:"cell index in the output notebook"`
	CodeIndex       int                 `json:"code_index" jsonschema:"index among code cells, as progress counts them"`
	ExecutionCount  *int                `json:"execution_count" jsonschema:"the kernel's execution count; null if the cell did not run"`
	Status          string              `json:"status" jsonschema:"pending, running, completed or failed"`
	DurationSeconds float64             `json:"duration_seconds"`
	Text            string              `json:"text" jsonschema:"printed text and plain-text results, cut to max_chars"`
	Truncated       bool                `json:"truncated,omitempty" jsonschema:"text was cut: the whole text is a resource (see resources)"`
	Error           *notebook.CellError `json:"error,omitempty" jsonschema:"the exception the cell raised"`
	Resources       []OutputResource    `json:"resources,omitempty" jsonschema:"outputs not inlined (images, HTML, JSON, the whole text): read them with resources/read"`
}

// OutputResource is an output offered as an MCP resource.
type OutputResource struct {
	URI         string `json:"uri"`
	MimeType    string `json:"mime_type"`
	Size        int    `json:"size" jsonschema:"approximate size in bytes"`
	Description string `json:"description"`
}

func (t *tools) getJobOutput() server.ServerTool {
	tool := mcp.NewTool("get_job_output",
		mcp.WithToolTitle("Job output"),
		mcp.WithDescription(`Read the executed code cells of a job's output notebook (also while it runs: cells executed so far): for each cell its index, execution count, status, duration, printed text and plain-text results cut to a budget (max_chars), and the exception (ename, evalue, traceback) of a failed cell. Images, HTML, JSON and text longer than the budget are not inlined: they are listed in resources and sent as resource links; read one with resources/read (URIs millrace://jobs/{job_id}/outputs/{cell}/{output} and millrace://jobs/{job_id}/cells/{cell}/text). Use cell_from and cell_to to page through a big notebook. format html: the whole notebook as one HTML page instead.`),
		inputSchema[GetJobOutputArgs](map[string]map[string]any{
			"cell_from": {"minimum": 0},
			"cell_to":   {"minimum": 0},
			"max_chars": {"minimum": 0, "maximum": MaxOutputChars},
			"format":    {"enum": []string{formatCells, formatHTML}},
		}),
		mcp.WithOutputSchema[OutputResult](),
		annotations("Job output", true, false, true),
	)
	return server.ServerTool{Tool: tool, Handler: handle(t, t.output)}
}

// outputPage answers get_job_output with format html: the page as an
// embedded resource, which a client can save or show as it is.
func (t *tools) outputPage(ctx context.Context, args GetJobOutputArgs) (OutputResult, string, []mcp.Content, error) {
	if args.CellFrom != 0 || args.CellTo != 0 || args.MaxChars != 0 {
		return OutputResult{}, "", nil, userError("cell_from, cell_to and max_chars do not apply to format html: the page is the whole notebook")
	}
	page, err := t.page(ctx, args.JobID)
	if err != nil {
		return OutputResult{}, "", nil, err
	}
	uri := pageURI(page.JobID)
	res := OutputResult{JobID: page.JobID, Status: page.Status, OutputPath: page.OutputPath, Cells: []OutputCell{},
		Page: &OutputPage{URI: uri, Size: len(page.HTML), Cached: page.Cached}}
	text := fmt.Sprintf("%s %s: %s as an HTML page, %d bytes (embedded resource %s)", page.JobID, page.Status, page.OutputPath, len(page.HTML), uri)
	embedded := mcp.NewEmbeddedResource(mcp.TextResourceContents{URI: uri, MIMEType: "text/html", Text: string(page.HTML)})
	return res, text, []mcp.Content{embedded}, nil
}

func pageURI(jobID string) string { return "millrace://jobs/" + jobID + "/output.html" }

// truncatedSuffix is how notebook.CellOutputs marks text it cut.
var truncatedSuffix = regexp.MustCompile(`… \[truncated (\d+) chars\]$`)

func (t *tools) output(ctx context.Context, _ mcp.CallToolRequest, args GetJobOutputArgs) (OutputResult, string, []mcp.Content, error) {
	switch args.Format {
	case "", formatCells:
	case formatHTML:
		return t.outputPage(ctx, args)
	default:
		return OutputResult{}, "", nil, userError(fmt.Sprintf("format %q: use cells (the default) or html", args.Format))
	}
	if args.MaxChars < 0 || args.MaxChars > MaxOutputChars {
		return OutputResult{}, "", nil, userError(fmt.Sprintf("max_chars %d: must be between 1 and %d (0 for the default, %d); read longer text with resources/read on the cell's text resource", args.MaxChars, MaxOutputChars, jobs.DefaultOutputChars))
	}
	out, err := t.svc.Output(ctx, jobs.OutputRequest{JobID: args.JobID, CellFrom: args.CellFrom, CellTo: args.CellTo, MaxChars: args.MaxChars})
	if err != nil {
		return OutputResult{}, "", nil, err
	}
	res := OutputResult{JobID: out.JobID, Status: out.Status, OutputPath: out.OutputPath, Parameters: out.Parameters, Cells: make([]OutputCell, 0, len(out.Cells))}
	var links []mcp.Content
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %d code cells from %s", out.JobID, out.Status, len(out.Cells), out.OutputPath)
	for _, c := range out.Cells {
		cell := OutputCell{
			Index: c.Index, CodeIndex: c.CodeIndex, ExecutionCount: c.ExecutionCount, Status: c.Status,
			DurationSeconds: c.DurationSeconds, Text: c.Text, Error: c.Error,
		}
		if m := truncatedSuffix.FindStringSubmatchIndex(c.Text); m != nil {
			cell.Truncated = true
			cut, _ := strconv.Atoi(c.Text[m[2]:m[3]])
			cell.Resources = append(cell.Resources, OutputResource{
				URI: cellTextURI(out.JobID, c.Index), MimeType: "text/plain",
				Size: m[0] + cut, Description: fmt.Sprintf("the whole text output of cell %d", c.Index),
			})
		}
		for _, a := range c.Attachments {
			size := a.Size
			if jobs.BinaryMime(a.MimeType) {
				size = size * 3 / 4
			}
			cell.Resources = append(cell.Resources, OutputResource{
				URI: outputURI(out.JobID, c.Index, a.OutputIndex), MimeType: a.MimeType, Size: size,
				Description: fmt.Sprintf("%s output %d of cell %d", a.MimeType, a.OutputIndex, c.Index),
			})
		}
		res.Cells = append(res.Cells, cell)

		count := "-"
		if c.ExecutionCount != nil {
			count = fmt.Sprint(*c.ExecutionCount)
		}
		fmt.Fprintf(&b, "\n\n[cell %d, execution %s, %s, %s]", c.Index, count, c.Status, seconds(c.DurationSeconds))
		if c.Text != "" {
			b.WriteString("\n" + strings.TrimRight(c.Text, "\n"))
		}
		if e := c.Error; e != nil {
			fmt.Fprintf(&b, "\n%s: %s", e.EName, e.EValue)
		}
		for _, r := range cell.Resources {
			fmt.Fprintf(&b, "\n(resource %s: %s, %d bytes)", r.URI, r.MimeType, r.Size)
			link := mcp.NewResourceLink(r.URI, resourceName(r.URI), r.Description, r.MimeType)
			size := int64(r.Size)
			link.Size = &size
			links = append(links, link)
		}
	}
	return res, b.String(), links, nil
}

// Resource URIs of a job's outputs.
const (
	outputURITemplate   = "millrace://jobs/{job_id}/outputs/{cell}/{output}"
	cellTextURITemplate = "millrace://jobs/{job_id}/cells/{cell}/text"
)

func outputURI(jobID string, cell, output int) string {
	return fmt.Sprintf("millrace://jobs/%s/outputs/%d/%d", jobID, cell, output)
}

func cellTextURI(jobID string, cell int) string {
	return fmt.Sprintf("millrace://jobs/%s/cells/%d/text", jobID, cell)
}

// resourceName names a resource link by what follows the job id.
func resourceName(uri string) string {
	parts := strings.SplitN(strings.TrimPrefix(uri, "millrace://jobs/"), "/", 2)
	if len(parts) == 2 {
		return parts[0] + " " + parts[1]
	}
	return uri
}

var (
	outputURIPattern   = regexp.MustCompile(`^millrace://jobs/([^/]+)/outputs/(\d+)/(\d+)$`)
	cellTextURIPattern = regexp.MustCompile(`^millrace://jobs/([^/]+)/cells/(\d+)/text$`)
)

func (t *tools) resourceTemplates() []server.ServerResourceTemplate {
	return []server.ServerResourceTemplate{
		{
			Template: mcp.NewResourceTemplate(outputURITemplate, "job output",
				mcp.WithTemplateDescription("One output of a cell of a job's output notebook, whole: every representation of a rich output (image/png as a blob, text/html, application/json...), the full text of a stream, the full traceback of an error. get_job_output lists these URIs."),
			),
			Handler: t.readOutput,
		},
		{
			Template: mcp.NewResourceTemplate(cellTextURITemplate, "cell text",
				mcp.WithTemplateDescription("The whole printed text and plain-text results of a code cell of a job's output notebook, which get_job_output cuts to max_chars."),
				mcp.WithTemplateMIMEType("text/plain"),
			),
			Handler: t.readCellText,
		},
	}
}

// readOutput serves millrace://jobs/{job_id}/outputs/{cell}/{output}. A
// resource read has no tool-error form: a user mistake is an error whose
// message says what is wrong.
func (t *tools) readOutput(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
	uri := req.Params.URI
	m := outputURIPattern.FindStringSubmatch(uri)
	if m == nil {
		return nil, fmt.Errorf("%s is not an output URI: use %s with numbers, as get_job_output lists them", uri, outputURITemplate)
	}
	cell, err1 := strconv.Atoi(m[2])
	output, err2 := strconv.Atoi(m[3])
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("%s: cell and output numbers are too big", uri)
	}
	d, err := t.svc.OutputData(ctx, m[1], cell, output)
	if err != nil {
		return nil, t.resourceError(uri, err)
	}
	contents := make([]mcp.ResourceContents, 0, len(d.Parts))
	for _, p := range d.Parts {
		if p.Blob != "" {
			contents = append(contents, mcp.BlobResourceContents{URI: uri, MIMEType: p.MimeType, Blob: p.Blob})
		} else {
			contents = append(contents, mcp.TextResourceContents{URI: uri, MIMEType: p.MimeType, Text: p.Text})
		}
	}
	return contents, nil
}

// readCellText serves millrace://jobs/{job_id}/cells/{cell}/text.
func (t *tools) readCellText(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
	uri := req.Params.URI
	m := cellTextURIPattern.FindStringSubmatch(uri)
	if m == nil {
		return nil, fmt.Errorf("%s is not a cell text URI: use %s", uri, cellTextURITemplate)
	}
	cell, err := strconv.Atoi(m[2])
	if err != nil {
		return nil, fmt.Errorf("%s: the cell number is too big", uri)
	}
	text, err := t.svc.CellText(ctx, m[1], cell)
	if err != nil {
		return nil, t.resourceError(uri, err)
	}
	return []mcp.ResourceContents{mcp.TextResourceContents{URI: uri, MIMEType: "text/plain", Text: text}}, nil
}

func (t *tools) resourceError(uri string, err error) error {
	if !jobs.IsUserError(err) {
		t.logger.Error("resource read failed", "uri", uri, "error", err)
	}
	return err
}
