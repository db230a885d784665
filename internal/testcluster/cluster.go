//go:build linux

package testcluster

import (
	"fmt"
	"testing"
	"time"

	"millrace/internal/jobs"
	"millrace/internal/paths"
)

// Options shape a cluster.
type Options struct {
	// Workers is how many worker hosts there are (default 3).
	Workers int
	// TaskQueue is the workers' and the MCP server's (default "cluster").
	TaskQueue string
	// MaxRuns is each worker's --max-runs (default the worker's own).
	MaxRuns int
	// Grace is each worker's --grace (default 2 s).
	Grace time.Duration
	// Roots are the MCP server's roots: where notebooks and their outputs
	// may be. Required.
	Roots []string
}

// Cluster is millrace deployed as on several machines: PostgreSQL on host
// db, the Temporal server on host temporal (persistence and visibility in
// PostgreSQL), a worker on each of hosts worker1..N, the MCP server over
// HTTP on host mcp, and host client for the test itself. All share one
// data dir (see WorkerConfig.DataDir).
type Cluster struct {
	Net      *Network
	DB       *PostgreSQL
	Temporal *Temporal
	Workers  []*Worker
	MCP      *MCP
	// Client is the test's own host: the clients it opens dial from it.
	Client *Host
	Config WorkerConfig
	Bins   Binaries
}

// TemporalDatabase is the database the Temporal server keeps its state in
// (and its visibility in TemporalDatabase_visibility).
const TemporalDatabase = "temporal"

// New starts a cluster; everything in it stops, and is removed, when t
// ends.
func New(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if len(opts.Roots) == 0 {
		t.Fatal("testcluster.New: no roots for the MCP server")
	}
	if opts.Workers <= 0 {
		opts.Workers = 3
	}
	if opts.TaskQueue == "" {
		opts.TaskQueue = "cluster"
	}
	if opts.Grace <= 0 {
		opts.Grace = 2 * time.Second
	}
	c := &Cluster{Net: NewNetwork(t)}
	db, temporal := c.Net.AddHost("db"), c.Net.AddHost("temporal")
	var workerHosts []*Host
	for i := range opts.Workers {
		workerHosts = append(workerHosts, c.Net.AddHost(fmt.Sprintf("worker%d", i+1)))
	}
	mcpHost := c.Net.AddHost("mcp")
	c.Client = c.Net.AddHost("client")

	c.Bins = Build(t)
	c.DB = StartPostgreSQL(t, db)
	c.Temporal = StartTemporal(t, temporal, Database{Server: c.DB, Name: TemporalDatabase})
	c.Config = WorkerConfig{Bin: c.Bins.Worker, Address: c.Temporal.Address, TaskQueue: opts.TaskQueue,
		DataDir: t.TempDir(), MaxRuns: opts.MaxRuns, Grace: opts.Grace}
	for i, h := range workerHosts {
		c.Workers = append(c.Workers, StartWorker(t, h, fmt.Sprintf("worker%d", i+1), c.Config))
	}
	c.MCP = StartMCP(t, mcpHost, c.Bins.MCP, c.Config, opts.Roots...)
	return c
}

// Service is a job service on the client host, as the CLI or an MCP
// server there would have, with roots as its roots.
func (c *Cluster) Service(t testing.TB, roots ...string) *jobs.Service {
	t.Helper()
	r, err := paths.NewRoots(roots)
	if err != nil {
		t.Fatal(err)
	}
	return &jobs.Service{Client: c.Temporal.Dial(t, c.Client), Namespace: "default", TaskQueue: c.Config.TaskQueue, DataDir: c.Config.DataDir, Roots: r}
}
