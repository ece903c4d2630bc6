// Package listener is yard's one accept loop, shared by every protocol front end (Kafka,
// AMQP): it accepts on any number of listeners, survives accept errors, enforces connection
// limits, keeps the registry of live connections and shuts down gracefully.
//
// Model. A front end builds one Server with a Handler (its per-connection state machine) and
// calls Serve once per listener; each Serve is one accept goroutine. An accepted connection
// is counted against its listener's MaxConnections and its source address's
// MaxConnectionsPerIP (over every listener of the Server), refused (closed and logged,
// rate-limited) if either is exceeded, otherwise registered in the Registry and handed to
// its own goroutine, which runs the listener's Handshake (if any) and then the Handler. When
// the Handler returns, the connection is closed, unregistered and uncounted.
//
// Accept errors never end Serve: running out of file descriptors (EMFILE, ENFILE), an
// aborted or reset connection, a lack of buffers and the like are transient, so the loop
// backs off (5 ms doubling to 1 s, as net/http) and logs, one line per interval. Only
// Shutdown, or the listener being closed by someone else, ends it.
//
// Shutdown stops every accept loop, asks each connection to close through the closer its
// front end registered (SetCloser: the front end's graceful close, e.g. AMQP's
// connection.close 320) or, without one, by closing the socket; it waits for the Handlers
// to return until its context ends, then closes whatever is left.
//
// TLS and authentication plug in at ListenerConfig.Handshake: a function run on the
// connection's own goroutine (never on the accept goroutine, so that one slow client cannot
// stall accepting), bounded by HandshakeTimeout, that may wrap the net.Conn (tls.Server) and
// must return it ready for the protocol. Protocol-level authentication (SASL, AMQP's
// connection.start-ok) stays in the front end, which reports the identity it established
// with Conn.SetIdentity for the registry.
package listener

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/yardmq/yard/internal/ratelog"
)

// Named limits and defaults.
const (
	acceptBackoffMin = 5 * time.Millisecond // first wait after a failed Accept, doubled per failure
	acceptBackoffMax = time.Second          // longest wait between Accepts
	// DefaultKeepAliveIdle is the idle time before the first TCP keepalive probe, and the
	// interval between probes, on accepted connections (Go's own default); with
	// DefaultKeepAliveCount probes a dead peer is found in about 2.5 minutes even where
	// the protocol has no heartbeat.
	DefaultKeepAliveIdle  = 15 * time.Second
	DefaultKeepAliveCount = 9
	// DefaultHandshakeTimeout bounds a listener's Handshake step.
	DefaultHandshakeTimeout = 10 * time.Second
	// logInterval: at most one line per kind of event per listener per interval.
	logInterval = 10 * time.Second
)

// Handler serves one connection until it ends. It runs on the connection's own goroutine;
// when it returns the connection is closed and unregistered.
type Handler func(c *Conn)

// Handshake runs before the Handler on the connection's goroutine (TLS, PROXY protocol,
// ...). It returns the connection the protocol is spoken on (nc itself or a wrapper of it)
// or an error, which closes the connection. ctx ends at HandshakeTimeout or at Shutdown;
// the raw connection also has its deadline set to HandshakeTimeout, cleared afterwards.
type Handshake func(ctx context.Context, nc net.Conn) (net.Conn, error)

// Config configures a Server: one protocol's accept loops.
type Config struct {
	Protocol string // "kafka", "amqp": in the registry and in log lines
	Handler  Handler
	Logger   *slog.Logger
	// Registry lists the connections; share one between front ends to list them all. nil:
	// the Server keeps its own.
	Registry *Registry
	// MaxConnectionsPerIP: connections from one source address (over every listener of the
	// Server) beyond this many are refused; 0: no limit.
	MaxConnectionsPerIP int
	// KeepAliveIdle: TCP keepalive idle time and probe interval on accepted connections;
	// 0: DefaultKeepAliveIdle; negative: keepalive off.
	KeepAliveIdle time.Duration
	// HandshakeTimeout bounds each listener's Handshake; 0: DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
}

