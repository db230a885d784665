package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"time"

	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/rpc/encryption"
	"go.temporal.io/server/temporal"
)

// The frontend's credential and the server's internal traffic.
//
// With --auth-token-file, the public gRPC frontend serves only callers that
// send "authorization: Bearer <token>" (gRPC metadata); every other call
// gets PermissionDenied, health checks aside. The server's own clients (the
// worker service's system workflows: scheduler, batcher, ...) then cannot
// use the public frontend, so they go through Temporal's internal frontend,
// which grants every caller system claims. That, and the history, matching
// and worker ports, would let any local user around the token: all of them
// speak mutual TLS with a certificate authority made in memory at start and
// never written anywhere, so only this process can reach them.

// internodeName is the name the internal services' certificate holds and
// their clients verify.
const internodeName = "millrace-internode"

// readToken reads the frontend's token from path, refusing a file others
// may read: the token is only worth what the file's permissions are.
func readToken(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("--auth-token-file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("--auth-token-file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("--auth-token-file %s has mode %#o: others can read it; chmod 600 it", path, perm)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--auth-token-file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < 16 {
		return "", fmt.Errorf("--auth-token-file %s holds %d characters: want a random token of at least 16", path, len(tok))
	}
	return tok, nil
}

// tokenClaimMapper gives system-admin claims to a caller whose
// authorization header is "Bearer <token>", and nothing to anyone else.
type tokenClaimMapper struct{ want []byte }

func (m tokenClaimMapper) GetClaims(info *authorization.AuthInfo) (*authorization.Claims, error) {
	got := []byte(strings.TrimSpace(info.AuthToken))
	if subtle.ConstantTimeCompare(got, m.want) != 1 {
		return nil, errors.New("wrong or missing bearer token")
	}
	return &authorization.Claims{Subject: "millrace", System: authorization.RoleAdmin}, nil
}

// authOptions returns the server options that require token on the public
// frontend. The default authorizer denies a call without claims (the
// interceptor maps none when no header is sent) and allows system admins.
func authOptions(token string) []temporal.ServerOption {
	m := tokenClaimMapper{want: []byte("Bearer " + token)}
	return []temporal.ServerOption{
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return m }),
		temporal.WithAuthorizer(authorization.NewDefaultAuthorizer()),
	}
}

// internodeTLS is a TLS config provider: mutual TLS between the server's
// own services, none on the public frontend.
type internodeTLS struct {
	server, client *tls.Config
}

var _ encryption.TLSConfigProvider = (*internodeTLS)(nil)

func (p *internodeTLS) GetInternodeServerConfig() (*tls.Config, error) { return p.server, nil }
func (p *internodeTLS) GetInternodeClientConfig() (*tls.Config, error) { return p.client, nil }
func (p *internodeTLS) GetFrontendServerConfig() (*tls.Config, error)  { return nil, nil }
func (p *internodeTLS) GetFrontendClientConfig() (*tls.Config, error)  { return nil, nil }
func (p *internodeTLS) GetRemoteClusterClientConfig(string) (*tls.Config, error) {
	return nil, nil
}
func (p *internodeTLS) GetExpiringCerts(time.Duration) (encryption.CertExpirationMap, encryption.CertExpirationMap, error) {
	return nil, nil, nil
}

// newInternodeTLS makes a throwaway certificate authority and one
// certificate signed by it, used by every internal service as server and as
// client. The keys live only in this process's memory.
func newInternodeTLS() (*internodeTLS, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	// Ten years: the process may run for months, and the CA dies with it.
	notAfter := now.AddDate(10, 0, 0)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: internodeName + " CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: internodeName},
		DNSNames:     []string{internodeName},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	cert := tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: key}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &internodeTLS{
		server: &tls.Config{
			MinVersion:   tls.VersionTLS13,
			Certificates: []tls.Certificate{cert},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    pool,
		},
		client: &tls.Config{
			MinVersion:   tls.VersionTLS13,
			Certificates: []tls.Certificate{cert},
			RootCAs:      pool,
			ServerName:   internodeName,
		},
	}, nil
}

// bearer is gRPC per-call credentials sending the token, for the server's
// own namespace setup through the public frontend.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	if b == "" {
		return nil, nil
	}
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity is false: the frontend is plain gRPC on
// loopback by default, and the token's secrecy against other local users
// rests on the file's permissions, not on the transport.
func (bearer) RequireTransportSecurity() bool { return false }
