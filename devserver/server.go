package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/membership/static"
	"go.temporal.io/server/common/metrics"
	"go.temporal.io/server/common/primitives"
	"go.temporal.io/server/temporal"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// internalIP is where history, matching and worker listen: only this process
// talks to them, so they are never exposed whatever --ip says.
const internalIP = "127.0.0.1"

const clusterName = "active"

// newLogger logs through the server's own zap logger, to the given writer
// (stderr in production; tests pass their own). quietStop raises the level to
// error, as the Temporal CLI does on shutdown: stopping services and pollers
// log a burst of harmless warnings.
func newLogger(o *options, w io.Writer) (logger log.Logger, quietStop func()) {
	level := zap.NewAtomicLevelAt(log.ParseZapLevel(o.logLevel))
	if strings.EqualFold(o.logLevel, "never") {
		level.SetLevel(zapcore.FatalLevel)
	}
	enc := zapcore.NewJSONEncoder(log.DefaultZapEncoderConfig)
	if strings.EqualFold(o.logFormat, "pretty") {
		enc = zapcore.NewConsoleEncoder(log.DefaultZapEncoderConfig)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), level)
	quietStop = func() {
		if level.Level() < zapcore.ErrorLevel {
			level.SetLevel(zapcore.ErrorLevel)
		}
	}
	return log.NewZapLogger(zap.New(core)), quietStop
}

// dialHost is the host clients (and the server's own worker) should dial:
// an unspecified bind address (0.0.0.0, ::) is reachable on loopback.
func dialHost(ip string) string {
	parsed := net.ParseIP(ip)
	switch {
	case parsed == nil || !parsed.IsUnspecified():
		return ip
	case parsed.To4() != nil:
		return "127.0.0.1"
	default:
		return "::1"
	}
}

// freePort returns a port that is free right now, chosen below the kernel's
// ephemeral range: a port from that range can be taken by any outgoing
// connection (the server's own clients included) between this check and the
// server's bind, which made servers fail at start on a busy machine. Only
// another process picking ports the same way can still race it, and random
// choice makes that rare. Without a usable range it asks the kernel.
func freePort(ip string) (int, error) {
	const lowest = 10000
	if lo := ephemeralLow(); lo-lowest >= 1000 {
		for range 50 {
			p := lowest + rand.IntN(lo-lowest)
			if l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(p))); err == nil {
				l.Close()
				return p, nil
			}
		}
	}
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, fmt.Errorf("cannot find a free port on %s: %w", ip, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// checkPortFree fails early and plainly; the server's own bind error comes
// wrapped in layers of fx start-up errors.
func checkPortFree(ip string, port int, what string) error {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("%s port %d on %s is not available (is another Temporal server running?): %w", what, port, ip, err)
	}
	return l.Close()
}