// ListenerConfig configures one listener of a Server.
type ListenerConfig struct {
	// Name identifies the listener in the registry and the logs; "" means its address.
	Name string
	// MaxConnections: connections on this listener beyond this many are refused; 0: no
	// limit.
	MaxConnections int
	// Handshake, if not nil, runs before the Handler (the TLS seam; see the package doc).
	Handshake Handshake
}

// Server runs the accept loops of one protocol.
type Server struct {
	cfg Config
	log *slog.Logger
	rl  *ratelog.Limiter
	reg *Registry

	ctx      context.Context // cancelled by Shutdown: ends backoff waits and handshakes
	cancel   context.CancelFunc
	acceptWG sync.WaitGroup
	connWG   sync.WaitGroup

	mu      sync.Mutex // guards everything below
	closing bool
	lns     map[*acceptor]struct{}
	perIP   map[string]int
	conns   map[*Conn]struct{}
}

// acceptor is one listener being served.
type acceptor struct {
	ln     net.Listener
	cfg    ListenerConfig
	active int // connections accepted and not yet ended; guarded by Server.mu
}

// NewServer checks cfg and fills defaults.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Handler == nil {
		return nil, errors.New("cannot create listener: no handler")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		cfg.Registry = NewRegistry()
	}
	if cfg.KeepAliveIdle == 0 {
		cfg.KeepAliveIdle = DefaultKeepAliveIdle
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.MaxConnectionsPerIP < 0 {
		return nil, fmt.Errorf("cannot create listener: MaxConnectionsPerIP %d is negative", cfg.MaxConnectionsPerIP)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg: cfg, log: cfg.Logger, rl: ratelog.New(cfg.Logger, logInterval), reg: cfg.Registry,
		ctx: ctx, cancel: cancel, lns: map[*acceptor]struct{}{}, perIP: map[string]int{}, conns: map[*Conn]struct{}{},
	}, nil
}

// Registry is the registry the Server records its connections in.
func (s *Server) Registry() *Registry { return s.reg }

