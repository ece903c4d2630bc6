// Package amqp is yard's AMQP 0-9-1 front end: the connection and channel state machines that
// let unmodified RabbitMQ clients publish through exchanges into queues and consume from them.
// The AMQP domain it serves (vhosts, exchanges, the queue registry, durable topology, queue
// types, dead-lettering, stream queues) is internal/vhost; this package decodes methods, calls
// the domain, maps its refusals to reply codes (errors.go) and writes what it answers.
//
// Model. Each connection has one reader goroutine, which decodes frames and runs every
// method to completion in arrival order (so a channel's methods are ordered for free), and one
// writer goroutine, which drains an output buffer that anyone may append encoded frames to
// (replies from the reader, deliveries from queue dispatch on other goroutines). Deliveries
// are bounded by prefetch and by the output backlog (outBacklogMax): a consumer without room
// refuses the delivery and its queue retries when room returns. Every other output (replies,
// basic.get-ok, returns, confirms) is bounded by outReplyMax: past it the reader stops
// reading the connection until the client reads (out.go).
//
// Files follow the protocol's classes: handshake.go (connection.start..open),
// conn.go (frames, close, heartbeats), channel.go, exchange.go, queue.go, consume.go
// (basic.qos/consume/cancel and deliveries), publish.go (basic.publish, returns, confirms,
// tx), ack.go (ack/nack/reject/recover/get), alarm.go (connection.blocked), confirm.go
// (confirms that wait for fsync), codec.go (the message format the domain needs: field
// tables, priority and expiration, x-death, x-delivery-count), stream_consume.go and
// streamrec.go (stream queues: the Kafka topic of the same name).
package amqp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/yardmq/yard/internal/amqp/wire"
	"github.com/yardmq/yard/internal/listener"
	"github.com/yardmq/yard/internal/ratelog"
	"github.com/yardmq/yard/internal/tlsconf"
	"github.com/yardmq/yard/internal/vhost"
)

// Defaults, as RabbitMQ's.
const (
	DefaultChannelMax = 2047
	DefaultFrameMax   = 131072
	DefaultHeartbeat  = 60 * time.Second
	// DefaultFrameReadTimeout: a frame whose first byte has arrived must arrive whole within
	// this (RabbitMQ has no equivalent; 30 s is the Kafka side's request read timeout).
	DefaultFrameReadTimeout = 30 * time.Second
	connReadBufferBytes     = 64 << 10 // a connection's read buffer, while it reads
	// keepReadBufferFor: a connection waits this long for its next frame with its read
	// buffer, then lends it back to the pool and waits without.
	keepReadBufferFor = 100 * time.Millisecond
	// HeartbeatNone as a Heartbeat setting offers no heartbeat (connection.tune heartbeat 0).
	// A Heartbeat of 0 means DefaultHeartbeat, in every config struct (Config here and the
	// broker's AMQPConfig); only the --amqp-heartbeat flag spells "none" as 0, as RabbitMQ's
	// heartbeat setting does, and turns it into HeartbeatNone.
	HeartbeatNone           time.Duration = -1
	DefaultDiskFreeLimit                  = 50 << 20 // bytes
	DefaultMemoryFraction                 = 0.4      // of physical memory, RabbitMQ's vm_memory_high_watermark
	handshakeTimeout                      = 10 * time.Second
	closeOkTimeout                        = 3 * time.Second
	maxMessageBytes                       = 128 << 20
	outBacklogMax                         = 1 << 20 // bytes queued for a socket before deliveries pause
	outReplyMax                           = 1 << 20 // bytes of replies not yet written before the reader waits (out.go)
	defaultResourceInterval               = time.Second
)

// MethodObserver receives, for each method frame a client sent, its ID (wire.Method.ID) and
// the time the connection's reader spent handling it: the method's own work (a declare, a
// bind, routing a publish's method frame), not content frames nor the durability wait of a
// confirm, which complete later. Called on the reader goroutine: it must be cheap and never
// block.
type MethodObserver interface {
	ObserveMethod(id uint32, d time.Duration)
}

