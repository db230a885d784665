// Package config holds the settings every millrace binary shares, read from
// flags with environment variables as defaults, under the same names in the
// worker, the MCP server and the CLI.
package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"millrace/internal/heartbeat"
	"millrace/internal/notify"
	"millrace/internal/runenv"
	"millrace/workflows"
)

// Defaults.
const (
	DefaultNamespace = "default"
	DefaultTaskQueue = "millrace"
	DefaultMaxRuns   = 5
)

// Config is the shared configuration. The zero Address means dev mode: a
// local background service (embedded Temporal server and a worker) under
// DataDir.
type Config struct {
	Address       string // TEMPORAL_ADDRESS host:port; "" = dev mode
	Namespace     string // TEMPORAL_NAMESPACE
	TLSCert       string // TEMPORAL_TLS_CERT: client certificate (mTLS)
	TLSKey        string // TEMPORAL_TLS_KEY
	TLSCA         string // TEMPORAL_TLS_CA: CA bundle for the server
	TLSServerName string // TEMPORAL_TLS_SERVER_NAME
	APIKey        string // TEMPORAL_API_KEY or --api-key-file (Temporal Cloud); implies TLS
	TaskQueue     string // MILLRACE_TASK_QUEUE
	DataDir       string // MILLRACE_DATA_DIR
	Roots         []string
	TemporalBin   string // MILLRACE_TEMPORAL_BIN: the dev server binary
	// UI makes the dev service serve the Temporal Web UI (--ui, MILLRACE_UI;
	// on by default). A cluster has its own.
	UI bool
	// NotifyAllow lists the hosts completion webhooks may be sent to
	// (MILLRACE_NOTIFY_ALLOW, comma-separated; "*.example.com" matches
	// subdomains). Empty allows none: notify_url is then refused.
	NotifyAllow []string
	// MetricsAddr is the Prometheus listener (--metrics); "" = none.
	MetricsAddr string
	// MetricsToken is the bearer token scrapers must send
	// (MILLRACE_METRICS_TOKEN, or --metrics-token-file).
	MetricsToken string
	// CodecKeyFile holds the keys that encrypt workflow payloads
	// (MILLRACE_CODEC_KEY_FILE). "" in dev mode: the dev service's own key,
	// when it has one; "" on a cluster: payloads are not encrypted.
	CodecKeyFile string
	// AllowEnv, when set, lists the only names a run's env may set
	// (MILLRACE_ALLOW_ENV, --allow-env NAME,PREFIX_*). Millrace's,
	// Temporal's and loader names are refused whatever it says
	// (runenv.CheckNames). The job service and the worker both check.
	AllowEnv runenv.Patterns
	// rootsDefaulted: no --roots nor MILLRACE_ROOTS was given.
	rootsDefaulted bool

	// Worker settings.
	MaxRuns   int    // MILLRACE_MAX_RUNS: concurrent runs per worker
	Executor  string // MILLRACE_EXECUTOR: auto, papermill or bundled
	Python    string // MILLRACE_PYTHON
	Papermill string // MILLRACE_PAPERMILL
	Grace     time.Duration
	// HeartbeatEvery is how often a running attempt looks at its run and
	// the longest a change waits to reach the server
	// (MILLRACE_HEARTBEAT_EVERY, --heartbeat-every). Validate sets it:
	// heartbeat.DefaultDev in dev mode, heartbeat.DefaultCluster on a
	// cluster, unless given.
	HeartbeatEvery time.Duration
	// heartbeatEvery is --heartbeat-every as given, "" when not.
	heartbeatEvery string
	// NotifySecret keys the HMAC signature of completion webhooks
	// (MILLRACE_NOTIFY_SECRET, or --notify-secret-file).
	NotifySecret string
	// NotifyAllowPrivate lists the non-public addresses (addresses, CIDR
	// prefixes, or "*") webhooks may connect to
	// (MILLRACE_NOTIFY_ALLOW_PRIVATE); by default only public ones.
	NotifyAllowPrivate []string
	// WarmPoolOff starts every run cold, without the warm pool of forked
	// Python processes (--warm-pool=false, MILLRACE_WARM_POOL=false). The
	// zero value keeps the pool on: it is the default wherever it passes
	// its self-check (warmpool.Start).
	WarmPoolOff bool
	// WarmImports are modules the warm pool imports besides the runner's
	// and the kernel's (--warm-imports, MILLRACE_WARM_IMPORTS).
	WarmImports []string
	// PassEnv names worker variables a kernel gets beyond runenv.Inherited
	// (MILLRACE_PASS_ENV, --pass-env NAME,PREFIX_*); millrace's and
	// Temporal's own never pass.
	PassEnv runenv.Patterns
}

