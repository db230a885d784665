package benchreport

import (
	"fmt"
	"slices"
	"time"

	"millrace/internal/heartbeat"
)

// Suite is every benchmark, in the order the table shows them.
// The benchmarks measure; the bench command only runs them and reads the
// figures they report (testing.B.ReportMetric).
var Suite = []Group{
	{Package: "./activities/", Bench: "^BenchmarkOrchestrationOverhead$", Benchtime: "10x", Quick: "3x", Timeout: 20 * time.Minute},
	// The same with the servers' databases on a memory file system: the
	// embedded server syncs every SQLite commit to disk, and this shows
	// what that costs a run.
	{Package: "./activities/", Bench: "^BenchmarkOrchestrationOverhead$", Benchtime: "5x", Quick: "",
		Env: []string{"TMPDIR=/dev/shm"}, Needs: "/dev/shm", Prefix: shmPrefix, Timeout: 20 * time.Minute},
	{Package: "./activities/", Bench: "^BenchmarkThroughput$", Benchtime: "1x", Timeout: 30 * time.Minute},
	// The same with the workers' warm pools off: orchestration against
	// the bare executor, both cold.
	{Package: "./activities/", Bench: "^BenchmarkThroughput$", Benchtime: "1x", Env: []string{"MILLRACE_WARM_POOL=false"},
		Prefix: coldPrefix, Timeout: 30 * time.Minute},
	// The warm pool: start_notebook to the first cell running, pool on
	// and off; a run by the executor with and without it, and the
	// zygote's idle memory.
	{Package: "./activities/", Bench: "^" + firstCellBench + "$", Benchtime: "10x", Quick: "3x", Timeout: 20 * time.Minute},
	{Package: "./internal/warmpool/", Bench: "^" + warmBench + "$", Benchtime: "5x", Quick: "2x", Timeout: 20 * time.Minute},
	{Package: "./cmd/millrace/", Bench: "^" + cliBench + "$", Benchtime: "5x", Quick: "2x", Timeout: 20 * time.Minute},
	{Package: "./internal/mcpserver/", Bench: "^BenchmarkToolLatency$", Benchtime: "5x", Quick: "2x", Timeout: 20 * time.Minute},
	{Package: "./activities/", Bench: "^BenchmarkLogCapture$", Benchtime: "1x", Quick: "1x", Timeout: 20 * time.Minute},
	{Package: "./internal/logstore/", Bench: "^BenchmarkReadPage$", Benchtime: "200x", Quick: "200x",
		Env: []string{"MILLRACE_BENCH_LOG_MB=1024"}, QuickEnv: []string{"MILLRACE_BENCH_LOG_MB=64"}, Timeout: 20 * time.Minute},
	{Package: "./internal/jobs/", Bench: "^BenchmarkListJobs$", Benchtime: "50x", Quick: "20x", Timeout: 60 * time.Minute},
	// What millrace asks of the Temporal server (SCALING.md's inputs):
	// counts, so one operation each.
	{Package: "./internal/jobs/", Bench: "^" + loadBench + "$", Benchtime: "1x", Quick: "1x", Timeout: 20 * time.Minute},
	{Package: "./internal/devmode/", Bench: "^BenchmarkDevModeStartup$", Benchtime: "3x", Quick: "1x", Timeout: 20 * time.Minute},
	// Checkpoints: a worker killed mid-run, resumed against rerun; what
	// auto costs a long run (quick: the 200 MB namespace only); the pause
	// one save puts before the next cell, fork against inline.
	{Package: "./activities/", Bench: "^" + resumeBench + "$", Benchtime: "2x", Quick: "1x", Timeout: 20 * time.Minute},
	{Package: "./activities/", Bench: "^" + costBench + "$", Benchtime: "1x", Quick: "1x",
		QuickEnv: []string{"MILLRACE_BENCH_COST_SIZES=200MB"}, Timeout: 30 * time.Minute},
	{Package: "./internal/executor/runner/", Bench: "^" + pauseBench + "$/^(200MB|1GB)$", Benchtime: "1x", Quick: "1x",
		QuickEnv: []string{"CHECKPOINT_BENCH_REPS=1"}, Timeout: 20 * time.Minute},
	// Heartbeat intervals side by side: RPCs, server processor, cancel
	// latency (quick: a 30 s window instead of 60 s).
	{Package: "./activities/", Bench: "^" + heartbeatBench + "$", Benchtime: "1x", Quick: "1x",
		QuickEnv: []string{"MILLRACE_BENCH_HEARTBEAT_S=30"}, Timeout: 30 * time.Minute},
	// The cluster path's scaling curve: 1, 2 and 3 worker hosts (network
	// namespaces) against the server on PostgreSQL; needs root and ip.
	{Package: "./internal/cluster/", Bench: "^" + clusterBench + "$", Benchtime: "1x", Timeout: 30 * time.Minute},
}