// Config configures a Server. The zero value plus a Logger is usable.
type Config struct {
	Logger  *slog.Logger
	DataDir string // disk-free alarm checks this file system; "" disables the check
	// Users maps user names to passwords; nil means {"guest": "guest"}. Used when Auth is nil.
	Users map[string]string
	// Auth is the user backend that checks a user's secret at login and, if its secrets
	// expire (a SecretUpdater), again when a connection updates it
	// (connection.update-secret); nil checks Users.
	Auth Authenticator
	// Permissions, if not nil, checks vhost access at connection.open and permissions on
	// every method (access.go), as RabbitMQ's; nil allows everything.
	Permissions Permissions
	// Limits, if not nil, are RabbitMQ's user and vhost limits (limits.go).
	Limits Limits
	// LoopbackUsers may log in only from a loopback address; nil means {"guest"}.
	LoopbackUsers []string
	// VHosts is the AMQP domain served; nil means one vhost "/" keeping every queue in
	// memory. Shutdown closes its queues.
	VHosts     *vhost.Hosts
	ChannelMax uint16
	FrameMax   uint32
	Heartbeat  time.Duration // 0: DefaultHeartbeat; HeartbeatNone (or any negative): offer none
	// MemoryHighWatermarkBytes blocks publishers above this much memory in use; 0 means
	// DefaultMemoryFraction of physical memory.
	MemoryHighWatermarkBytes uint64
	// DiskFreeLimitBytes blocks publishers when the data directory's file system has less free
	// space; 0 means DefaultDiskFreeLimit.
	DiskFreeLimitBytes uint64
	ResourceInterval   time.Duration // how often memory and disk are checked; 0: 1s
	// PaceBacklogBytes paces publishers (pace.go) of a queue whose fast consumers let its
	// backlog grow past this many bytes; 0 never paces.
	PaceBacklogBytes int64
	// MemoryUsed and DiskFree override the probes (tests); nil uses the runtime and statfs.
	MemoryUsed func() uint64
	DiskFree   func() (uint64, error)
	Version    string // advertised in server properties; "" means the binary's (buildVersion)
	// FrameReadTimeout: once a frame's first byte has arrived, the whole frame must arrive
	// within this, or the connection is dropped; 0: DefaultFrameReadTimeout.
	FrameReadTimeout time.Duration
	// MaxConnections: connections on one listener beyond it are closed at once; 0: no limit
	// (RabbitMQ's connection_max default, infinity).
	MaxConnections int
	// MaxConnectionsPerIP: connections from one source address beyond it are closed at
	// once; 0: no limit.
	MaxConnectionsPerIP int
	// Registry lists the live connections (shared with the other front ends); nil: a
	// private one.
	Registry *listener.Registry
	// MethodObserver is told about every method frame handled (metrics); nil: nobody.
	MethodObserver MethodObserver
}

// Authenticator is a user backend: it checks a user's secret (a password, or a token for a
// backend that issues them). A nil error accepts; any error refuses, and is logged, never
// sent to the client.
type Authenticator interface {
	Authenticate(user, secret string) error
}

// SecretUpdater is implemented by a user backend whose secrets expire (tokens): it
// re-checks a logged-in user's new secret (connection.update-secret); an error refuses it
// and closes the connection. As in RabbitMQ, a backend that does not implement it (such as
// passwords, which do not expire) accepts any new secret and keeps the connection as it
// logged in.
type SecretUpdater interface {
	UpdateSecret(user, secret string) error
}

// ExternalAuthenticator is implemented by a user backend that accepts the EXTERNAL
// mechanism: the user named by a verified TLS client certificate logs in without a secret
// if the backend knows it (RabbitMQ's rabbitmq_auth_mechanism_ssl). A backend that does not
// implement it refuses every EXTERNAL login.
type ExternalAuthenticator interface {
	AuthenticateExternal(user string) error
}

// passwords is the Authenticator of Config.Users.
type passwords map[string]string

// AuthenticateExternal accepts a user the map knows.
func (p passwords) AuthenticateExternal(user string) error {
	if _, ok := p[user]; !ok {
		return errors.New("unknown user")
	}
	return nil
}

func (p passwords) Authenticate(user, secret string) error {
	if want, ok := p[user]; !ok || want != secret {
		return errors.New("unknown user or wrong password")
	}
	return nil
}

