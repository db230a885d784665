package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
)

// options are the parsed command-line settings. The flag names are those of
// `temporal server start-dev`, so the SDK's testsuite.StartDevServer (and a
// user's own `temporal` CLI in our place) work without any translation.
type options struct {
	ip   string
	port int
	// authTokenFile holds the token the public frontend requires
	// (--auth-token-file); token is its content. Empty: no credential.
	authTokenFile string
	token         string
	namespaces    []string
	dbFile        string
	// postgres is the --postgres target, nil for SQLite.
	postgres    *pgTarget
	searchAttrs map[string]enumspb.IndexedValueType
	dynConfig   map[string]any
	logLevel    string
	logFormat   string
	metricsPort int
	retention   time.Duration
	version     bool
	// ui is the Web UI's settings (ui.go); port 0 means no UI.
	ui uiOptions
}

// usageText heads -help.
const usageText = `Usage: millrace-temporal [server start-dev] [flags]

An embedded Temporal server (all services in one process) for millrace's dev
mode, its tests and local trials. It persists to a SQLite file (--db-filename),
to memory (the default), or, for a test cluster or a trial of the PostgreSQL
path, to PostgreSQL (--postgres; password in ` + passwordEnv + `).
It is not a production server: one process, one history shard, no
replication. When you outgrow it, run a Temporal cluster and point millrace
at it (TEMPORAL_ADDRESS).

With --postgres, persistence goes to database DBNAME and visibility to
DBNAME_visibility; both are created if missing (the role needs CREATEDB, or
create them beforehand), their schema is created or updated at start, and
only one server at a time may use them.

Exit status: 0 clean stop, 1 failure, 2 bad usage or input, 3 the store is
owned by another running instance, 4 the store was made by another server
version (SQLite) or has a schema newer than this server knows (PostgreSQL).

Flags:
`

// multiFlag collects every occurrence of a repeatable flag, in order.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// parseArgs parses args (without the program name). Usage errors are
// reported as exitError with status 2, like the flag package's own convention.
func parseArgs(args []string, stderr io.Writer) (*options, error) {
	// The SDK runs "<exe> server start-dev --ip ...": skip those words.
	for _, word := range []string{"server", "start-dev"} {
		if len(args) > 0 && args[0] == word {
			args = args[1:]
		}
	}

	o := &options{}
	var namespaces, searchAttrs, dynConfig multiFlag
	var headless bool
	fs := flag.NewFlagSet("millrace-temporal", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.ip, "ip", "127.0.0.1", "IP address the frontend binds to")
	fs.IntVar(&o.port, "port", 7233, "frontend gRPC port")
	// Temporal's HTTP API reads text/plain bodies as JSON and checks no
	// Host or Origin, so any web page the user opens could start a
	// workflow through it. It is never served; the flag is still accepted,
	// because `temporal server start-dev` takes it.
	var httpPort int
	fs.IntVar(&httpPort, "http-port", 0, "accepted for compatibility: the HTTP API is never served")
	fs.StringVar(&o.authTokenFile, "auth-token-file", "", "file (mode 0600) holding a token the gRPC frontend requires as \"authorization: Bearer <token>\" metadata; empty = no credential")
	fs.Var(&namespaces, "namespace", "namespace to create/serve (repeatable; default \"default\")")
	fs.StringVar(&o.dbFile, "db-filename", "", "SQLite file to persist to (empty = in memory)")
	var pgURL, pgVisDB string
	fs.StringVar(&pgURL, "postgres", "", "persist to PostgreSQL instead of SQLite, for a test cluster or a trial: postgres://USER@HOST:PORT/DBNAME?sslmode=disable (no password in it: set "+passwordEnv+"); databases and schema are created or updated at start")
	fs.StringVar(&pgVisDB, "postgres-visibility-db", "", "with --postgres: the visibility database (default DBNAME_visibility)")
	fs.Var(&searchAttrs, "search-attribute", "custom search attribute NAME=TYPE (repeatable)")
	fs.Var(&dynConfig, "dynamic-config-value", "dynamic config KEY=JSON (repeatable)")
	fs.StringVar(&o.logLevel, "log-level", "warn", "debug, info, warn, error or never")
	fs.StringVar(&o.logFormat, "log-format", "json", "json or pretty")
	fs.BoolVar(&headless, "headless", false, "serve no Web UI, whatever --ui-port says")
	fs.IntVar(&o.ui.port, "ui-port", 0, "serve the Temporal Web UI on this port (0 = no UI); with --auth-token-file its API needs the token in an Authorization header")
	fs.StringVar(&o.ui.ip, "ui-ip", "127.0.0.1", "IP address the Web UI binds to")
	fs.StringVar(&o.ui.codecEndpoint, "ui-codec-endpoint", "", "URL of a payload codec server the Web UI's pages post payloads to, to show them decoded")
	fs.IntVar(&o.metricsPort, "metrics-port", 0, "Prometheus metrics port on --ip (0 = none)")
	fs.DurationVar(&o.retention, "retention", 30*24*time.Hour, "retention of closed workflows in every --namespace")
	fs.BoolVar(&o.version, "version", false, "print the Temporal server version and exit")

	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageText)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, &exitError{code: 2, err: err, quiet: true}
	}
	usage := func(format string, a ...any) error {
		err := fmt.Errorf(format, a...)
		fmt.Fprintln(stderr, err)
		fs.Usage()
		return &exitError{code: 2, err: err, quiet: true}
	}
	if fs.NArg() > 0 {
		return nil, usage("unexpected argument %q", fs.Arg(0))
	}
	if net.ParseIP(o.ip) == nil {
		return nil, usage("--ip %q is not an IP address", o.ip)
	}
	if o.port <= 0 || o.port > 65535 {
		return nil, usage("--port %d is out of range", o.port)
	}
	switch {
	case pgURL != "" && o.dbFile != "":
		return nil, usage("--db-filename and --postgres cannot be used together: one server persists to SQLite or to PostgreSQL")
	case pgURL == "" && pgVisDB != "":
		return nil, usage("--postgres-visibility-db needs --postgres")
	case pgURL != "":
		t, err := parsePostgresURL(pgURL, pgVisDB)
		if err != nil {
			return nil, usage("--postgres: %v", err)
		}
		o.postgres = t
	}
	if headless {
		o.ui.port = 0
	}
	if err := checkUIOptions(o.ui); err != nil {
		return nil, usage("%v", err)
	}
	if o.retention <= 0 {
		return nil, usage("--retention must be positive")
	}
	switch strings.ToLower(o.logLevel) {
	case "debug", "info", "warn", "error", "never":
	default:
		return nil, usage("--log-level %q: want debug, info, warn, error or never", o.logLevel)
	}
	switch strings.ToLower(o.logFormat) {
	case "json", "pretty":
	default:
		return nil, usage("--log-format %q: want json or pretty", o.logFormat)
	}

	o.namespaces = dedupe(namespaces)
	if len(o.namespaces) == 0 {
		o.namespaces = []string{"default"}
	}
	o.searchAttrs = map[string]enumspb.IndexedValueType{}
	for _, kv := range searchAttrs {
		name, typ, err := parseSearchAttribute(kv)
		if err != nil {
			return nil, usage("--search-attribute %q: %v", kv, err)
		}
		o.searchAttrs[name] = typ
	}
	o.dynConfig = map[string]any{}
	for _, kv := range dynConfig {
		key, val, ok := strings.Cut(kv, "=")
		if !ok || key == "" {
			return nil, usage("--dynamic-config-value %q: want KEY=JSON", kv)
		}
		v, err := parseJSONValue(val)
		if err != nil {
			return nil, usage("--dynamic-config-value %q: value is not JSON: %v", kv, err)
		}
		o.dynConfig[key] = v
	}
	return o, nil
}

