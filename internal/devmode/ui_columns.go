package devmode

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"

	"millrace/workflows"
)

// A job's search attributes as columns of the UI's workflow list.
//
// ui-server has no setting for the list's columns: the UI keeps them per
// namespace in the browser's localStorage, and lists Status, Workflow ID,
// Run ID, Type, Start and End until the user picks others. So the
// listener adds one same-origin script to the UI's page, which runs before
// the UI's own and, when this browser has no choice stored for the
// namespace yet, stores millrace's: the notebook and the batch beside the
// status, job id, type and times. A user's own choice is never replaced.

// uiColumnsPath is where the listener serves that script.
const uiColumnsPath = "/_millrace/columns.js"

// uiColumnsKey is the UI's localStorage key for the workflow list's
// columns (ui-server v2.55), a JSON object of namespace to columns.
const uiColumnsKey = "namespace-workflow-table-columns"

// maxUIPage bounds the UI page read to add the script: ui-server's is a
// few KB; anything larger passes through unchanged.
const maxUIPage = 1 << 20

// uiColumns are the workflow list's columns, by the labels the UI knows:
// its own, and a Keyword search attribute's name.
var uiColumns = []string{"Status", "Workflow ID", "Type", workflows.AttrNotebook, workflows.AttrBatchID, "Start", "End"}

// columnsScript is the script for namespace.
func columnsScript(namespace string) []byte {
	cols := make([]map[string]string, len(uiColumns))
	for i, l := range uiColumns {
		cols[i] = map[string]string{"label": l}
	}
	ns, _ := json.Marshal(namespace)
	cj, _ := json.Marshal(cols)
	key, _ := json.Marshal(uiColumnsKey)
	return []byte(`// millrace: a job's columns in the workflow list, until this browser has its own choice.
(function () {
  try {
    var all = JSON.parse(localStorage.getItem(` + string(key) + `) || "{}") || {};
    if (!all[` + string(ns) + `]) {
      all[` + string(ns) + `] = ` + string(cj) + `;
      localStorage.setItem(` + string(key) + `, JSON.stringify(all));
    }
  } catch (e) {}
})();
`)
}

// serveColumns serves the script.
func (h *uiHandler) serveColumns(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(h.columns)
}

// addColumnsScript is the proxy's ModifyResponse: it puts the script first
// in the head of the UI's HTML page. The request went without
// Accept-Encoding, so the body arrives uncompressed.
func addColumnsScript(resp *http.Response) error {
	if resp.StatusCode != http.StatusOK || resp.Request.Method != http.MethodGet ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || resp.Header.Get("Content-Encoding") != "" {
		return nil
	}
	orig := resp.Body
	body, err := io.ReadAll(io.LimitReader(orig, maxUIPage+1))
	if err != nil {
		orig.Close()
		return err
	}
	if len(body) > maxUIPage {
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(body), orig), orig}
		return nil
	}
	orig.Close()
	const head = "<head>"
	if i := bytes.Index(body, []byte(head)); i >= 0 {
		tag := `<script src="` + uiColumnsPath + `"></script>`
		body = append(body[:i+len(head):i+len(head)], append([]byte(tag), body[i+len(head):]...)...)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}
