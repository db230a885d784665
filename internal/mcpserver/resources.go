package mcpserver

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"millrace/internal/jobs"
	"millrace/internal/logstore"
)

// A job is four resources, read with resources/read and followed with
// resources/subscribe (see resources_subscribe.go): its status, the end of
// its log, its output notebook and that notebook as an HTML page. They are offered as templates, not in
// resources/list: see jobResourceTemplates.
const (
	jobURITemplate       = "millrace://jobs/{job_id}"
	jobLogsURITemplate   = "millrace://jobs/{job_id}/logs"
	jobOutputURITemplate = "millrace://jobs/{job_id}/output.ipynb"
	jobPageURITemplate   = "millrace://jobs/{job_id}/output.html"
)

// jobURIPattern matches the four job resources; group 1 is the job id.
var jobURIPattern = regexp.MustCompile(`^millrace://jobs/([^/?#]*)(/logs|/output\.ipynb|/output\.html)?$`)

// ipynbMimeType is the registered media type of a Jupyter notebook.
const ipynbMimeType = "application/x-ipynb+json"

// Bounds of the logs resource: the last LogsResourceLines lines, and no
// more than LogsResourceBytes of their text (older lines are dropped
// first). A resource has no cursor; get_job_logs pages through everything.
const (
	LogsResourceLines = jobs.DefaultLogLines
	LogsResourceBytes = 256 << 10
)

// jobResourceTemplates declare the job resources. resources/list stays
// empty on purpose: jobs come and go by the minute, listing them would cost
// a visibility query on every list (clients list at connect time), and a
// list without list_changed notifications goes stale at once. Clients find
// job ids where they are made and searched for (start_notebook, list_jobs)
// and the URI forms here, in resources/templates/list.
func (t *tools) jobResourceTemplates() []server.ServerResourceTemplate {
	return []server.ServerResourceTemplate{
		{
			Template: mcp.NewResourceTemplate(jobURITemplate, "job status",
				mcp.WithTemplateDescription("A notebook job's status as JSON, the same object get_job_status returns: status, progress (cell k/n), attempts, times, output path, the failure. Subscribe (resources/subscribe) to be sent notifications/resources/updated when its status or progress changes."),
				mcp.WithTemplateMIMEType("application/json"),
			),
			Handler: t.readJobStatus,
		},
		{
			Template: mcp.NewResourceTemplate(jobLogsURITemplate, "job log",
				mcp.WithTemplateDescription(fmt.Sprintf("The last %d lines (at most %d KiB) of what a notebook job printed, stdout and stderr, newest last. get_job_logs pages through the whole log with a cursor. Subscribable: updated at the job's status and cell changes.", LogsResourceLines, LogsResourceBytes>>10)),
				mcp.WithTemplateMIMEType("text/plain"),
			),
			Handler: t.readJobLogs,
		},
		{
			Template: mcp.NewResourceTemplate(jobOutputURITemplate, "output notebook",
				mcp.WithTemplateDescription("A notebook job's output notebook (.ipynb JSON) as it is now: while the job runs, the cells executed so far. get_job_output reads it cell by cell with a text budget. Subscribable: updated at the job's status and cell changes."),
				mcp.WithTemplateMIMEType(ipynbMimeType),
			),
			Handler: t.readJobOutputNotebook,
		},
		{
			Template: mcp.NewResourceTemplate(jobPageURITemplate, "output page",
				mcp.WithTemplateDescription("A notebook job's output notebook as one HTML page (nbconvert): plots inline as data: URIs, no script, nothing loaded from the network. Subscribable like output.ipynb."),
				mcp.WithTemplateMIMEType("text/html"),
			),
			Handler: t.readJobPage,
		},
	}
}

// parseJobURI finds the job of a job resource URI, or says which forms
// there are.
func parseJobURI(uri string) (string, error) {
	m := jobURIPattern.FindStringSubmatch(uri)
	if m == nil {
		return "", fmt.Errorf("%s is not a job resource: use %s, %s, %s or %s", uri, jobURITemplate, jobLogsURITemplate, jobOutputURITemplate, jobPageURITemplate)
	}
	return m[1], nil
}