// Serve accepts connections on ln until Shutdown, then returns nil; called after Shutdown it
// returns nil at once (so that a Serve started just before a Shutdown needs no care). It
// returns an error only if ln is closed by someone else, or for a bad lc; accept errors are
// retried (see the package doc). ln is closed when Serve returns.
func (s *Server) Serve(ln net.Listener, lc ListenerConfig) error {
	if lc.Name == "" {
		lc.Name = ln.Addr().String()
	}
	if lc.MaxConnections < 0 {
		ln.Close()
		return fmt.Errorf("cannot serve %s listener %s: MaxConnections %d is negative", s.cfg.Protocol, lc.Name, lc.MaxConnections)
	}
	a := &acceptor{ln: ln, cfg: lc}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.lns[a] = struct{}{}
	s.acceptWG.Add(1)
	s.mu.Unlock()
	defer func() {
		ln.Close()
		s.mu.Lock()
		delete(s.lns, a)
		s.mu.Unlock()
		s.acceptWG.Done()
	}()
	return s.acceptLoop(a)
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// acceptLoop is Serve's loop. Between failed Accepts it waits acceptBackoffMin, doubling up
// to acceptBackoffMax, and resets after a success.
func (s *Server) acceptLoop(a *acceptor) error {
	var delay time.Duration
	var timer *time.Timer
	for {
		nc, err := a.ln.Accept()
		if err != nil {
			if s.isClosing() {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("cannot accept %s connections on %s: listener closed: %w", s.cfg.Protocol, a.cfg.Name, err)
			}
			delay = min(max(2*delay, acceptBackoffMin), acceptBackoffMax)
			level := slog.LevelWarn
			if !isTemporary(err) {
				level = slog.LevelError
			}
			s.rl.Log(context.Background(), level, "accept "+a.cfg.Name, "cannot accept connection; retrying",
				"protocol", s.cfg.Protocol, "listener", a.cfg.Name, "err", err, "retry_in", delay)
			if timer == nil {
				timer = time.NewTimer(delay)
			} else {
				timer.Reset(delay)
			}
			select {
			case <-timer.C:
			case <-s.ctx.Done():
				timer.Stop()
				return nil
			}
			continue
		}
		delay = 0
		s.admit(a, nc)
	}
}

// admit counts nc against the limits and starts its goroutine, or refuses it.
func (s *Server) admit(a *acceptor, nc net.Conn) {
	ip := sourceIP(nc.RemoteAddr())
	s.mu.Lock()
	var refused string
	switch {
	case s.closing:
		refused = "shutting down"
	case a.cfg.MaxConnections > 0 && a.active >= a.cfg.MaxConnections:
		refused = "listener's max connections reached"
	case s.cfg.MaxConnectionsPerIP > 0 && s.perIP[ip] >= s.cfg.MaxConnectionsPerIP:
		refused = "max connections per source address reached"
	}
	if refused != "" {
		s.mu.Unlock()
		s.rl.Warn("refused "+refused+" "+a.cfg.Name, "connection refused: "+refused,
			"protocol", s.cfg.Protocol, "listener", a.cfg.Name, "remote", nc.RemoteAddr().String(),
			"max_connections", a.cfg.MaxConnections, "max_connections_per_ip", s.cfg.MaxConnectionsPerIP)
		nc.Close()
		return
	}
	a.active++
	s.perIP[ip]++
	c := newConn(s, a, nc, ip)
	s.conns[c] = struct{}{}
	s.connWG.Add(1)
	s.mu.Unlock()
	s.reg.add(c)
	setKeepAlive(nc, s.cfg.KeepAliveIdle)
	go s.run(c)
}

// run is a connection's goroutine: handshake, handler, then clean-up.
func (s *Server) run(c *Conn) {
	defer s.release(c)
	if hs := c.acc.cfg.Handshake; hs != nil {
		nc, err := s.handshake(c, hs)
		if err != nil {
			s.rl.Info("handshake "+c.listener, "connection handshake failed",
				"protocol", s.cfg.Protocol, "listener", c.listener, "remote", c.remote.String(), "err", err)
			return
		}
		c.setNetConn(nc)
	}
	s.cfg.Handler(c)
}

func (s *Server) handshake(c *Conn, hs Handshake) (net.Conn, error) {
	raw := c.NetConn()
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.HandshakeTimeout)
	defer cancel()
	raw.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	nc, err := hs(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("cannot complete connection handshake: %w", err)
	}
	raw.SetDeadline(time.Time{})
	return nc, nil
}

// release undoes admit once the connection has ended.
func (s *Server) release(c *Conn) {
	c.NetConn().Close()
	s.reg.remove(c)
	s.mu.Lock()
	c.acc.active--
	if s.perIP[c.ip]--; s.perIP[c.ip] <= 0 {
		delete(s.perIP, c.ip)
	}
	delete(s.conns, c)
	s.mu.Unlock()
	s.connWG.Done()
}

// Shutdown stops accepting on every listener, asks every connection to close (its closer,
// see Conn.SetCloser, or closing the socket) and waits for their Handlers to return. When
// ctx ends first it closes the sockets of those still running and returns ctx's error
// without waiting further.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing {
		s.closing = true
		s.cancel()
	}
	for a := range s.lns {
		a.ln.Close()
	}
	s.mu.Unlock()
	s.acceptWG.Wait() // no admit runs after this: the set of connections only shrinks
	s.mu.Lock()
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close("broker shutdown")
	}
	done := make(chan struct{})
	go func() { s.connWG.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	for _, c := range conns {
		c.NetConn().Close()
	}
	return fmt.Errorf("cannot stop %s connections gracefully: %w", s.cfg.Protocol, ctx.Err())
}
