// Package cluster tests millrace deployed as a cluster, for real: the
// Temporal server keeps its state and its visibility store in PostgreSQL,
// and PostgreSQL, the server, three workers, the MCP server (over HTTP,
// with a token) and the test's own clients each run on a host of their
// own (testcluster: network namespaces on a bridge). Its scenarios prove,
// on that deployment:
//
//   - list_jobs filters, counts and pages on PostgreSQL visibility, and a
//     batch reports its nodes, through the job service and through the
//     MCP server;
//   - the MCP server on its host reads the logs (page by page) and the
//     output of a run that a worker on another host executed, through the
//     data dir they share;
//   - a run whose worker is SIGKILLed, and one whose worker host is cut
//     off the network, end SUCCEEDED on another worker, the cut-off
//     attempt stops itself within the heartbeat timeout, and no two
//     attempts of a run ever run a cell at the same time (the kernels
//     record every cell's start and end);
//   - restarting every worker in turn with SIGTERM while ten runs execute
//     fails none of them;
//   - restarting PostgreSQL (a fast shutdown, then an immediate one, as a
//     crash) in the middle of runs loses none and fails none.
//
// The hosts share this machine's file system, processors and clock: the
// shared data dir stands for a volume every worker and the MCP server
// mount. Each scenario adds a row to a table that, with
// MILLRACE_CLUSTER_WRITE=path and every scenario passed, replaces the
// section of RELIABILITY.md between BeginMarker and EndMarker (`make
// cluster`, which sets MILLRACE_CLUSTER=full; without it the rolling
// restart and the PostgreSQL restart, the long scenarios, do not run). It needs Linux, root, iproute2, PostgreSQL (Debian's
// postgresql package) and the embedded server binary, and fails without
// them.
package cluster