// Server serves AMQP connections.
type Server struct {
	cfg    Config
	log    *slog.Logger
	rl     *ratelog.Limiter // for lines a client can repeat at will (per message, per connection)
	vhosts *vhost.Hosts
	alarm  *alarm

	lsrv    *listener.Server // accept loops, limits, registry, shutdown
	readers *wire.ReaderPool // connections' read buffers, lent while a frame is read
	mu      sync.Mutex       // guards conns, closed
	conns   map[*conn]struct{}
	closed  bool
	wg      sync.WaitGroup // the alarm's goroutine
	stop    chan struct{}
	usage   *usage // what user and vhost limits count (limits.go)
	// epoch is the server's start: method timings are durations since it, which read only
	// the monotonic clock (time.Now reads the wall clock too: a third clock read per method).
	epoch time.Time
}

// NewServer builds a server; it starts serving on Serve.
func NewServer(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Users == nil {
		cfg.Users = map[string]string{"guest": "guest"}
	}
	if cfg.Auth == nil {
		cfg.Auth = passwords(cfg.Users)
	}
	if cfg.LoopbackUsers == nil {
		cfg.LoopbackUsers = []string{"guest"}
	}
	if cfg.VHosts == nil {
		cfg.VHosts = vhost.New(vhost.Config{Logger: cfg.Logger, Codec: Codec{}})
	}
	if cfg.ChannelMax == 0 {
		cfg.ChannelMax = DefaultChannelMax
	}
	if cfg.FrameMax == 0 {
		cfg.FrameMax = DefaultFrameMax
	}
	if cfg.FrameReadTimeout <= 0 {
		cfg.FrameReadTimeout = DefaultFrameReadTimeout
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.Version == "" {
		cfg.Version = buildVersion()
	}
	s := &Server{cfg: cfg, log: cfg.Logger, rl: ratelog.New(cfg.Logger, 0), vhosts: cfg.VHosts, conns: map[*conn]struct{}{}, stop: make(chan struct{}), usage: newUsage(), epoch: time.Now()}
	lsrv, err := listener.NewServer(listener.Config{
		Protocol:            "amqp",
		Handler:             s.serveConn,
		Logger:              cfg.Logger,
		Registry:            cfg.Registry,
		MaxConnectionsPerIP: max(cfg.MaxConnectionsPerIP, 0),
	})
	if err != nil {
		panic("BUG: " + err.Error()) // its only errors are a nil handler and a negative limit
	}
	s.lsrv = lsrv
	s.readers = wire.NewReaderPool(connReadBufferBytes)
	s.alarm = newAlarm(s)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.alarm.run(s.stop)
	}()
	return s
}

// Serve accepts connections on ln until Shutdown. It returns nil after Shutdown. It may be
// called for several listeners; MaxConnections applies to each.
func (s *Server) Serve(ln net.Listener) error {
	return s.lsrv.Serve(ln, listener.ListenerConfig{MaxConnections: max(s.cfg.MaxConnections, 0)})
}

// ServeTLS serves AMQPS on ln (RabbitMQ's 5671): each connection's TLS handshake runs on its
// own goroutine with the listener's handshake timeout, then AMQP as on Serve. A client that
// presented a verified certificate may log in with EXTERNAL as the certificate's CN.
func (s *Server) ServeTLS(ln net.Listener, tc *tlsconf.Store) error {
	if tc == nil {
		ln.Close()
		return errors.New("cannot serve AMQPS: no TLS certificate configured (--tls-cert-file, --tls-key-file)")
	}
	return s.lsrv.Serve(ln, listener.ListenerConfig{Name: "amqps " + ln.Addr().String(),
		MaxConnections: max(s.cfg.MaxConnections, 0), Handshake: tc.Handshake()})
}

// serveConn is the listener's Handler: one connection, to its end.
func (s *Server) serveConn(lc *listener.Conn) {
	c := newConn(s, lc.NetConn())
	c.lc = lc
	lc.SetCloser(func(reason string) { c.forceClose("CONNECTION_FORCED - " + reason) })
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	c.serve()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Registry lists the live connections.
func (s *Server) Registry() *listener.Registry { return s.lsrv.Registry() }

// Shutdown stops accepting, closes every connection with 320 CONNECTION_FORCED, and waits for
// them until ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.stop)
	}
	s.mu.Unlock()
	if err := s.lsrv.Shutdown(ctx); err != nil {
		return fmt.Errorf("cannot shut down AMQP server: %w", err)
	}
	s.wg.Wait()
	if err := s.vhosts.Close(); err != nil {
		return fmt.Errorf("cannot close queues: %w", err)
	}
	return nil
}

// connections returns a snapshot of the open connections.
func (s *Server) connections() []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	return out
}
