// Package metrics gives a millrace process one Prometheus page: the
// Temporal SDK's own metrics and the product's (runs, cells, log bytes, MCP
// tool calls) flow through one client.MetricsHandler, built on the SDK's
// tally integration, into one Prometheus registry served at /metrics.
//
// Workflow code records through workflow.GetMetricsHandler (which drops
// what a replay would record twice) and activities through
// activity.GetMetricsHandler; both hand back this package's handler with the
// SDK's tags (namespace, task_queue, workflow_type...) added.
package metrics

import (
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/uber-go/tally/v4"
	tallyprom "github.com/uber-go/tally/v4/prometheus"
	"go.temporal.io/sdk/client"
	contribtally "go.temporal.io/sdk/contrib/tally"
)

// ReportEvery is how often tally hands counters and gauges to the
// Prometheus registry: a scrape sees a count at most this late. Timers
// reach it at once.
const ReportEvery = time.Second

// Buckets are the histogram bounds of every timer, in seconds. One set
// serves the SDK's latencies (milliseconds), MCP tool calls (up to the 50 s
// a waiting start_notebook may hold) and notebook runs (seconds to a day),
// so a timer needs no registration of its own before first use.
var Buckets = []float64{
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
	1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800,
	3600, 2 * 3600, 4 * 3600, 8 * 3600, 24 * 3600,
}

// sanitize makes names and label names valid for Prometheus, as the SDK's
// Prometheus options do, but keeps label values as they are (Prometheus
// takes any UTF-8 there), so task_queue="gpu-runs" matches the queue's
// real name rather than gpu_runs. Only invalid UTF-8 is replaced (it reads
// as U+FFFD), which Prometheus would refuse.
var sanitize = tally.SanitizeOptions{
	NameCharacters: contribtally.PrometheusSanitizeOptions.NameCharacters,
	KeyCharacters:  contribtally.PrometheusSanitizeOptions.KeyCharacters,
	ValueCharacters: tally.ValidCharacters{Ranges: []tally.SanitizeRange{
		{0, utf8.RuneError - 1}, {utf8.RuneError + 1, unicode.MaxRune},
	}},
	ReplacementCharacter: tally.DefaultReplacementCharacter,
}

// Registry holds one process's metrics.
type Registry struct {
	prom    *prometheus.Registry
	scope   io.Closer
	handler client.MetricsHandler
	logger  *slog.Logger

	mu      sync.Mutex
	refused map[string]bool // registration errors already logged
}

// NewRegistry returns a registry with the Go runtime and process
// collectors, and a tally scope that reports into it with Prometheus names
// (counters end in _total, timers in _seconds, as the SDK's docs and
// dashboards expect).
func NewRegistry(logger *slog.Logger) *Registry {
	if logger == nil {
		logger = slog.Default()
	}
	r := &Registry{prom: prometheus.NewRegistry(), logger: logger, refused: map[string]bool{}}
	r.prom.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reporter := tallyprom.NewReporter(tallyprom.Options{
		Registerer:              r.prom,
		DefaultTimerType:        tallyprom.HistogramTimerType,
		DefaultHistogramBuckets: Buckets,
		// The SDK emits a few metrics with different tag sets in different
		// places; Prometheus refuses the second set. The reporter's default
		// is to panic, which would take a worker down for a metric.
		OnRegisterError: r.registerError,
	})
	scope, closer := tally.NewRootScope(tally.ScopeOptions{
		CachedReporter:  reporter,
		Separator:       "_",
		SanitizeOptions: &sanitize,
	}, ReportEvery)
	r.scope = closer
	r.handler = contribtally.NewMetricsHandler(contribtally.NewPrometheusNamingScope(scope))
	return r
}

// Handler is the handler to give the Temporal client (client.Options
// MetricsHandler) and the MCP server.
func (r *Registry) Handler() client.MetricsHandler { return r.handler }

// Gatherer reads the registry, for tests and for the HTTP handler.
func (r *Registry) Gatherer() prometheus.Gatherer { return r.prom }

// HTTPHandler serves the registry in Prometheus' text format.
func (r *Registry) HTTPHandler() http.Handler {
	return promhttp.HandlerFor(r.prom, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(r.logger.Handler(), slog.LevelWarn)})
}

// Close reports what tally still holds and stops its reporting loop.
func (r *Registry) Close() error { return r.scope.Close() }

// Refused lists the registration errors seen so far: metrics some code
// emitted that the page does not show.
func (r *Registry) Refused() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.refused))
	for e := range r.refused {
		out = append(out, e)
	}
	return out
}

// registerError logs a refused registration once: the same error comes
// back every time the metric is created again.
func (r *Registry) registerError(err error) {
	r.mu.Lock()
	seen := r.refused[err.Error()]
	r.refused[err.Error()] = true
	r.mu.Unlock()
	if !seen {
		r.logger.Warn("a metric was emitted with other labels than before and is left off the metrics page", "error", err)
	}
}
