package cluster

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/yardmq/yard/internal/tlsconf"
	"github.com/yardmq/yard/internal/tlsconf/tlsconftest"
)

// syncBuffer is a log sink shared by the hosts' goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// nodeStore is the cluster TLS material of node id, certified by ca, as --cluster-tls-ca-file
// loads it.
func nodeStore(t *testing.T, ca *tlsconftest.CA, id uint64) (*tlsconf.Store, tlsconftest.Files) {
	t.Helper()
	f := ca.WriteNode(t, t.TempDir(), id)
	s, err := tlsconf.Open(tlsconf.Config{CertFile: f.Cert, KeyFile: f.Key, ClientCAFile: f.ClientCA, ClientAuth: tlsconf.ClientAuthRequired})
	if err != nil {
		t.Fatal(err)
	}
	return s, f
}

// newTLSCluster starts n hosts over mutual TLS with the given stores, logging to logs.
func newTLSCluster(t *testing.T, cfg Config, stores map[uint64]*tlsconf.Store, logs io.Writer, groups ...uint64) *testCluster {
	t.Helper()
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	c := &testCluster{t: t, cfg: cfg, addrs: map[uint64]string{}, dirs: map[uint64]string{},
		hosts: map[uint64]*Host{}, sms: map[uint64]map[uint64]*listSM{}, groups: groups, tls: stores}
	lns := map[uint64]net.Listener{}
	for id := range stores {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[id], c.addrs[id], c.dirs[id] = ln, ln.Addr().String(), t.TempDir()
	}
	for id, ln := range lns {
		c.start(id, ln)
	}
	t.Cleanup(func() {
		for _, h := range c.hosts {
			h.Close()
		}
	})
	return c
}

func TestTLSElectProposeCommit(t *testing.T) {
	t.Parallel()
	ca := tlsconftest.NewCA(t, "cluster CA")
	stores := map[uint64]*tlsconf.Store{}
	for id := uint64(1); id <= 3; id++ {
		stores[id], _ = nodeStore(t, ca, id)
	}
	var logs syncBuffer
	c := newTLSCluster(t, fastConfig(), stores, &logs, 1)
	l := c.leader(1)
	c.propose(l, 1, "a")
	f := uint64(1)
	if f == l {
		f = 2
	}
	c.propose(f, 1, "b")
	many := cmds("x", 300)
	c.propose(l, 1, many...)
	c.converged(1, c.sms[l][1].list())
	if got := len(c.sms[l][1].list()); got != 302 {
		t.Fatalf("leader applied %d commands, want 302", got)
	}
	// Every tracked connection is TLS.
	for id, h := range c.hosts {
		h.tr.connMu.Lock()
		for nc := range h.tr.conns {
			if _, ok := nc.(*tls.Conn); !ok {
				t.Errorf("node %d has a plaintext connection to %v", id, nc.RemoteAddr())
			}
		}
		h.tr.connMu.Unlock()
	}
	if strings.Contains(logs.String(), "refused") {
		t.Fatalf("a peer connection was refused:\n%s", logs.String())
	}
}

// refusedConn waits until the server closes c (or c's deadline passes: a failure).
func refusedConn(t *testing.T, what string, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: the cluster port kept the connection open", what)
	}
}

func TestTLSRefusals(t *testing.T) {
	t.Parallel()
	ca := tlsconftest.NewCA(t, "cluster CA")
	stores := map[uint64]*tlsconf.Store{}
	files := map[uint64]tlsconftest.Files{}
	for id := uint64(1); id <= 3; id++ {
		stores[id], files[id] = nodeStore(t, ca, id)
	}
	var logs syncBuffer
	c := newTLSCluster(t, fastConfig(), stores, &logs, 1)
	c.leader(1)
	addr := c.addrs[1]

	dialTLS := func(cert tls.Certificate) net.Conn {
		t.Helper()
		tc, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{cert}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tc.Close() })
		return tc
	}
	pair := func(f tlsconftest.Files) tls.Certificate {
		p, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	// Plaintext to the TLS port: the hello is no TLS record.
	pc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.Write(appendHello(nil, 2, 1))
	refusedConn(t, "plaintext hello", pc)

	// A certificate of another CA naming node 2 (TLS 1.3: the client's handshake ends before
	// the server checks its certificate; the refusal comes as the connection's end).
	other := tlsconftest.NewCA(t, "other CA")
	oc := dialTLS(pair(other.WriteNode(t, t.TempDir(), 2)))
	oc.Write(appendHello(nil, 2, 1))
	refusedConn(t, "certificate of another CA", oc)

	// Node 2's certificate claiming to be node 3.
	ic := dialTLS(pair(files[2]))
	ic.Write(appendHello(nil, 3, 1))
	refusedConn(t, "node 2's certificate claiming node 3", ic)

	// The same certificate claiming node 2 is accepted: the connection stays open (an empty
	// batch keeps it alive) while node 1 is closed.
	gc := dialTLS(pair(files[2]))
	gc.Write(appendHello(nil, 2, 1))
	gc.Write(appendBatch(nil, nil, nil))
	gc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := gc.Read(make([]byte, 1)); !isTimeout(err) {
		t.Fatalf("node 2's own certificate: connection ended: %v", err)
	}

	waitFor(t, "the refusal logged", func() bool { return strings.Contains(logs.String(), "peer connection refused") })
	if n := strings.Count(logs.String(), "peer connection refused"); n != 1 {
		t.Fatalf("%d refusal lines within the rate limit's interval, want 1:\n%s", n, logs.String())
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestTLSImpostorHost: a host configured as node 3 with node 2's certificate reaches nobody
// and nobody reaches it; nodes 1 and 2 carry on.
func TestTLSImpostorHost(t *testing.T) {
	t.Parallel()
	ca := tlsconftest.NewCA(t, "cluster CA")
	stores := map[uint64]*tlsconf.Store{}
	for id := uint64(1); id <= 2; id++ {
		stores[id], _ = nodeStore(t, ca, id)
	}
	stores[3] = stores[2]
	var logs syncBuffer
	c := newTLSCluster(t, fastConfig(), stores, &logs, 1)
	l := c.leader(1, 3)
	c.propose(l, 1, cmds("x", 20)...)
	waitFor(t, "node 1 and 2 applied", func() bool {
		return len(c.sms[1][1].list()) == 20 && len(c.sms[2][1].list()) == 20
	})
	waitFor(t, "the refusal logged", func() bool {
		return strings.Contains(logs.String(), "does not name yard-node:3") ||
			strings.Contains(logs.String(), "not naming yard-node:3")
	})
	if n := len(c.sms[3][1].list()); n != 0 {
		t.Fatalf("the impostor applied %d commands", n)
	}
	if p := c.hosts[3].tr.peers[1]; p.lastHeard.Load() != 0 {
		t.Fatal("the impostor heard from node 1")
	}
}