// Row is one line of the table: one figure a benchmark reported, and the
// target it must meet when the issue sets one.
type Row struct {
	Metric string  // what is measured, in words
	Bench  string  // benchmark name, sub-benchmarks included
	Unit   string  // the unit it was reported under
	Scale  float64 // multiplies the reported value (0 = 1)
	Format string  // formats the scaled value ("%.1f ms")
	Target *Target
}

// Target is a goal a figure is checked against; the verdict is computed.
type Target struct {
	Text  string
	Meets func(v float64, r Results) (bool, bool) // meets, and whether the inputs were there
}

const (
	shmPrefix      = "shm:"
	coldPrefix     = "cold-pool:"
	firstCellBench = "BenchmarkTimeToFirstCell"
	warmBench      = "BenchmarkWarmPool"
	cliBench       = "BenchmarkRunAgainstJupyterExecute"
	overheadBench  = "BenchmarkOrchestrationOverhead"
	pageBench      = "BenchmarkReadPage/"
	resumeBench    = "BenchmarkResumeAfterKill"
	costBench      = "BenchmarkCheckpointCost"
	pauseBench     = "BenchmarkCheckpoint"
	heartbeatBench = "BenchmarkHeartbeat"
	loadBench      = "BenchmarkServerLoad"
	clusterBench   = "BenchmarkClusterThroughput"
	devBench       = "BenchmarkDevModeStartup"
)

