// Package multihost tests millrace across hosts for real: two network
// namespaces on one bridge (testcluster.Network) stand for two machines,
// the Temporal server and worker B on one, worker A on the other, and
// the test cuts A off the network in the middle of a run. It checks what
// a network partition must never cause: two attempts of one run at once.
// A's worker fences its attempt (activities.FenceAfter), B takes the run
// over, and after A heals nothing of A's runs again.
//
// The server runs with a short keepalive (testcluster.ServerKeepAlive),
// so that it drops a cut-off worker, and the polls it left waiting,
// before it retries the run: with Temporal's default it hands the
// retries to those polls, where they are lost.
//
// It needs Linux, root and iproute2 (`ip`), and fails without the last
// two: CI runs as root. Both workers share one data dir, as they share
// this machine's file system; across real hosts, a run's logs,
// checkpoints and outputs need a data dir every worker mounts.
package multihost
