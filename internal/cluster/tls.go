package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/yardmq/yard/internal/tlsconf"
)

// Mutual TLS between nodes (Config.TLS). Both ends of every peer connection present the
// node certificate of their Store and verify the other's chain against the Store's CA
// (its ClientCAs: the cluster CA), TLS 1.3 only. A node's certificate names its node id with
// the URI SAN "yard-node:<id>" (and carries the serverAuth and clientAuth extended key
// usages, or none): the dialer accepts only the certificate of the node it dials, the
// accepting side only a certificate naming the node id of the hello that follows. Anything
// else closes the connection and is logged, at most once per refuseLogEvery.

// NodeURIScheme is the URI SAN scheme naming a node's id in its certificate: yard-node:<id>.
const NodeURIScheme = "yard-node"

const refuseLogEvery = 10 * time.Second

// security is the transport's TLS material and the rate limit of its refusal log.
type security struct {
	store *tlsconf.Store // nil: plaintext

	mu         sync.Mutex
	lastLog    time.Time
	suppressed int
}

// certNamesNode reports whether cert names node id with its URI SAN.
func certNamesNode(cert *x509.Certificate, id uint64) bool {
	want := strconv.FormatUint(id, 10)
	for _, u := range cert.URIs {
		if u.Scheme == NodeURIScheme && u.Opaque == want {
			return true
		}
	}
	return false
}

// checkTLSStore says whether s can secure the cluster: it must have a CA for the peers.
func checkTLSStore(s *tlsconf.Store) error {
	if s != nil && s.Current().ClientCAs == nil {
		return errors.New("cannot secure the cluster transport: no CA to verify peer certificates")
	}
	return nil
}

func (t *transport) serverTLS() *tls.Config {
	s := t.sec.store
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cur := s.Current()
			return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: cur.Certificates,
				ClientCAs: cur.ClientCAs, ClientAuth: tls.RequireAndVerifyClientCert,
				SessionTicketsDisabled: true}, nil
		},
	}
}

// clientTLS is the dialer's configuration towards node id: the chain is verified against
// the cluster CA and the leaf must name id (host names play no part).
func (t *transport) clientTLS(id uint64) *tls.Config {
	cur := t.sec.store.Current()
	cas := cur.ClientCAs
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       cur.Certificates,
		InsecureSkipVerify: true, // replaced by VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("cannot verify peer %d: no certificate", id)
			}
			opts := x509.VerifyOptions{Roots: cas, Intermediates: x509.NewCertPool(),
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			leaf := cs.PeerCertificates[0]
			if _, err := leaf.Verify(opts); err != nil {
				return fmt.Errorf("cannot verify peer %d's certificate: %w", id, err)
			}
			if !certNamesNode(leaf, id) {
				return fmt.Errorf("cannot verify peer %d: its certificate does not name %s:%d", id, NodeURIScheme, id)
			}
			return nil
		},
	}
}

// secureOut runs the TLS client handshake towards p on the tracked connection c (a no-op
// in plaintext) and tracks the TLS connection in its place.
func (t *transport) secureOut(c net.Conn, p *peer) (net.Conn, error) {
	if t.sec.store == nil {
		return c, nil
	}
	tc := tls.Client(c, t.clientTLS(p.id))
	ctx, cancel := context.WithTimeout(context.Background(), helloTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		t.untrack(c)
		err = fmt.Errorf("cannot complete TLS handshake with peer %d: %w", p.id, err)
		t.refused(c.RemoteAddr(), err)
		return nil, err
	}
	t.connMu.Lock()
	delete(t.conns, c)
	t.connMu.Unlock()
	if !t.track(tc) {
		return nil, net.ErrClosed
	}
	return tc, nil
}

// secureIn runs the TLS server handshake of an inbound connection (a no-op in plaintext);
// c's read deadline bounds it.
func (t *transport) secureIn(c net.Conn) error {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return nil
	}
	if err := tc.Handshake(); err != nil {
		err = fmt.Errorf("cannot complete TLS handshake: %w", err)
		t.refused(c.RemoteAddr(), err)
		return err
	}
	return nil
}

// checkPeerCert says whether the inbound connection c may speak for node from.
func (t *transport) checkPeerCert(c net.Conn, from uint64) error {
	if t.sec.store == nil {
		return nil
	}
	cert, ok := tlsconf.PeerCertificate(c)
	if !ok || !certNamesNode(cert, from) {
		err := fmt.Errorf("cannot accept peer: hello from node %d with a certificate not naming %s:%d", from, NodeURIScheme, from)
		t.refused(c.RemoteAddr(), err)
		return err
	}
	return nil
}

// refused logs a refused peer connection, at most once per refuseLogEvery.
func (t *transport) refused(remote net.Addr, err error) {
	s := &t.sec
	s.mu.Lock()
	now := time.Now()
	if now.Sub(s.lastLog) < refuseLogEvery {
		s.suppressed++
		s.mu.Unlock()
		return
	}
	n := s.suppressed
	s.lastLog, s.suppressed = now, 0
	s.mu.Unlock()
	t.log.Warn("cluster: peer connection refused", "remote", remote.String(), "error", err, "suppressed", n)
}