// readJobStatus serves millrace://jobs/{job_id}. As for the other resource
// readers, a user mistake is an error whose message says what is wrong:
// a resource read has no tool-error form.
func (t *tools) readJobStatus(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
	uri := req.Params.URI
	jobID, err := parseJobURI(uri)
	if err != nil {
		return nil, err
	}
	st, err := t.svc.Status(ctx, jobID)
	if err != nil {
		return nil, t.resourceError(uri, err)
	}
	b, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	return []mcp.ResourceContents{mcp.TextResourceContents{URI: uri, MIMEType: "application/json", Text: string(b)}}, nil
}

// readJobLogs serves millrace://jobs/{job_id}/logs: a header line, then
// the last lines of the log as get_job_logs renders them.
func (t *tools) readJobLogs(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
	uri := req.Params.URI
	jobID, err := parseJobURI(uri)
	if err != nil {
		return nil, err
	}
	page, err := t.svc.Logs(ctx, jobs.LogsRequest{JobID: jobID, Tail: LogsResourceLines})
	if err != nil {
		return nil, t.resourceError(uri, err)
	}
	lines := lastBytes(page.Lines, LogsResourceBytes)
	var b strings.Builder
	switch {
	case len(lines) == 0:
		fmt.Fprintf(&b, "%s %s: nothing printed yet", jobID, page.Status)
	case lines[0].Attempt > 1 || lines[0].Seq > 1:
		fmt.Fprintf(&b, "%s %s: the last %d lines of its log; get_job_logs reads the earlier ones", jobID, page.Status, len(lines))
	default:
		fmt.Fprintf(&b, "%s %s: all %d lines of its log so far", jobID, page.Status, len(lines))
	}
	writeLogLines(&b, lines)
	b.WriteByte('\n')
	return []mcp.ResourceContents{mcp.TextResourceContents{URI: uri, MIMEType: "text/plain", Text: b.String()}}, nil
}

// lastBytes keeps the newest lines whose text fits in max bytes.
func lastBytes(lines []logstore.Line, max int) []logstore.Line {
	size := 0
	for i := len(lines) - 1; i >= 0; i-- {
		size += len(lines[i].Text) + 1
		if size > max {
			return lines[i+1:]
		}
	}
	return lines
}

// readJobOutputNotebook serves millrace://jobs/{job_id}/output.ipynb: the
// file as the run last saved it (the runner replaces it atomically at every
// cell start and end, so a read never sees half a notebook).
func (t *tools) readJobOutputNotebook(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
	uri := req.Params.URI
	jobID, err := parseJobURI(uri)
	if err != nil {
		return nil, err
	}
	st, err := t.svc.Status(ctx, jobID)
	if err != nil {
		return nil, t.resourceError(uri, err)
	}
	data, err := t.svc.OutputNotebook(st)
	if err != nil {
		return nil, t.resourceError(uri, err)
	}
	return []mcp.ResourceContents{mcp.TextResourceContents{URI: uri, MIMEType: ipynbMimeType, Text: string(data)}}, nil
}

// readJobPage serves millrace://jobs/{job_id}/output.html.
func (t *tools) readJobPage(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
	uri := req.Params.URI
	jobID, err := parseJobURI(uri)
	if err != nil {
		return nil, err
	}
	page, err := t.page(ctx, jobID)
	if err != nil {
		return nil, t.resourceError(uri, err)
	}
	return []mcp.ResourceContents{mcp.TextResourceContents{URI: uri, MIMEType: "text/html", Text: string(page.HTML)}}, nil
}

// MaxPageBytes bounds a page in one answer, as jobs.MaxAttachmentBytes
// bounds an output or a notebook: a bigger one is refused, not cut, since
// half a page hides whichever cells fell off. The CLI writes any size.
const MaxPageBytes = jobs.MaxAttachmentBytes

// page renders a job's page (jobs.OutputHTML) within MaxPageBytes.
func (t *tools) page(ctx context.Context, jobID string) (jobs.OutputPage, error) {
	page, err := t.svc.OutputHTML(ctx, jobID)
	if err != nil {
		return page, err
	}
	if len(page.HTML) > MaxPageBytes {
		return page, userError(fmt.Sprintf("job %s: its page is %d MB, more than the %d MB one answer carries; write it to a file with `millrace output %s --html -o page.html`", jobID, len(page.HTML)>>20, MaxPageBytes>>20, jobID))
	}
	return page, nil
}
