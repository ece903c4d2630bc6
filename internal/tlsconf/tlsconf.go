// Package tlsconf is yard's server-side TLS for every listener (Kafka SSL and SASL_SSL,
// AMQPS, HTTPS): one certificate, key and optional client CA loaded from PEM files, reloaded
// on demand (SIGHUP) without dropping connections, and the identity a client certificate
// names.
//
// Model. A Store holds the loaded material behind an atomic pointer; the *tls.Config it
// hands out reads that pointer in GetConfigForClient, so a Reload is seen by every handshake
// that starts after it, while connections already established keep the session they
// negotiated. A Reload that fails (missing file, key not matching) keeps the old material
// and returns the error. TLS 1.2 is the minimum version.
package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
)

// ClientAuth is Kafka's ssl.client.auth: whether clients present certificates.
type ClientAuth string

// The three ClientAuth values, as Kafka names them.
const (
	ClientAuthNone      ClientAuth = "none"      // no certificate asked for
	ClientAuthRequested ClientAuth = "requested" // asked for, verified if given, optional
	ClientAuthRequired  ClientAuth = "required"  // asked for, verified, mandatory
)

// ParseClientAuth checks a --tls-client-auth value.
func ParseClientAuth(s string) (ClientAuth, error) {
	switch ClientAuth(s) {
	case ClientAuthNone, ClientAuthRequested, ClientAuthRequired:
		return ClientAuth(s), nil
	}
	return "", fmt.Errorf("cannot parse --tls-client-auth %q: want none, requested or required", s)
}

// Config names the files a Store loads.
type Config struct {
	CertFile     string // PEM certificate chain, leaf first
	KeyFile      string // PEM private key of the leaf
	ClientCAFile string // PEM CA certificates client certificates must chain to; "" with ClientAuth none
	ClientAuth   ClientAuth
}

// Enabled reports whether any TLS material is configured.
func (c Config) Enabled() bool { return c.CertFile != "" || c.KeyFile != "" }

// Store is the current TLS material; safe for concurrent use.
type Store struct {
	cfg Config
	cur atomic.Pointer[tls.Config]
}

// Open loads cfg's files once; it fails on anything missing or inconsistent.
func Open(cfg Config) (*Store, error) {
	if cfg.ClientAuth == "" {
		cfg.ClientAuth = ClientAuthNone
	}
	if _, err := ParseClientAuth(string(cfg.ClientAuth)); err != nil {
		return nil, err
	}
	if cfg.CertFile == "" || cfg.KeyFile == "" {
		return nil, errors.New("cannot load TLS material: both --tls-cert-file and --tls-key-file are needed")
	}
	if cfg.ClientAuth != ClientAuthNone && cfg.ClientCAFile == "" {
		return nil, fmt.Errorf("cannot load TLS material: --tls-client-auth %s needs --tls-client-ca-file", cfg.ClientAuth)
	}
	s := &Store{cfg: cfg}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload reads the files again and, if they are good, makes them the material of every
// handshake from now on. On error the previous material stays.
func (s *Store) Reload() error {
	cert, err := tls.LoadX509KeyPair(s.cfg.CertFile, s.cfg.KeyFile)
	if err != nil {
		return fmt.Errorf("cannot load TLS certificate: %w", err)
	}
	tc := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
	}
	if s.cfg.ClientCAFile != "" {
		pem, err := os.ReadFile(s.cfg.ClientCAFile)
		if err != nil {
			return fmt.Errorf("cannot load TLS client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("cannot load TLS client CA: no PEM certificate in %s", s.cfg.ClientCAFile)
		}
		tc.ClientCAs = pool
	}
	switch s.cfg.ClientAuth {
	case ClientAuthRequested:
		tc.ClientAuth = tls.VerifyClientCertIfGiven
	case ClientAuthRequired:
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	default:
		tc.ClientAuth = tls.NoClientCert
	}
	s.cur.Store(tc)
	return nil
}

// Current is the material loaded last: its Certificates and ClientCAs (a copy; callers
// building their own configuration, such as the cluster transport, take it per handshake).
func (s *Store) Current() *tls.Config { return s.cur.Load().Clone() }

// ServerConfig is a *tls.Config for a listener: every handshake takes the material current
// when it starts.
func (s *Store) ServerConfig(nextProtos ...string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: nextProtos,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			c := s.cur.Load().Clone()
			c.NextProtos = nextProtos
			return c, nil
		},
	}
}

// Handshake is a listener handshake (internal/listener's seam): it runs the TLS server
// handshake on nc within ctx and returns the *tls.Conn.
func (s *Store) Handshake() func(ctx context.Context, nc net.Conn) (net.Conn, error) {
	tc := s.ServerConfig()
	return func(ctx context.Context, nc net.Conn) (net.Conn, error) {
		c := tls.Server(nc, tc)
		if err := c.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("cannot complete TLS handshake: %w", err)
		}
		return c, nil
	}
}

// PeerCertificate is the verified client certificate of nc, if nc is TLS and the client
// gave one.
func PeerCertificate(nc net.Conn) (*x509.Certificate, bool) {
	tc, ok := nc.(*tls.Conn)
	if !ok {
		return nil, false
	}
	cs := tc.ConnectionState()
	if len(cs.PeerCertificates) == 0 {
		return nil, false
	}
	return cs.PeerCertificates[0], true
}

// SubjectDN is the certificate subject as Kafka's default principal builder names it:
// the RFC 2253 distinguished name, most specific first ("CN=alice,OU=eng,O=acme").
func SubjectDN(cert *x509.Certificate) string { return cert.Subject.String() }

// SubjectCN is the subject's common name, as RabbitMQ's EXTERNAL mechanism takes it by
// default (ssl_cert_login_from = common_name).
func SubjectCN(cert *x509.Certificate) string { return cert.Subject.CommonName }