// Rows are the table's lines.
var Rows = slices.Concat([]Row{
	{Metric: "Overhead: 3-cell notebook through start_notebook until SUCCEEDED, median", Bench: overheadBench, Unit: "workflow-s", Format: "%.2f s"},
	{Metric: "Overhead: the same notebook by the executor directly, median", Bench: overheadBench, Unit: "direct-s", Format: "%.2f s"},
	{Metric: "Overhead: difference of the medians", Bench: overheadBench, Unit: "overhead-ms", Format: "%.0f ms", Target: &Target{
		Text: "≤ 150 ms or 5% of direct, the larger",
		Meets: func(v float64, r Results) (bool, bool) {
			d, ok := r.Value(overheadBench, "direct-s")
			return v <= max(150, 0.05*d*1000), ok
		}}},
	{Metric: "Overhead: ratio of the medians", Bench: overheadBench, Unit: "ratio", Format: "%.3f"},
	{Metric: "Overhead without the executor's spread: a run's time outside its activity, median", Bench: overheadBench, Unit: "outside-activity-ms", Format: "%.0f ms"},
	{Metric: "Overhead, where it goes (history, medians): start call to workflow started", Bench: overheadBench, Unit: "call-to-started-ms", Format: "%.0f ms"},
	{Metric: "Overhead, where it goes: workflow started to activity started", Bench: overheadBench, Unit: "started-to-activity-ms", Format: "%.0f ms"},
	{Metric: "Overhead, where it goes: the activity (executor inside)", Bench: overheadBench, Unit: "activity-s", Format: "%.2f s"},
	{Metric: "Overhead, where it goes: activity completed to workflow closed", Bench: overheadBench, Unit: "activity-to-closed-ms", Format: "%.0f ms"},
	{Metric: "Overhead, where it goes: workflow closed to SUCCEEDED seen by the caller", Bench: overheadBench, Unit: "closed-to-seen-ms", Format: "%.0f ms"},
	{Metric: "Overhead with the server database and run files on /dev/shm (no disk syncs), median of 5: a run's time outside its activity", Bench: shmPrefix + overheadBench, Unit: "outside-activity-ms", Format: "%.0f ms"},
	{Metric: "…on /dev/shm: workflow started to activity started", Bench: shmPrefix + overheadBench, Unit: "started-to-activity-ms", Format: "%.0f ms"},
	{Metric: "…on /dev/shm: activity completed to workflow closed", Bench: shmPrefix + overheadBench, Unit: "activity-to-closed-ms", Format: "%.0f ms"},
	{Metric: "…on /dev/shm: workflow closed to SUCCEEDED seen by the caller", Bench: shmPrefix + overheadBench, Unit: "closed-to-seen-ms", Format: "%.0f ms"},
	{Metric: "Throughput: 50 short runs, 2 workers x 5 slots (warm pool on)", Bench: "BenchmarkThroughput", Unit: "workflow-runs/min", Format: "%.1f runs/min"},
	{Metric: "Throughput: the same 50 by the bare executor, cold, 10 at once", Bench: "BenchmarkThroughput", Unit: "bare-runs/min", Format: "%.1f runs/min"},
	{Metric: "Throughput: ratio (warm pool on, against the cold bare executor)", Bench: "BenchmarkThroughput", Unit: "ratio", Format: "%.3f", Target: atLeast("≥ 2", 2)},
	{Metric: "Throughput with the warm pool off: 50 short runs, 2 workers x 5 slots", Bench: coldPrefix + "BenchmarkThroughput", Unit: "workflow-runs/min", Format: "%.1f runs/min"},
	{Metric: "…the bare executor, cold, in the same run", Bench: coldPrefix + "BenchmarkThroughput", Unit: "bare-runs/min", Format: "%.1f runs/min"},
	{Metric: "…ratio (orchestration's cost, both cold)", Bench: coldPrefix + "BenchmarkThroughput", Unit: "ratio", Format: "%.3f", Target: atLeast("≥ 0.95", 0.95)},
	{Metric: "Warm pool: start_notebook to the first cell running, pool on, median", Bench: firstCellBench, Unit: "warm-s", Format: "%.2f s", Target: below("< 0.5 s", 0.5)},
	{Metric: "…pool off (cold), alternating in the same run, median", Bench: firstCellBench, Unit: "cold-s", Format: "%.2f s"},
	{Metric: "…ratio on / off", Bench: firstCellBench, Unit: "ratio", Format: "%.2f"},
	{Metric: "Warm pool: the 3-cell notebook by the executor, forked from the pool, median", Bench: warmBench, Unit: "warm-s", Format: "%.2f s"},
	{Metric: "…cold, alternating, median", Bench: warmBench, Unit: "cold-s", Format: "%.2f s"},
	{Metric: "…ratio warm / cold", Bench: warmBench, Unit: "ratio", Format: "%.2f"},
	{Metric: "millrace run, 3-cell notebook, dev mode, warm pool on, median", Bench: cliBench, Unit: "millrace-warm-s", Format: "%.2f s"},
	{Metric: "…jupyter-execute (nbclient) on the same notebook, alternating, median", Bench: cliBench, Unit: "jupyter-execute-s", Format: "%.2f s"},
	{Metric: "…ratio millrace run (pool on) / jupyter-execute", Bench: cliBench, Unit: "warm-ratio", Format: "%.2f", Target: atMost("≤ 0.5", 0.5)},
	{Metric: "…millrace run with the pool off, median", Bench: cliBench, Unit: "millrace-cold-s", Format: "%.2f s"},
	{Metric: "…ratio millrace run (pool off) / jupyter-execute", Bench: cliBench, Unit: "cold-ratio", Format: "%.2f"},
	{Metric: "Warm pool: idle zygote's resident set (one per Python environment)", Bench: warmBench, Unit: "zygote-rss-MB", Format: "%.0f MB", Target: below("< 100 MB", 100)},
	{Metric: "…its proportional set (pages shared with other processes split)", Bench: warmBench, Unit: "zygote-pss-MB", Format: "%.0f MB"},
	{Metric: "Warm pool: what one run's runner and kernel hold while it runs (proportional set), forked", Bench: warmBench, Unit: "warm-run-pss-MB", Format: "%.0f MB"},
	{Metric: "…started cold", Bench: warmBench, Unit: "cold-run-pss-MB", Format: "%.0f MB"},
	{Metric: "Throughput, where the processor goes: executor (runner and kernel) per run, bare", Bench: "BenchmarkThroughput", Unit: "bare-executor-cpu-ms/run", Format: "%.0f ms"},
	{Metric: "…executor per run, through workflows", Bench: "BenchmarkThroughput", Unit: "workflow-executor-cpu-ms/run", Format: "%.0f ms"},
	{Metric: "…embedded Temporal server per run (beyond its use while the bare executor runs)", Bench: "BenchmarkThroughput", Unit: "server-cpu-ms/run", Format: "%.0f ms"},
	{Metric: "…the two in-process workers per run (same)", Bench: "BenchmarkThroughput", Unit: "worker-cpu-ms/run", Format: "%.0f ms"},
	{Metric: "Throughput: bare executor runs that failed (kernel start)", Bench: "BenchmarkThroughput", Unit: "bare-failed", Format: "%.0f"},
	{Metric: "Throughput: workflow runs that needed a second attempt", Bench: "BenchmarkThroughput", Unit: "workflow-retried", Format: "%.0f"},
	{Metric: "MCP latency, 50 callers, 10 runs executing: get_job_status p50", Bench: "BenchmarkToolLatency/get_job_status", Unit: "p50-ms", Format: "%.1f ms"},
	{Metric: "MCP latency: get_job_status p99", Bench: "BenchmarkToolLatency/get_job_status", Unit: "p99-ms", Format: "%.1f ms", Target: below("< 50 ms", 50)},
	{Metric: "MCP latency, what status and logs wait on: DescribeWorkflowExecution alone, 50 callers, p50", Bench: "BenchmarkToolLatency/describe", Unit: "p50-ms", Format: "%.1f ms"},
	{Metric: "DescribeWorkflowExecution alone: p99", Bench: "BenchmarkToolLatency/describe", Unit: "p99-ms", Format: "%.1f ms"},
	{Metric: "…Temporal calls (Describe) per get_job_status call (status answers are cached up to 1 s)", Bench: "BenchmarkToolLatency/get_job_status", Unit: "describes/call", Format: "%.3f"},
	{Metric: "MCP latency: get_job_logs p50", Bench: "BenchmarkToolLatency/get_job_logs", Unit: "p50-ms", Format: "%.1f ms"},
	{Metric: "MCP latency: get_job_logs p99", Bench: "BenchmarkToolLatency/get_job_logs", Unit: "p99-ms", Format: "%.1f ms", Target: below("< 50 ms", 50)},
	{Metric: "…Temporal calls (Describe) per get_job_logs call", Bench: "BenchmarkToolLatency/get_job_logs", Unit: "describes/call", Format: "%.3f"},
	{Metric: "MCP latency: start_notebook p50", Bench: "BenchmarkToolLatency/start_notebook", Unit: "p50-ms", Format: "%.1f ms"},
	{Metric: "MCP latency: start_notebook p99", Bench: "BenchmarkToolLatency/start_notebook", Unit: "p99-ms", Format: "%.1f ms"},
	{Metric: "Logs: capture rate of a run printing 100 MB (worker process, into the log store)", Bench: "BenchmarkLogCapture", Unit: "capture-MB/s", Format: "%.1f MB/s"},
	{Metric: "Logs: the same notebook by the bare executor, read from its pipe", Bench: "BenchmarkLogCapture", Unit: "bare-MB/s", Format: "%.1f MB/s"},
	{Metric: "Logs: capture rate / bare executor rate", Bench: "BenchmarkLogCapture", Unit: "ratio", Format: "%.3f"},
	{Metric: "Logs: worker process peak RSS during that run", Bench: "BenchmarkLogCapture", Unit: "worker-peak-MB", Format: "%.0f MB"},
	{Metric: "Logs: log size for the page reads below", Bench: pageBench + "start", Unit: "log-MB", Format: "%.0f MB"},
	{Metric: "Logs: writing that log through the log store's Copy (100-byte lines)", Bench: pageBench + "start", Unit: "write-MB/s", Format: "%.0f MB/s"},
	{Metric: "Logs: read a 100-line page at the start", Bench: pageBench + "start", Unit: "ns/op", Scale: 1e-6, Format: "%.3f ms"},
	{Metric: "Logs: read a 100-line page in the middle", Bench: pageBench + "middle", Unit: "ns/op", Scale: 1e-6, Format: "%.3f ms", Target: noGrowth("middle")},
	{Metric: "Logs: read a 100-line page at the end", Bench: pageBench + "end", Unit: "ns/op", Scale: 1e-6, Format: "%.3f ms", Target: noGrowth("end")},
	{Metric: "list_jobs: finished runs in the store", Bench: "BenchmarkListJobs/first_page", Unit: "runs", Format: "%.0f"},
	{Metric: "list_jobs: preparing the store this time (0 when reused)", Bench: "BenchmarkListJobs/first_page", Unit: "prepare-s", Format: "%.0f s"},
	{Metric: "list_jobs first page (50), job service: p50", Bench: "BenchmarkListJobs/first_page", Unit: "p50-ms", Format: "%.1f ms"},
	{Metric: "list_jobs first page (50), job service: p99", Bench: "BenchmarkListJobs/first_page", Unit: "p99-ms", Format: "%.1f ms"},
	{Metric: "list_jobs first page, status FAILED filter: p50", Bench: "BenchmarkListJobs/status_filter", Unit: "p50-ms", Format: "%.1f ms"},
	{Metric: "list_jobs first page, status FAILED filter: p99", Bench: "BenchmarkListJobs/status_filter", Unit: "p99-ms", Format: "%.1f ms"},
	{Metric: "list_jobs first page over MCP (in-process client): p50", Bench: "BenchmarkListJobs/mcp", Unit: "p50-ms", Format: "%.1f ms"},
	{Metric: "list_jobs first page over MCP (in-process client): p99", Bench: "BenchmarkListJobs/mcp", Unit: "p99-ms", Format: "%.1f ms"},
	{Metric: "Server load: history events of a 1-cell notebook run", Bench: loadBench + "/notebook_1_cell", Unit: "events", Format: "%.0f"},
	{Metric: "…of a 10-cell notebook run (progress travels in heartbeats, not events)", Bench: loadBench + "/notebook_10_cells", Unit: "events", Format: "%.0f"},
	{Metric: "…its history size", Bench: loadBench + "/notebook_10_cells", Unit: "history-bytes", Format: "%.0f bytes"},
	{Metric: "…of a run retried once (the kernel died in attempt 1)", Bench: loadBench + "/retried_once", Unit: "events", Format: "%.0f"},
	{Metric: "…its history size", Bench: loadBench + "/retried_once", Unit: "history-bytes", Format: "%.0f bytes"},
	{Metric: "…worker calls per 10-cell run besides polls (workflow and activity completions, heartbeats)", Bench: loadBench + "/notebook_10_cells", Unit: "worker-calls", Format: "%.0f"},
	{Metric: "Server load: heartbeats per second of a running attempt (1 s interval)", Bench: loadBench + "/heartbeat", Unit: "heartbeats/s", Format: "%.2f /s"},
	{Metric: "…size of one heartbeat request (progress and log offsets)", Bench: loadBench + "/heartbeat", Unit: "heartbeat-bytes", Format: "%.0f bytes"},
	{Metric: "…calls per second of a caller waiting on a running job (wait, millrace run)", Bench: loadBench + "/heartbeat", Unit: "wait-calls/s", Format: "%.1f /s"},
	{Metric: "…long polls an idle worker keeps open: workflow tasks", Bench: loadBench + "/idle_worker", Unit: "workflow-polls", Format: "%.0f"},
	{Metric: "…activity tasks", Bench: loadBench + "/idle_worker", Unit: "activity-polls", Format: "%.0f"},
	{Metric: "Server load: visibility calls (list, count) per list_jobs call", Bench: loadBench + "/list_jobs", Unit: "visibility-calls", Format: "%.0f"},
	{Metric: "…server calls per job status of a finished job (none from visibility)", Bench: loadBench + "/status", Unit: "calls", Format: "%.0f"},
	{Metric: "…per job status of a running job", Bench: loadBench + "/heartbeat", Unit: "running-status-calls", Format: "%.0f"},
	{Metric: "Server load: the example pipeline (3 nodes): the batch workflow's history events", Bench: loadBench + "/batch_pipeline_3_nodes", Unit: "batch-events", Format: "%.0f"},
	{Metric: "…its history size", Bench: loadBench + "/batch_pipeline_3_nodes", Unit: "batch-history-bytes", Format: "%.0f bytes"},
	{Metric: "…its 3 nodes' histories, events in all", Bench: loadBench + "/batch_pipeline_3_nodes", Unit: "node-events", Format: "%.0f"},
	{Metric: "A batch of 10 independent nodes: the batch workflow's history events", Bench: loadBench + "/batch_10_nodes", Unit: "batch-events", Format: "%.0f"},
	{Metric: "…its history size", Bench: loadBench + "/batch_10_nodes", Unit: "batch-history-bytes", Format: "%.0f bytes"},
	{Metric: "Dev mode (Web UI on, the default): command to ready, new data dir", Bench: devBench + "/ui", Unit: "ready-new-s", Format: "%.2f s", Target: below("< 1 s", 1)},
	{Metric: "…with the Web UI off", Bench: devBench + "/no-ui", Unit: "ready-new-s", Format: "%.2f s"},
	{Metric: "Dev mode (Web UI on): command to ready, existing data dir", Bench: devBench + "/ui", Unit: "ready-restart-s", Format: "%.2f s", Target: below("< 1 s", 1)},
	{Metric: "…with the Web UI off", Bench: devBench + "/no-ui", Unit: "ready-restart-s", Format: "%.2f s"},
	{Metric: "Dev mode (Web UI on): idle RSS, embedded Temporal server", Bench: devBench + "/ui", Unit: "server-rss-MB", Format: "%.0f MB"},
	{Metric: "Dev mode (Web UI on): idle RSS, service process (worker inside)", Bench: devBench + "/ui", Unit: "service-rss-MB", Format: "%.0f MB"},
	{Metric: "Dev mode: idle RSS, server and service, Web UI on", Bench: devBench + "/ui", Unit: "server+service-rss-MB", Format: "%.0f MB"},
	{Metric: "…Web UI off", Bench: devBench + "/no-ui", Unit: "server+service-rss-MB", Format: "%.0f MB"},
	{Metric: "…Web UI on, after a browser loaded a run's page and the run list", Bench: devBench + "/ui", Unit: "server+service-rss-after-ui-MB", Format: "%.0f MB"},
	{Metric: "Dev mode: idle RSS, a client process (the worker command)", Bench: devBench + "/no-ui", Unit: "client-worker-rss-MB", Format: "%.0f MB"},
	{Metric: "Worker SIGKILLed in cell 8 of 10 (200 MB array, 20 s cell 2; heartbeat timeout 6 s): kill to SUCCEEDED, resumed from the checkpoint (every_cell), median", Bench: resumeBench, Unit: "resume-s", Format: "%.1f s"},
	{Metric: "…the same run with checkpoint off: kill to SUCCEEDED, attempt 2 from cell 0, median", Bench: resumeBench, Unit: "rerun-s", Format: "%.1f s"},
	{Metric: "…ratio resumed / rerun", Bench: resumeBench, Unit: "ratio", Format: "%.2f"},
	{Metric: "…of which kill to attempt 2 running (the 6 s heartbeat timeout), median", Bench: resumeBench, Unit: "kill-to-attempt2-s", Format: "%.1f s"},
	{Metric: "…of which kill to cell 8 starting again (heartbeat timeout, kernel start, 200 MB restored), median", Bench: resumeBench, Unit: "kill-to-restored-s", Format: "%.1f s"},
	{Metric: "…the first cell the resumed attempt ran (8: the checkpoint after cell 7)", Bench: resumeBench, Unit: "resumed-from-cell", Format: "%.0f"},
	{Metric: "Checkpoint auto, 200 MB namespace, 12 cells × 5 s: run with checkpoint off", Bench: costBench + "/200MB", Unit: "off-s", Format: "%.1f s"},
	{Metric: "…the same run with checkpoint auto", Bench: costBench + "/200MB", Unit: "auto-s", Format: "%.1f s"},
	{Metric: "…cost of auto, (auto − off) / off", Bench: costBench + "/200MB", Unit: "auto-cost-%", Format: "%.1f%%", Target: atMost("≤ 3%", 3)},
	{Metric: "…checkpoints auto took", Bench: costBench + "/200MB", Unit: "checkpoints", Format: "%.0f"},
	{Metric: "…seconds the forked children wrote beside the cells (what competes with them for the processors)", Bench: costBench + "/200MB", Unit: "fork-write-s", Format: "%.1f s"},
	{Metric: "…the pauses before the next cell, as a share of the auto run (measured within it: other load does not move it)", Bench: costBench + "/200MB", Unit: "pause-share-%", Format: "%.2f%%"},
	{Metric: "…pause before the next cell per checkpoint, in the run (cell end to next start, less a plain gap), median", Bench: costBench + "/200MB", Unit: "added-gap-ms", Format: "%.0f ms"},
	{Metric: "Checkpoint auto, 2 GB namespace, 24 cells × 5 s: run with checkpoint off", Bench: costBench + "/2GB", Unit: "off-s", Format: "%.1f s"},
	{Metric: "…the same run with checkpoint auto", Bench: costBench + "/2GB", Unit: "auto-s", Format: "%.1f s"},
	{Metric: "…cost of auto, (auto − off) / off", Bench: costBench + "/2GB", Unit: "auto-cost-%", Format: "%.1f%%", Target: atMost("≤ 3%", 3)},
	{Metric: "…checkpoints auto took", Bench: costBench + "/2GB", Unit: "checkpoints", Format: "%.0f"},
	{Metric: "…seconds the forked children wrote beside the cells (what competes with them for the processors)", Bench: costBench + "/2GB", Unit: "fork-write-s", Format: "%.1f s"},
	{Metric: "…the pauses before the next cell, as a share of the auto run (measured within it: other load does not move it)", Bench: costBench + "/2GB", Unit: "pause-share-%", Format: "%.2f%%"},
	{Metric: "…pause before the next cell per checkpoint, in the run, median", Bench: costBench + "/2GB", Unit: "added-gap-ms", Format: "%.0f ms"},
	{Metric: "…of which the kernel held for the fork (runner's pause_seconds), median", Bench: costBench + "/2GB", Unit: "kernel-pause-ms", Format: "%.0f ms"},
	{Metric: "Checkpoint pause before the next cell, 1 GB namespace, fork (save call's round trip), mean", Bench: pauseBench + "/1GB", Unit: "fork_pause_s", Scale: 1000, Format: "%.0f ms", Target: below("< 100 ms", 0.1)},
	{Metric: "…of which the kernel was held (collecting the names and the fork, as the kernel measured it)", Bench: pauseBench + "/1GB", Unit: "fork_kernel_pause_s", Scale: 1000, Format: "%.0f ms"},
	{Metric: "…the same save inline (the kernel pickles before the next cell)", Bench: pauseBench + "/1GB", Unit: "inline_pause_s", Scale: 1000, Format: "%.0f ms"},
	{Metric: "…ratio inline / fork", Bench: pauseBench + "/1GB", Unit: "pause_ratio_inline/fork", Format: "%.0f"},
	{Metric: "…the next cell (it writes one page) while the forked child writes beside it", Bench: pauseBench + "/1GB", Unit: "fork_next_cell_s", Scale: 1000, Format: "%.0f ms"},
	{Metric: "…until the checkpoint file is complete, fork", Bench: pauseBench + "/1GB", Unit: "fork_total_s", Format: "%.1f s"},
	{Metric: "Checkpoint pause before the next cell, 200 MB namespace, fork, mean", Bench: pauseBench + "/200MB", Unit: "fork_pause_s", Scale: 1000, Format: "%.0f ms"},
}, heartbeatRows(), clusterRows())

