// Package testcluster builds a millrace cluster out of real parts on one
// Linux machine, for tests and benchmarks: hosts are network namespaces
// on one bridge, PostgreSQL (Debian's packages) runs on its own host, the
// embedded Temporal server (millrace-temporal) on another in PostgreSQL
// mode, and workers and the MCP server (over HTTP, with a token) each on
// theirs. A host can be cut off the network and healed, its processes
// killed and restarted.
//
// What it does not stand for: the hosts share this machine's file system
// (so the workers and the MCP server share a data dir as a mounted
// volume would give them), its processors and its clock; and PostgreSQL
// runs without fsync (see StartPostgreSQL), so figures measured on it
// leave out the cost of flushing commits to disk.
//
// It needs Linux, root and iproute2 (`ip`), and fails, never skips,
// without them: a test that silently skips proves nothing. CI runs as
// root.
package testcluster