// newServer wires a single-process Temporal server (all four services) on
// store st, following the Temporal CLI's dev server.
func newServer(o *options, st *store, logger log.Logger) (temporal.Server, error) {
	var internal [4]int // history, matching, worker, internal frontend
	for i := range internal {
		p, err := freePort(internalIP)
		if err != nil {
			return nil, err
		}
		internal[i] = p
	}
	host := dialHost(o.ip)
	frontendAddr := net.JoinHostPort(host, strconv.Itoa(o.port))
	internalAddr := func(p int) string { return net.JoinHostPort(internalIP, strconv.Itoa(p)) }

	conf := &config.Config{}
	conf.Global.Membership.MaxJoinDuration = 30 * time.Second
	if o.metricsPort > 0 {
		conf.Global.Metrics = &metrics.Config{Prometheus: &metrics.PrometheusConfig{
			ListenAddress: net.JoinHostPort(o.ip, strconv.Itoa(o.metricsPort)),
			HandlerPath:   "/metrics",
		}}
	}
	// SQLite keeps both stores in one file, through one store (and its one
	// connection); PostgreSQL keeps visibility in a database of its own.
	defaultStore := st.persistence.PluginName + "-default"
	conf.Persistence.DefaultStore = defaultStore
	conf.Persistence.VisibilityStore = defaultStore
	conf.Persistence.DataStores = map[string]config.DataStore{defaultStore: {SQL: st.persistence}}
	if st.visibility != st.persistence {
		visibilityStore := st.visibility.PluginName + "-visibility"
		conf.Persistence.VisibilityStore = visibilityStore
		conf.Persistence.DataStores[visibilityStore] = config.DataStore{SQL: st.visibility}
	}
	// One shard: SQLite serialises writers anyway, one server needs no
	// more on PostgreSQL, and the shard count is fixed forever once a
	// database has been created with it.
	conf.Persistence.NumHistoryShards = 1
	conf.ClusterMetadata = &cluster.Config{
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{clusterName: {
			Enabled:                true,
			InitialFailoverVersion: 1,
			RPCAddress:             frontendAddr,
		}},
	}
	conf.DCRedirectionPolicy.Policy = "noop"
	// No service has an HTTP port: an HTTPPort of 0 is what turns
	// Temporal's HTTP API off.
	service := func(ip string, grpcPort int) config.Service {
		var s config.Service
		s.RPC.BindOnIP, s.RPC.GRPCPort = ip, grpcPort
		return s
	}
	conf.Services = map[string]config.Service{
		string(primitives.FrontendService):         service(o.ip, o.port),
		string(primitives.InternalFrontendService): service(internalIP, internal[3]),
		string(primitives.HistoryService):          service(internalIP, internal[0]),
		string(primitives.MatchingService):         service(internalIP, internal[1]),
		string(primitives.WorkerService):           service(internalIP, internal[2]),
	}
	conf.Archival.History.State = "disabled"
	conf.Archival.Visibility.State = "disabled"
	conf.NamespaceDefaults.Archival.History.State = "disabled"
	conf.NamespaceDefaults.Archival.Visibility.State = "disabled"
	// No PublicClient.HostPort: the server's own clients then find the
	// internal frontend through membership, over internode TLS.

	// Same defaults as the CLI's dev server: a bigger mutable-state cache and
	// enough visibility RPS for a UI or MCP client listing runs. One task
	// queue partition: a laptop needs no more throughput, and with one,
	// task queue priority is exact (across partitions it is best effort),
	// so a waiting high-priority run really starts first.
	//
	// A keepalive of 5 s + 5 s instead of 1 min + 10 s: a worker cut off
	// from the server leaves its task polls open on the server, which would
	// hand them the retries of the very run that worker lost, where they are
	// lost too (measured: attempts 2 and 3 both went to the cut-off worker
	// and the run failed). Dropping a silent client within 10 s, well under
	// the 15 s heartbeat timeout, sends the retry to a worker that is there.
	// User values win.
	dyn := dynamicconfig.StaticClient{
		dynamicconfig.HistoryCacheHostLevelMaxSize.Key():                 8096,
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 100,
		dynamicconfig.MatchingNumTaskqueueReadPartitions.Key():           1,
		dynamicconfig.MatchingNumTaskqueueWritePartitions.Key():          1,
		dynamicconfig.KeepAliveTime.Key():                                5 * time.Second,
		dynamicconfig.KeepAliveTimeout.Key():                             5 * time.Second,
	}
	for k, v := range o.dynConfig {
		dyn[dynamicconfig.MakeKey(k)] = v
	}

	internode, err := newInternodeTLS()
	if err != nil {
		return nil, fmt.Errorf("make the internal services' certificates: %w", err)
	}
	opts := []temporal.ServerOption{
		temporal.WithConfig(conf),
		temporal.ForServices(append([]string{string(primitives.InternalFrontendService)}, temporal.DefaultServices...)),
		temporal.WithStaticHosts(map[primitives.ServiceName]static.Hosts{
			primitives.FrontendService:         static.SingleLocalHost(frontendAddr),
			primitives.InternalFrontendService: static.SingleLocalHost(internalAddr(internal[3])),
			primitives.HistoryService:          static.SingleLocalHost(internalAddr(internal[0])),
			primitives.MatchingService:         static.SingleLocalHost(internalAddr(internal[1])),
			primitives.WorkerService:           static.SingleLocalHost(internalAddr(internal[2])),
		}),
		temporal.WithTLSConfigFactory(internode),
		temporal.WithLogger(logger),
		temporal.WithDynamicConfigClient(dyn),
	}
	if o.token != "" {
		opts = append(opts, authOptions(o.token)...)
	}
	return temporal.NewServer(opts...)
}