// clusterRows are BenchmarkClusterThroughput's lines: the curve, then
// where the processors went at each step.
func clusterRows() []Row {
	rows := []Row{}
	for n := 1; n <= 3; n++ {
		key := fmt.Sprintf("w%d-", n)
		name := fmt.Sprintf("Cluster on PostgreSQL, 24 short runs, %d worker host(s) × 2 slots: throughput", n)
		rows = append(rows,
			Row{Metric: name, Bench: clusterBench, Unit: key + "runs/min", Format: "%.1f runs/min"},
			Row{Metric: "…the machine's processors busy meanwhile", Bench: clusterBench, Unit: key + "machine-busy-%", Format: "%.0f%%"},
			Row{Metric: "…per run: Temporal server processor", Bench: clusterBench, Unit: key + "server-cpu-ms/run", Format: "%.0f ms"},
			Row{Metric: "…per run: PostgreSQL processor", Bench: clusterBench, Unit: key + "postgres-cpu-ms/run", Format: "%.0f ms"},
			Row{Metric: "…per run: the workers' processor, their runners and kernels included", Bench: clusterBench, Unit: key + "workers-cpu-ms/run", Format: "%.0f ms"},
			Row{Metric: "…runs that needed a second attempt", Bench: clusterBench, Unit: key + "retried", Format: "%.0f"},
		)
	}
	return append(rows,
		Row{Metric: "Cluster throughput, 2 worker hosts / 1", Bench: clusterBench, Unit: "w2/w1", Format: "%.2f"},
		Row{Metric: "Cluster throughput, 3 worker hosts / 1", Bench: clusterBench, Unit: "w3/w1", Format: "%.2f"},
	)
}

