// Package connect opens a Temporal client from the shared configuration:
// the configured cluster, or in dev mode the local background service,
// started on first need.
package connect

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"millrace/internal/config"
	"millrace/workflows"
)

// Option adjusts the client options Options and Dial build.
type Option func(*client.Options)

// WithMetrics sends the SDK's metrics, and what workflows and activities
// record through their metrics handlers, to h. A nil h keeps the SDK's
// default, which records nothing.
func WithMetrics(h client.MetricsHandler) Option {
	return func(o *client.Options) {
		if h != nil {
			o.MetricsHandler = h
		}
	}
}

// WithBearerTokenFile sends "authorization: Bearer <token>" with every
// call, the token read from path at each call: the dev service's server
// serves only callers that hold its token, and reading it per call lets a
// long-lived client follow a token that was replaced while it ran.
func WithBearerTokenFile(path string) Option {
	return func(o *client.Options) { o.HeadersProvider = tokenFile(path) }
}

// tokenFile is a client.HeadersProvider reading a bearer token from a file.
type tokenFile string

func (p tokenFile) GetHeaders(context.Context) (map[string]string, error) {
	b, err := os.ReadFile(string(p))
	if err != nil {
		return nil, fmt.Errorf("read the dev service's token: %w", err)
	}
	return map[string]string{"authorization": "Bearer " + strings.TrimSpace(string(b))}, nil
}

// Options returns client options for an explicit address (not dev mode).
func Options(cfg *config.Config, logger *slog.Logger, extra ...Option) (client.Options, error) {
	opts := client.Options{
		HostPort:  cfg.Address,
		Namespace: cfg.Namespace,
		Logger:    sdklog.NewStructuredLogger(quiet(logger)),
	}
	if err := useCodec(cfg, &opts); err != nil {
		return opts, err
	}
	for _, o := range extra {
		o(&opts)
	}
	tlsConf, err := tlsConfig(cfg)
	if err != nil {
		return opts, err
	}
	opts.ConnectionOptions.TLS = tlsConf
	if cfg.APIKey != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(cfg.APIKey)
		if opts.ConnectionOptions.TLS == nil {
			opts.ConnectionOptions.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
		}
	}
	return opts, nil
}

// Dial connects to cfg.Address. Callers in dev mode resolve the address
// first (devmode.Ensure).
func Dial(ctx context.Context, cfg *config.Config, logger *slog.Logger, extra ...Option) (client.Client, error) {
	if cfg.Address == "" {
		return nil, errors.New("no Temporal address")
	}
	opts, err := Options(cfg, logger, extra...)
	if err != nil {
		return nil, err
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s (namespace %s): %w", cfg.Address, cfg.Namespace, err)
	}
	return c, nil
}

func tlsConfig(cfg *config.Config) (*tls.Config, error) {
	if cfg.TLSCert == "" && cfg.TLSCA == "" && cfg.TLSServerName == "" {
		return nil, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.TLSServerName}
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("load TLS client certificate: %w", err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	if cfg.TLSCA != "" {
		pem, err := os.ReadFile(cfg.TLSCA)
		if err != nil {
			return nil, fmt.Errorf("read TLS CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS CA %s holds no PEM certificate", cfg.TLSCA)
		}
		conf.RootCAs = pool
	}
	return conf, nil
}

// EnsureSearchAttributes registers millrace's search attributes in the
// namespace where they are missing. On a cluster where this client may not
// (no operator permission), it returns an error naming the attributes to
// add by hand.
func EnsureSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	op := c.OperatorService()
	have, err := op.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes: %w", err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for name, typ := range workflows.SearchAttributeTypes {
		if _, ok := have.GetCustomAttributes()[name]; ok {
			continue
		}
		t, err := enumspb.IndexedValueTypeFromString(typ)
		if err != nil {
			return err
		}
		missing[name] = t
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = op.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: missing})
	var exists *serviceerror.AlreadyExists
	if err != nil && !errors.As(err, &exists) {
		var names []string
		for n, t := range missing {
			names = append(names, n+"="+t.String())
		}
		return fmt.Errorf("register search attributes %v in namespace %s (ask an operator: temporal operator search-attribute create): %w", names, namespace, err)
	}
	return nil
}

// quiet drops the SDK's info chatter (one line per poll or worker start) to
// warnings, so logs show what matters.
func quiet(logger *slog.Logger) *slog.Logger {
	if logger == nil {
		logger = slog.Default()
	}
	return slog.New(levelFilter{Handler: logger.Handler(), min: slog.LevelWarn})
}

type levelFilter struct {
	slog.Handler
	min slog.Level
}

func (f levelFilter) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= f.min && f.Handler.Enabled(ctx, l)
}

func (f levelFilter) WithAttrs(a []slog.Attr) slog.Handler {
	return levelFilter{Handler: f.Handler.WithAttrs(a), min: f.min}
}

func (f levelFilter) WithGroup(g string) slog.Handler {
	return levelFilter{Handler: f.Handler.WithGroup(g), min: f.min}
}
