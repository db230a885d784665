package metrics_test

import (
	"testing"
	"time"

	"millrace/internal/metrics"
	"millrace/internal/testenv"
)

// BenchmarkToolCallRecord measures what the MCP middleware adds to a tool
// call: a tagged latency and a tagged count. Run it with
// go test -run '^$' -bench ToolCallRecord ./internal/metrics/
func BenchmarkToolCallRecord(b *testing.B) {
	reg := metrics.NewRegistry(testenv.Logger())
	defer reg.Close()
	h := reg.Handler()
	tools := []string{"start_notebook", "get_job_status", "get_job_logs", "list_jobs"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		th := h.WithTags(map[string]string{"tool": tools[i%len(tools)]})
		th.Timer("millrace_bench_duration_seconds").Record(3 * time.Millisecond)
		th.WithTags(map[string]string{"outcome": "ok"}).Counter("millrace_bench_calls_total").Inc(1)
	}
}
