package listener

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/yardmq/yard/internal/platform"
)

// ErrNoConnection: Registry.Close was given an id no live connection has.
var ErrNoConnection = errors.New("no such connection")

// Registry lists the live connections of one or more Servers, for the admin console and
// metrics. Safe for concurrent use.
type Registry struct {
	mu    sync.Mutex // guards next and conns
	next  uint64
	conns map[uint64]*Conn
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{conns: map[uint64]*Conn{}} }

// Info describes one live connection.
type Info struct {
	ID          uint64
	Protocol    string
	Listener    string
	Remote      string
	Local       string
	ConnectedAt time.Time
	User        string // set by the front end once authenticated; "" before
	VHost       string // AMQP's virtual host; "" elsewhere
	// RecvBytes and SentBytes count the bytes received and the bytes sent and acknowledged
	// by the peer, as the kernel counts them (TCP_INFO), TLS records included; BytesKnown
	// is false where the platform does not tell.
	RecvBytes, SentBytes uint64
	BytesKnown           bool
}

// List returns the live connections ordered by id (which is the order they were accepted).
func (r *Registry) List() []Info {
	r.mu.Lock()
	out := make([]Info, 0, len(r.conns))
	for _, c := range r.conns {
		out = append(out, c.Info())
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b Info) int { return compare(a.ID, b.ID) })
	return out
}

func compare(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Len is the number of live connections.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.conns)
}

// Close asks connection id to close, with reason for the client where the protocol can say
// it (AMQP's connection.close text). It returns once asked, not once closed.
func (r *Registry) Close(id uint64, reason string) error {
	r.mu.Lock()
	c := r.conns[id]
	r.mu.Unlock()
	if c == nil {
		return fmt.Errorf("cannot close connection %d: %w", id, ErrNoConnection)
	}
	c.Close(reason)
	return nil
}

func (r *Registry) add(c *Conn) {
	r.mu.Lock()
	r.next++
	c.id = r.next
	r.conns[c.id] = c
	r.mu.Unlock()
}

func (r *Registry) remove(c *Conn) {
	r.mu.Lock()
	delete(r.conns, c.id)
	r.mu.Unlock()
}

// Conn is one accepted connection as its Handler sees it.
type Conn struct {
	id          uint64 // set by Registry.add before the connection's goroutine starts
	protocol    string
	listener    string
	remote      net.Addr
	local       net.Addr
	connectedAt time.Time
	ip          string    // the per-IP limit's key
	acc         *acceptor // the listener it came from

	mu     sync.Mutex // guards nc, user, vhost, closer
	nc     net.Conn
	user   string
	vhost  string
	closer func(reason string)
}

func newConn(s *Server, a *acceptor, nc net.Conn, ip string) *Conn {
	return &Conn{
		protocol: s.cfg.Protocol, listener: a.cfg.Name, remote: nc.RemoteAddr(), local: nc.LocalAddr(),
		connectedAt: time.Now(), ip: ip, acc: a, nc: nc,
	}
}

// ID is the connection's registry id.
func (c *Conn) ID() uint64 { return c.id }

// NetConn is the connection the protocol is spoken on: the accepted one, or what the
// listener's Handshake made of it.
func (c *Conn) NetConn() net.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nc
}

func (c *Conn) setNetConn(nc net.Conn) {
	c.mu.Lock()
	c.nc = nc
	c.mu.Unlock()
}

// SetIdentity records who the front end authenticated (user) and, for AMQP, the virtual
// host, for the registry.
func (c *Conn) SetIdentity(user, vhost string) {
	c.mu.Lock()
	c.user, c.vhost = user, vhost
	c.mu.Unlock()
}

// SetCloser installs the front end's way to close the connection from outside its
// goroutine (Registry.Close, Shutdown): f must make the Handler return soon, e.g. by
// telling the client why and closing the socket. Without one, the socket is closed.
func (c *Conn) SetCloser(f func(reason string)) {
	c.mu.Lock()
	c.closer = f
	c.mu.Unlock()
}

// Close asks the connection to close: its closer, or closing the socket.
func (c *Conn) Close(reason string) {
	c.mu.Lock()
	f, nc := c.closer, c.nc
	c.mu.Unlock()
	if f != nil {
		f(reason)
		return
	}
	nc.Close()
}

// Info describes the connection.
func (c *Conn) Info() Info {
	c.mu.Lock()
	info := Info{
		ID: c.id, Protocol: c.protocol, Listener: c.listener,
		Remote: c.remote.String(), Local: c.local.String(), ConnectedAt: c.connectedAt,
		User: c.user, VHost: c.vhost,
	}
	nc := c.nc
	c.mu.Unlock()
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	if sc, ok := nc.(syscall.Conn); ok {
		info.RecvBytes, info.SentBytes, info.BytesKnown = platform.TCPBytes(sc)
	}
	return info
}