// Env lists the environment variables, for help texts and the README.
var Env = []string{
	"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_TLS_CERT", "TEMPORAL_TLS_KEY",
	"TEMPORAL_TLS_CA", "TEMPORAL_TLS_SERVER_NAME", "TEMPORAL_API_KEY", "MILLRACE_TASK_QUEUE",
	"MILLRACE_DATA_DIR", "MILLRACE_ROOTS", "MILLRACE_TEMPORAL_BIN", "MILLRACE_MAX_RUNS",
	"MILLRACE_EXECUTOR", "MILLRACE_PYTHON", "MILLRACE_PAPERMILL", "MILLRACE_NOTIFY_ALLOW",
	"MILLRACE_NOTIFY_SECRET", "MILLRACE_NOTIFY_ALLOW_PRIVATE", "MILLRACE_METRICS", "MILLRACE_METRICS_TOKEN", "MILLRACE_MCP_TOKEN",
	"MILLRACE_CODEC_KEY_FILE", "MILLRACE_FILE_MODE", "MILLRACE_DEV_ALLOW_UNAUTHENTICATED_CLI",
	"MILLRACE_ALLOW_ENV", "MILLRACE_PASS_ENV", "MILLRACE_WORKER_ROOTS", "MILLRACE_HEARTBEAT_EVERY",
	"MILLRACE_WARM_POOL", "MILLRACE_WARM_IMPORTS",
}