// heartbeatIntervals are BenchmarkHeartbeat's sub-benchmarks.
var heartbeatIntervals = []time.Duration{time.Second, heartbeat.DefaultCluster, 5 * time.Second, 15 * time.Second}

// heartbeatRows are BenchmarkHeartbeat's lines, interval by interval.
func heartbeatRows() []Row {
	var rows []Row
	for _, every := range heartbeatIntervals {
		bench := heartbeatBench + "/" + every.String()
		name := fmt.Sprintf("Heartbeats every %s", every)
		if every == heartbeat.DefaultCluster {
			name += " (the cluster default)"
		}
		rows = append(rows,
			Row{Metric: name + ", 4 quiet and 4 busy runs at once: heartbeat timeout the runs had", Bench: bench, Unit: "heartbeat-timeout-s", Format: "%.0f s"},
			Row{Metric: "…heartbeat RPCs the server accepted per run-minute, busy run (prints every 0.1 s)", Bench: bench, Unit: "busy-rpc/run-min", Format: "%.1f"},
			Row{Metric: "…the same, quiet run (a cell that sleeps)", Bench: bench, Unit: "quiet-rpc/run-min", Format: "%.1f"},
			Row{Metric: "…Temporal server processor per run-minute, beyond idle", Bench: bench, Unit: "server-cpu-ms/run-min", Format: "%.0f ms"},
			Row{Metric: "…cancel request to the heartbeat that brought it to the worker, busy runs, median", Bench: bench, Unit: "busy-cancel-reached-s", Format: "%.1f s"},
			Row{Metric: "…the same, quiet runs, median", Bench: bench, Unit: "quiet-cancel-reached-s", Format: "%.1f s"},
			Row{Metric: "…the same, slowest of the 8", Bench: bench, Unit: "cancel-reached-max-s", Format: "%.1f s"},
			Row{Metric: "…cancel request to CANCELED (the stop's 3 s grace included), quiet runs, median", Bench: bench, Unit: "quiet-cancel-s", Format: "%.1f s"},
		)
		if every != time.Second {
			rows = append(rows,
				Row{Metric: "…busy RPCs, ratio to every 1 s", Bench: bench, Unit: "busy-rpc-ratio-to-1s", Format: "%.2f"},
				Row{Metric: "…server processor, ratio to every 1 s", Bench: bench, Unit: "server-cpu-ratio-to-1s", Format: "%.2f"},
			)
		}
	}
	return rows
}

