// Package history keeps the workflow histories recorded from real runs and
// replays them against today's workflow code. A workflow that is running
// when a worker is upgraded resumes on the new code by replaying its
// history; a change that would take another path through that history
// breaks it. The recorded histories are that check, offline.
//
// Recorded histories are only ever added. A directory of them has a
// manifest (Manifest, in sha256sum's format) with the sha256 of every
// file: Add refuses to overwrite a file and takes the next free name, and
// Check fails when a listed file changed or is gone, or a file is not
// listed. An old history edited to fit new code would check nothing.
package history

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/encoding/protojson"

	"millrace/workflows"
)

// Manifest is the name of the file that lists a directory's histories with
// their sha256 (`sha256sum -c SHA256SUMS` checks it too).
const Manifest = "SHA256SUMS"

// Execution is one workflow execution's history with its ids. A workflow
// may use its own id in its commands (a Notify child's id is made from
// it) and a bare history does not hold it, so a replay needs it too.
type Execution struct {
	WorkflowID string
	RunID      string
	History    *historypb.History
}

// fileIDs are the keys a history file holds beside the history's events.
// Temporal's own readers (client.HistoryFromJSON, the replayer) ignore
// them, so a recorded file is still an ordinary history file.
type fileIDs struct {
	WorkflowID string `json:"workflowId,omitempty"`
	RunID      string `json:"runId,omitempty"`
}

// Replay replays the execution against today's workflows
// (workflows.Register). It fails when the code would not make the
// decisions the history records.
func (e Execution) Replay() error {
	r := worker.NewWorkflowReplayer()
	workflows.Register(r)
	return r.ReplayWorkflowHistoryWithOptions(nil, e.History, worker.ReplayWorkflowHistoryOptions{
		OriginalExecution: workflow.Execution{ID: e.WorkflowID, RunID: e.RunID},
	})
}

// Type is the name of the workflow the execution is of.
func (e Execution) Type() string {
	if len(e.History.GetEvents()) == 0 {
		return ""
	}
	return e.History.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes().GetWorkflowType().GetName()
}

// Closed reports whether the history ends with its workflow's close: only
// a whole history is worth recording.
func (e Execution) Closed() bool {
	ev := e.History.GetEvents()
	if len(ev) == 0 {
		return false
	}
	switch ev[len(ev)-1].GetEventType() {
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
		return true
	}
	return false
}

// Load reads a history file as Add wrote it. Files recorded before the
// ids were kept have none: they replay under the replayer's stand-in id.
func Load(path string) (Execution, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Execution{}, err
	}
	h, err := client.HistoryFromJSON(bytes.NewReader(b), client.HistoryJSONOptions{})
	if err == nil && len(h.GetEvents()) == 0 {
		err = errors.New("no events")
	}
	var ids fileIDs
	if err == nil {
		err = json.Unmarshal(b, &ids)
	}
	if err != nil {
		return Execution{}, fmt.Errorf("read history %s: %w", path, err)
	}
	return Execution{WorkflowID: ids.WorkflowID, RunID: ids.RunID, History: h}, nil
}

// encode is the file Add writes: the history as protojson, with the ids.
func (e Execution) encode() ([]byte, error) {
	raw, err := protojson.Marshal(e.History)
	if err != nil {
		return nil, err
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	for k, v := range map[string]string{"workflowId": e.WorkflowID, "runId": e.RunID} {
		if doc[k], err = json.Marshal(v); err != nil {
			return nil, err
		}
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	return append(b, '\n'), err
}

// Add stores the closed execution in dir as <name>.json, or as the first
// free <name>.<n>.json when that is taken, and lists it in the manifest.
// It returns the file's name. Recorders in several test processes may add
// at once: the file is created exclusively and the manifest is appended
// under a lock.
func Add(dir, name string, e Execution) (string, error) {
	if !e.Closed() {
		return "", fmt.Errorf("history %s is not closed: record a workflow once it has ended", name)
	}
	if e.WorkflowID == "" {
		return "", fmt.Errorf("history %s has no workflow id: a replay needs it", name)
	}
	if name == "" || strings.ContainsAny(name, "/. ") {
		return "", fmt.Errorf("history name %q: use letters, digits, _ and -", name)
	}
	b, err := e.encode()
	if err != nil {
		return "", err
	}
	for n := 1; ; n++ {
		file := name + ".json"
		if n > 1 {
			file = name + "." + strconv.Itoa(n) + ".json"
		}
		f, err := os.OpenFile(filepath.Join(dir, file), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		_, err = f.Write(b)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = appendManifest(dir, file, b)
		}
		if err != nil {
			os.Remove(filepath.Join(dir, file))
			return "", fmt.Errorf("record history %s: %w", file, err)
		}
		return file, nil
	}
}

func appendManifest(dir, file string, content []byte) error {
	f, err := os.OpenFile(filepath.Join(dir, Manifest), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	sum := sha256.Sum256(content)
	_, err = fmt.Fprintf(f, "%s  %s\n", hex.EncodeToString(sum[:]), file)
	return err
}

// Check verifies dir against its manifest and returns the listed files,
// sorted: every one must exist with the sha256 it was recorded with, and
// every history file (*.json) must be listed.
func Check(dir string) ([]string, error) {
	m, err := os.ReadFile(filepath.Join(dir, Manifest))
	if err != nil {
		return nil, fmt.Errorf("read the manifest of recorded histories: %w", err)
	}
	listed := map[string]bool{}
	var problems []string
	sc := bufio.NewScanner(bytes.NewReader(m))
	for line := 1; sc.Scan(); line++ {
		sum, file, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(sum) != 64 || file == "" || strings.Contains(file, "/") {
			problems = append(problems, fmt.Sprintf("%s line %d: want \"<sha256>  <file>\", got %q", Manifest, line, sc.Text()))
			continue
		}
		listed[file] = true
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s was recorded and is gone (%v): recorded histories are never removed; restore it from git", file, err))
			continue
		}
		if got := sha256.Sum256(b); hex.EncodeToString(got[:]) != sum {
			problems = append(problems, fmt.Sprintf("%s changed since it was recorded: recorded histories are never edited; restore it from git and record a new history (MILLRACE_RECORD_HISTORY=1)", file))
		}
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if !listed[filepath.Base(f)] {
			problems = append(problems, fmt.Sprintf("%s is not in %s: add histories only through the recorder (MILLRACE_RECORD_HISTORY=1)", filepath.Base(f), Manifest))
		}
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "\n"))
	}
	out := make([]string, 0, len(listed))
	for f := range listed {
		out = append(out, f)
	}
	sort.Strings(out)
	return out, nil
}

// Scenario is the name a history was recorded under, without the number
// Add appends to a taken name: "batch_rerun.2.json" is of "batch_rerun".
func Scenario(file string) string {
	s := strings.TrimSuffix(file, ".json")
	if base, n, ok := strings.Cut(s, "."); ok {
		if _, err := strconv.Atoi(n); err == nil {
			return base
		}
	}
	return s
}