// Register adds the shared connection and storage flags to fs, with
// defaults from the environment.
func (c *Config) Register(fs *flag.FlagSet) {
	fs.StringVar(&c.Address, "temporal-address", os.Getenv("TEMPORAL_ADDRESS"), "Temporal frontend host:port; empty runs the local dev service (env TEMPORAL_ADDRESS)")
	fs.StringVar(&c.Namespace, "namespace", envOr("TEMPORAL_NAMESPACE", DefaultNamespace), "Temporal namespace (env TEMPORAL_NAMESPACE)")
	fs.StringVar(&c.TLSCert, "tls-cert", os.Getenv("TEMPORAL_TLS_CERT"), "client certificate file for mTLS (env TEMPORAL_TLS_CERT)")
	fs.StringVar(&c.TLSKey, "tls-key", os.Getenv("TEMPORAL_TLS_KEY"), "client key file for mTLS (env TEMPORAL_TLS_KEY)")
	fs.StringVar(&c.TLSCA, "tls-ca", os.Getenv("TEMPORAL_TLS_CA"), "CA certificate file of the server (env TEMPORAL_TLS_CA)")
	fs.StringVar(&c.TLSServerName, "tls-server-name", os.Getenv("TEMPORAL_TLS_SERVER_NAME"), "server name to verify (env TEMPORAL_TLS_SERVER_NAME)")
	SecretFlag(fs, &c.APIKey, "api-key", "TEMPORAL_API_KEY", "Temporal API key (sent over TLS)")
	fs.StringVar(&c.TaskQueue, "task-queue", envOr("MILLRACE_TASK_QUEUE", DefaultTaskQueue), "task queue of runs (env MILLRACE_TASK_QUEUE)")
	fs.StringVar(&c.DataDir, "data-dir", envOr("MILLRACE_DATA_DIR", DefaultDataDir()), "data dir: run logs, outputs, dev service state (env MILLRACE_DATA_DIR)")
	fs.Func("roots", "colon-separated folders that notebook, output and working-directory paths must be inside; default the current directory (env MILLRACE_ROOTS)", func(s string) error {
		c.Roots = splitList(s)
		return nil
	})
	c.Roots = splitList(os.Getenv("MILLRACE_ROOTS"))
	fs.Func("notify-allow", "comma-separated hosts that completion webhooks (notify_url) may go to; *.example.com matches subdomains; empty refuses every notify_url (env MILLRACE_NOTIFY_ALLOW)", func(s string) error {
		c.NotifyAllow = splitComma(s)
		return nil
	})
	c.NotifyAllow = splitComma(os.Getenv("MILLRACE_NOTIFY_ALLOW"))
	c.AllowEnv, _ = runenv.Parse(os.Getenv("MILLRACE_ALLOW_ENV"))
	fs.Func("allow-env", "comma-separated names (NAME, or PREFIX_* for a prefix) that a run's env may set; empty allows any name but millrace's, Temporal's and loader variables (LD_*, DYLD_*, PYTHONSTARTUP, PYTHONHOME), which are always refused (env MILLRACE_ALLOW_ENV)", func(s string) (err error) {
		c.AllowEnv, err = runenv.Parse(s)
		return err
	})
	fs.StringVar(&c.MetricsAddr, "metrics", os.Getenv("MILLRACE_METRICS"), "serve Prometheus metrics on this host:port at /metrics; a non-loopback address needs MILLRACE_METRICS_TOKEN (env MILLRACE_METRICS)")
	SecretFlag(fs, &c.MetricsToken, "metrics-token", "MILLRACE_METRICS_TOKEN", "bearer token metrics scrapers must send")
	fs.StringVar(&c.CodecKeyFile, "codec-key-file", os.Getenv("MILLRACE_CODEC_KEY_FILE"), "file of AES-256 keys (64 hex digits a line; the first encrypts) that encrypt run inputs, results and progress in Temporal's history; every millrace binary on a cluster needs the same file; dev mode makes its own (env MILLRACE_CODEC_KEY_FILE)")
	c.UI = os.Getenv("MILLRACE_UI") != "0" && !strings.EqualFold(os.Getenv("MILLRACE_UI"), "false")
	fs.BoolVar(&c.UI, "ui", c.UI, "dev mode: the dev service serves the Temporal Web UI on 127.0.0.1 (port 8233 or the next free one; `millrace ui` opens it); --ui=false: none (env MILLRACE_UI=0)")
	fs.StringVar(&c.TemporalBin, "temporal-bin", os.Getenv("MILLRACE_TEMPORAL_BIN"), "dev server binary (default: millrace-temporal beside this binary or on PATH; a temporal CLI only with MILLRACE_DEV_ALLOW_UNAUTHENTICATED_CLI=1, as it cannot require a credential) (env MILLRACE_TEMPORAL_BIN)")
}