func atLeast(text string, min float64) *Target {
	return &Target{Text: text, Meets: func(v float64, _ Results) (bool, bool) { return v >= min, true }}
}

func atMost(text string, limit float64) *Target {
	return &Target{Text: text, Meets: func(v float64, _ Results) (bool, bool) { return v <= limit, true }}
}

func below(text string, limit float64) *Target {
	return &Target{Text: text, Meets: func(v float64, _ Results) (bool, bool) { return v < limit, true }}
}

// noGrowth checks that a page far into the log costs no more than twice a
// page at its start: reading is proportional to the page, not the offset.
func noGrowth(at string) *Target {
	return &Target{Text: "≤ 2 × the start's", Meets: func(v float64, r Results) (bool, bool) {
		start, ok := r.Value(pageBench+"start", "ns/op")
		return v <= 2*start, ok
	}}
}

// notMeasured is the value of a row no benchmark of the run reported.
const notMeasured = "not measured"

// Cell is a row's rendered value and verdict.
func (row Row) Cell(r Results) (value, verdict string) {
	v, ok := r.Value(row.Bench, row.Unit)
	if !ok {
		return notMeasured, verdictOf(row.Target, false, false)
	}
	scale := row.Scale
	if scale == 0 {
		scale = 1
	}
	if row.Target == nil {
		return fmt.Sprintf(row.Format, v*scale), "—"
	}
	meets, known := row.Target.Meets(v, r)
	return fmt.Sprintf(row.Format, v*scale), verdictOf(row.Target, meets, known)
}

func verdictOf(t *Target, meets, known bool) string {
	switch {
	case t == nil:
		return "—"
	case !known:
		return "unknown"
	case meets:
		return "meets"
	}
	return "misses"
}
