package jobs

import (
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"millrace/workflows"
)

// readAttributes fills what a job's search attributes and memo say: the
// notebook, labels, batch, output path and, for a closed run, its status.
// Search attributes are never encoded by a codec (the server indexes
// them); a memo may be, so it is decoded with memoDC.
func readAttributes(st *Status, sa *commonpb.SearchAttributes, memo *commonpb.Memo, memoDC converter.DataConverter) {
	dc := converter.GetDefaultDataConverter()
	fields := sa.GetIndexedFields()
	str := func(name string) string {
		var v string
		if p, ok := fields[name]; ok {
			_ = dc.FromPayload(p, &v)
		}
		return v
	}
	st.Notebook = str(workflows.AttrNotebook)
	st.BatchID = str(workflows.AttrBatchID)
	if st.Status == "" {
		st.Status = str(workflows.AttrStatus)
	}
	if p, ok := fields[workflows.AttrLabels]; ok {
		_ = dc.FromPayload(p, &st.Labels)
	}
	if p, ok := memo.GetFields()[workflows.MemoOutput]; ok {
		_ = memoDC.FromPayload(p, &st.OutputPath)
	}
	if p, ok := memo.GetFields()[memoResume]; ok {
		var r ResumedFrom
		if memoDC.FromPayload(p, &r) == nil {
			st.ResumedFrom = &r
		}
	}
}