// RegisterWorker adds the worker's flags to fs.
func (c *Config) RegisterWorker(fs *flag.FlagSet) {
	fs.IntVar(&c.MaxRuns, "max-runs", envInt("MILLRACE_MAX_RUNS", DefaultMaxRuns), "notebook runs executing at once on this worker; more wait in the queue (env MILLRACE_MAX_RUNS)")
	fs.StringVar(&c.Executor, "executor", envOr("MILLRACE_EXECUTOR", "auto"), "auto (papermill if on PATH, else the bundled runner), papermill or bundled (env MILLRACE_EXECUTOR)")
	fs.StringVar(&c.Python, "python", os.Getenv("MILLRACE_PYTHON"), "python for the bundled runner, which must import nbclient and ipykernel; default: the first python3 on PATH or at the usual install locations (Homebrew, python.org, pyenv, conda, /usr/bin) that does (env MILLRACE_PYTHON)")
	fs.StringVar(&c.Papermill, "papermill", os.Getenv("MILLRACE_PAPERMILL"), "papermill executable; default papermill on PATH (env MILLRACE_PAPERMILL)")
	fs.DurationVar(&c.Grace, "grace", 5*time.Second, "time a stopped run gets to save and shut its kernel down before SIGKILL")
	c.heartbeatEvery = os.Getenv("MILLRACE_HEARTBEAT_EVERY")
	fs.Func("heartbeat-every", fmt.Sprintf("how often a running notebook heartbeats: the longest its progress waits to reach Temporal, and while it is busy the longest a cancel waits to reach it; each heartbeat is an RPC (a billed action on Temporal Cloud). A quiet run (no new output, cell or checkpoint) sends one only about every quarter of the heartbeat timeout, or every interval if that is longer. Default %s in dev mode; %s on a cluster, the largest interval that keeps a worker riding out a quarter of the heartbeat timeout of lost contact; less than half the runs' heartbeat timeout (%s) (env MILLRACE_HEARTBEAT_EVERY)", heartbeat.DefaultDev, heartbeat.DefaultCluster, workflows.DefaultHeartbeatTimeout), func(s string) error {
		c.heartbeatEvery = s
		return nil
	})
	if off, err := strconv.ParseBool(os.Getenv("MILLRACE_WARM_POOL")); err == nil {
		c.WarmPoolOff = !off
	}
	fs.BoolFunc("warm-pool", "fork each run's Python runner and kernel from a warm process that has imported Jupyter's modules (Linux; a fresh, never reused process per run), saving about a second of start-up per run; on by default where it passes its self-check; --warm-pool=false starts every run cold (env MILLRACE_WARM_POOL)", func(s string) error {
		on, err := strconv.ParseBool(s)
		c.WarmPoolOff = !on
		return err
	})
	c.WarmImports = splitComma(os.Getenv("MILLRACE_WARM_IMPORTS"))
	fs.Func("warm-imports", "comma-separated modules the warm pool imports ahead of runs (numpy,pandas), so that runs find them imported; they are imported once per Python environment, with the worker's environment (env MILLRACE_WARM_IMPORTS)", func(s string) error {
		c.WarmImports = splitComma(s)
		return nil
	})
	c.PassEnv, _ = runenv.Parse(os.Getenv("MILLRACE_PASS_ENV"))
	fs.Func("pass-env", "comma-separated names (NAME, or PREFIX_* for a prefix) of this worker's environment that notebooks get beyond the default allow-list (PATH, HOME, LANG, LC_*, PYTHON*, CONDA_*, CUDA_VISIBLE_DEVICES...); MILLRACE_* and TEMPORAL_* never pass (env MILLRACE_PASS_ENV)", func(s string) (err error) {
		c.PassEnv, err = runenv.Parse(s)
		return err
	})
	SecretFlag(fs, &c.NotifySecret, "notify-secret", "MILLRACE_NOTIFY_SECRET", "secret that signs completion webhooks")
	fs.Func("notify-allow-private", "comma-separated non-public addresses or CIDR prefixes (127.0.0.1, 10.0.0.0/8; * for all) webhooks may connect to; by default only public addresses (env "+notify.AllowPrivateEnv+")", func(s string) error {
		c.NotifyAllowPrivate = splitComma(s)
		return nil
	})
	c.NotifyAllowPrivate = splitComma(os.Getenv(notify.AllowPrivateEnv))
}