func dedupe(in []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// parseSearchAttribute accepts the CLI's short type names ("Keyword") as well
// as the enum names ("INDEXED_VALUE_TYPE_KEYWORD"), case-insensitively,
// because different SDK versions print the type either way.
func parseSearchAttribute(kv string) (string, enumspb.IndexedValueType, error) {
	name, typ, ok := strings.Cut(kv, "=")
	if !ok || name == "" {
		return "", 0, errors.New("want NAME=TYPE")
	}
	norm := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(strings.ToUpper(typ), "INDEXED_VALUE_TYPE_")), "_", "")
	switch norm {
	case "keyword":
		return name, enumspb.INDEXED_VALUE_TYPE_KEYWORD, nil
	case "text":
		return name, enumspb.INDEXED_VALUE_TYPE_TEXT, nil
	case "int":
		return name, enumspb.INDEXED_VALUE_TYPE_INT, nil
	case "double":
		return name, enumspb.INDEXED_VALUE_TYPE_DOUBLE, nil
	case "bool":
		return name, enumspb.INDEXED_VALUE_TYPE_BOOL, nil
	case "datetime":
		return name, enumspb.INDEXED_VALUE_TYPE_DATETIME, nil
	case "keywordlist":
		return name, enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST, nil
	}
	return "", 0, fmt.Errorf("unknown type %q: want Keyword, Text, Int, Double, Bool, Datetime or KeywordList", typ)
}

// parseJSONValue decodes a dynamic config value. Whole numbers become int,
// because the server's int settings reject float64 (what encoding/json
// yields by default).
func parseJSONValue(s string) (any, error) {
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data")
	}
	return fixNumbers(v), nil
}

func fixNumbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil && i >= math.MinInt && i <= math.MaxInt {
			return int(i)
		}
		f, _ := v.Float64()
		return f
	case map[string]any:
		for k, e := range v {
			v[k] = fixNumbers(e)
		}
	case []any:
		for i, e := range v {
			v[i] = fixNumbers(e)
		}
	}
	return v
}
