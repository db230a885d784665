package notebook

// CellFailure describes the cell that failed a run: where it is, what it
// was, and the exception it raised. The runner reports it, the workflow
// carries it in its result, and front ends show it.
type CellFailure struct {
	Index          int      `json:"index"`        // in the input notebook, as the user wrote it
	OutputIndex    int      `json:"output_index"` // in the output notebook (injected cell and error markers added)
	ExecutionCount *int     `json:"execution_count"`
	SourceExcerpt  string   `json:"source_excerpt"`
	EName          string   `json:"ename"`
	EValue         string   `json:"evalue"`
	Traceback      []string `json:"traceback"`
}