// Validate checks the configuration and fills in derived defaults.
func (c *Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("no data dir: set --data-dir or MILLRACE_DATA_DIR"))
	} else if abs, err := filepath.Abs(c.DataDir); err == nil {
		c.DataDir = abs
	}
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace
	}
	if c.TaskQueue == "" {
		c.TaskQueue = DefaultTaskQueue
	}
	if c.MaxRuns < 0 {
		errs = append(errs, fmt.Errorf("--max-runs %d: must be at least 1", c.MaxRuns))
	}
	if _, err := notify.ParseNetworks(c.NotifyAllowPrivate); err != nil {
		errs = append(errs, err)
	}
	if err := c.resolveHeartbeatEvery(); err != nil {
		errs = append(errs, err)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("--tls-cert and --tls-key go together"))
	}
	if _, err := runenv.Parse(os.Getenv("MILLRACE_ALLOW_ENV")); err != nil {
		errs = append(errs, fmt.Errorf("MILLRACE_ALLOW_ENV: %w", err))
	}
	if _, err := runenv.Parse(os.Getenv("MILLRACE_PASS_ENV")); err != nil {
		errs = append(errs, fmt.Errorf("MILLRACE_PASS_ENV: %w", err))
	}
	if len(c.Roots) == 0 {
		c.rootsDefaulted = true
		wd, err := os.Getwd()
		if err != nil {
			errs = append(errs, fmt.Errorf("no roots and no working directory: %w", err))
		}
		c.Roots = []string{wd}
	}
	return errors.Join(errs...)
}

// resolveHeartbeatEvery sets HeartbeatEvery from --heartbeat-every, or to
// the mode's default, and checks it against the heartbeat timeout the
// workflow gives runs: a worker that heartbeats too seldom for it would
// have its attempts fenced, then timed out, between two heartbeats.
func (c *Config) resolveHeartbeatEvery() error {
	if c.heartbeatEvery == "" {
		if c.HeartbeatEvery == 0 {
			c.HeartbeatEvery = heartbeat.DefaultCluster
			if c.DevMode() {
				c.HeartbeatEvery = heartbeat.DefaultDev
			}
		}
	} else {
		d, err := time.ParseDuration(c.heartbeatEvery)
		if err != nil {
			return fmt.Errorf("--heartbeat-every %q: not a duration (such as 1s or 500ms)", c.heartbeatEvery)
		}
		c.HeartbeatEvery = d
	}
	return heartbeat.Check(c.HeartbeatEvery, workflows.DefaultHeartbeatTimeout)
}

// WorkerRoots are the folders a worker runs notebooks from and writes
// outputs to: --roots or MILLRACE_ROOTS when given, else DefaultWorkerRoots.
// A worker re-checks every input against them, because anything that can
// start a workflow (the Temporal CLI or UI, another client) bypasses the
// job service's checks.
func (c *Config) WorkerRoots() []string {
	if c.rootsDefaulted || len(c.Roots) == 0 {
		return DefaultWorkerRoots()
	}
	return c.Roots
}

// OwnerOnlyWorkerRoots makes the worker's own roots the whole file system
// when none were given, for a worker whose Temporal frontend admits only
// the user who owns it (the dev service's, behind its token): only that
// user can start its workflows, and the roots of the server that started
// each run (RunInput.Roots) still confine it at the moment of use. Without
// it, `make demo` from a clone outside the home folder would be refused.
func (c *Config) OwnerOnlyWorkerRoots() {
	if c.rootsDefaulted || len(c.Roots) == 0 {
		c.Roots, c.rootsDefaulted = []string{"/"}, false
	}
}

// DefaultWorkerRoots are the user's home and the temporary folder. One
// worker (the dev service's, above all) serves the CLI and every MCP server
// on its data dir, each with roots of its own inside the user's files: the
// worker cannot know their union, and the home folder plus the temporary
// folder hold what a user runs notebooks from, while system folders
// (/etc, /root of another user, /var) stay out. An operator whose notebooks
// live elsewhere sets --roots (MILLRACE_WORKER_ROOTS for the dev service).
func DefaultWorkerRoots() []string {
	var out []string
	if home, err := os.UserHomeDir(); err == nil {
		out = append(out, home)
	}
	return append(out, os.TempDir())
}

// DevMode reports whether no Temporal address is configured.
func (c *Config) DevMode() bool { return c.Address == "" }

// DefaultDataDir is $XDG_DATA_HOME/millrace, or ~/.local/share/millrace.
func DefaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "millrace")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "millrace")
	}
	return ""
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func splitComma(s string) []string { return split(s, ",") }

func splitList(s string) []string { return split(s, string(os.PathListSeparator)) }

func split(s, sep string) []string {
	var out []string
	for _, p := range strings.Split(s, sep) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
