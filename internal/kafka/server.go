// Package kafka is yard's Kafka front end: a TCP server speaking the Kafka wire protocol to
// unmodified Kafka clients, over the topics and partitions of internal/stream.
//
// Model: one goroutine pair per connection (conn.go). The reader reads size-prefixed frames,
// decodes the request header and body with franz-go's generated codec (kmsg), and runs the
// handler for its API key, which does the request's immediate work in arrival order (a
// produce appends to the logs right away) and returns a reply. Replies go through a bounded
// queue to the writer, which finishes each one in order (a produce reply first waits for
// durability, a fetch reply long-polls) and writes it. So pipelined requests are answered in
// the order they came, appends of consecutive requests share fsyncs, and a client that sends
// faster than replies drain is pushed back by the queue bound.
//
// Every API lives in a file named after it (00_produce.go, 01_fetch.go, ...), with a note of
// the versions it serves, and is registered in exactly one table (apis.go). Protocol errors
// are response codes from one table (errors.go); a Go error from the connection layer means
// "drop this connection".
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/yardmq/yard/internal/auth"
	"github.com/yardmq/yard/internal/auth/acl"
	"github.com/yardmq/yard/internal/group"
	"github.com/yardmq/yard/internal/listener"
	"github.com/yardmq/yard/internal/ratelog"
	"github.com/yardmq/yard/internal/stream"
	"github.com/yardmq/yard/internal/tlsconf"
	"github.com/yardmq/yard/internal/txn"
)

// Defaults of the named limits (Kafka's own defaults where it has one).
const (
	DefaultMaxRequestBytes   = 100 << 20 // socket.request.max.bytes
	DefaultMaxConnections    = 10000
	DefaultIdleTimeout       = 10 * time.Minute // connections.max.idle.ms
	DefaultPartitions        = 1                // num.partitions
	maxInFlightPerConn       = 64               // decoded requests whose replies are not yet written
	connReadBufferBytes      = 64 << 10
	connWriteBufferBytes     = 64 << 10
	minRequestFrameBytes     = 10 // api key, version, correlation id, client id length
	maxFetchMaxWait          = 5 * time.Minute
	defaultShutdownGraceTime = 5 * time.Second
)

// Config configures a Server.
// RequestObserver receives, for each request answered, its API key and the time from its
// arrival to its response written (durability and long-poll waits included). Called on
// the connection's writer goroutine: it must be cheap and never block.
type RequestObserver interface {
	ObserveRequest(apiKey int16, d time.Duration)
}

// TopicObserver counts, per topic, the record bytes and records produced (counted once
// appended) and the record bytes fetched (counted once written to the socket). Called once
// per partition per request on the connection's goroutines: it must be cheap and never block.
type TopicObserver interface {
	ObserveProduce(topic string, bytes, records int64)
	ObserveFetch(topic string, bytes int64)
}

type Config struct {
	Streams   *stream.Manager
	Groups    *group.Coordinator // consumer groups and committed offsets; nil = not served
	Txn       txn.Service        // transactions (*txn.Coordinator, or *txn.Placed on a cluster node); nil = not served (TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
	Logger    *slog.Logger
	ClusterID string // this node's identity and partition leadership are the streams' Node
	// AdvertisedHost and AdvertisedPort are what Metadata tells clients to connect to; empty
	// and 0 mean "the local address of the client's own connection", right for one node.
	AdvertisedHost string
	AdvertisedPort int32
	// MaxRequestBytes: a frame whose size prefix exceeds it closes the connection.
	MaxRequestBytes int32
	// MaxConnections: connections on one listener beyond it are closed at once.
	MaxConnections int
	// MaxConnectionsPerIP: connections from one source address beyond it are closed at once
	// (max.connections.per.ip); 0: no limit.
	MaxConnectionsPerIP int
	// Registry lists the live connections (shared with the other front ends); nil: a
	// private one.
	Registry *listener.Registry
	// RequestObserver is told about every request answered (metrics); nil: nobody.
	RequestObserver RequestObserver
	// TopicObserver is told the bytes and records in and out of each topic (metrics); nil:
	// nobody.
	TopicObserver TopicObserver
	// IdleTimeout closes a connection that sends nothing for this long.
	IdleTimeout time.Duration
	// RequestReadTimeout: once a request's first byte has arrived, the whole request must
	// arrive within this, or the connection is closed (read.go). Kafka has no exact
	// equivalent; 0: DefaultRequestReadTimeout.
	RequestReadTimeout time.Duration
	// QueuedMaxRequestBytes bounds the memory all in-flight requests reserve; reading pauses
	// while it is spent (Kafka's queued.max.request.bytes); 0: DefaultQueuedMaxRequestBytes.
	QueuedMaxRequestBytes int64
	// AutoCreateTopics: Metadata (and Produce) for an unknown topic creates it with
	// DefaultPartitions partitions, as Kafka's auto.create.topics.enable.
	AutoCreateTopics  bool
	DefaultPartitions int32
	// TLS is the certificate material of SSL and SASL_SSL listeners; nil: only PLAINTEXT
	// and SASL_PLAINTEXT listeners can be served.
	TLS *tlsconf.Store
	// Users is the user store SASL authenticates against and the SCRAM credential APIs
	// manage; nil: SaslHandshake offers no mechanism and those APIs answer errors.
	Users *auth.Store
	// SASL makes Serve serve SASL_PLAINTEXT instead of PLAINTEXT (ServeListener takes the
	// security protocol of each listener).
	SASL bool
	// ReauthMaxAge is connections.max.reauth.ms (KIP-368): a SASL session lasts this long,
	// after which the client must re-authenticate before any other request; 0: forever.
	ReauthMaxAge time.Duration
	// AllowUnauthenticated lets a listener without SASL serve clients from any address;
	// otherwise (protected mode) it serves loopback clients only.
	AllowUnauthenticated bool

	isLoopback func(net.Addr) bool // tests: who counts as a local client; nil: loopback addresses
	// Authorizer, if not nil, enforces Kafka ACLs on every API and serves
	// Create/Describe/DeleteAcls (--kafka-authorizer=acl); nil allows everything and answers
	// the ACL APIs SECURITY_DISABLED, as Kafka without an authorizer.
	Authorizer *acl.Authorizer
}

// Server is a running Kafka front end.
type Server struct {
	cfg  Config
	log  *slog.Logger
	rl   *ratelog.Limiter // for lines that can repeat per request (storage errors)
	st   *stream.Manager
	apis apiTable

	ctx    context.Context // cancelled on shutdown: aborts long polls and durability waits
	cancel context.CancelFunc

	lsrv *listener.Server // accept loops, limits, registry, shutdown

	mu        sync.Mutex              // guards listeners
	listeners map[string]listenerInfo // by listener name
	reqMem    *reqBudget              // memory in-flight requests reserve (read.go)
	bufs      *bufPools               // connection read and write buffers
	// fetchSessions is the broker's cache of incremental fetch sessions (KIP-227).
	fetchSessions *fetchSessionCache
	// isLoopback decides protected mode's "local client"; tests replace it.
	isLoopback func(net.Addr) bool
}

// NewServer checks cfg and fills defaults.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Streams == nil {
		return nil, errors.New("cannot create kafka server: no stream manager")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = DefaultMaxConnections
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.RequestReadTimeout <= 0 {
		cfg.RequestReadTimeout = DefaultRequestReadTimeout
	}
	if cfg.QueuedMaxRequestBytes <= 0 {
		cfg.QueuedMaxRequestBytes = DefaultQueuedMaxRequestBytes
	}
	if cfg.DefaultPartitions <= 0 {
		cfg.DefaultPartitions = DefaultPartitions
	}
	if cfg.isLoopback == nil {
		cfg.isLoopback = isLoopbackAddr
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, log: cfg.Logger, rl: ratelog.New(cfg.Logger, 0), st: cfg.Streams, apis: newAPITable(), ctx: ctx, cancel: cancel,
		reqMem: newReqBudget(cfg.QueuedMaxRequestBytes), bufs: newBufPools(), listeners: map[string]listenerInfo{}, isLoopback: cfg.isLoopback,
		fetchSessions: newFetchSessionCache(fetchSessionSlots)}
	lsrv, err := listener.NewServer(listener.Config{
		Protocol:            "kafka",
		Handler:             s.serveConn,
		Logger:              cfg.Logger,
		Registry:            cfg.Registry,
		MaxConnectionsPerIP: cfg.MaxConnectionsPerIP,
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("cannot create kafka server: %w", err)
	}
	s.lsrv = lsrv
	return s, nil
}

// Serve accepts connections on ln until Shutdown; it returns nil after Shutdown. It may be
// called for several listeners; MaxConnections applies to each.
func (s *Server) Serve(ln net.Listener) error {
	if s.cfg.SASL {
		return s.ServeListener(ln, ListenerSpec{Name: string(SASLPlaintext), Protocol: SASLPlaintext}, true)
	}
	return s.ServeListener(ln, ListenerSpec{Name: string(Plaintext), Protocol: Plaintext}, true)
}

// ServeListener serves one listener of the --kafka-listen list: over TLS for SSL and
// SASL_SSL (the handshake runs on the connection's goroutine, bounded by the listener's
// handshake timeout). Metadata on a connection of a primary listener advertises
// Config.AdvertisedHost/Port where set; every other listener advertises its own address
// (Kafka's advertised address per listener name).
func (s *Server) ServeListener(ln net.Listener, spec ListenerSpec, primary bool) error {
	lc := listener.ListenerConfig{Name: spec.Name, MaxConnections: s.cfg.MaxConnections}
	if spec.Protocol.TLS() {
		if s.cfg.TLS == nil {
			ln.Close()
			return fmt.Errorf("cannot serve kafka listener %s: no TLS certificate configured (--tls-cert-file, --tls-key-file)", spec.Name)
		}
		lc.Handshake = s.cfg.TLS.Handshake()
	}
	s.mu.Lock()
	s.listeners[lc.Name] = listenerInfo{spec: spec, primary: primary}
	s.mu.Unlock()
	return s.lsrv.Serve(ln, lc)
}

// listenerInfo is what a connection needs to know about the listener it came through.
type listenerInfo struct {
	spec    ListenerSpec
	primary bool
}

// serveConn is the listener's Handler: one connection, to its end.
func (s *Server) serveConn(lc *listener.Conn) {
	c := newConn(s, lc.NetConn())
	s.mu.Lock()
	c.listener = s.listeners[lc.Info().Listener]
	s.mu.Unlock()
	if cert, ok := tlsconf.PeerCertificate(c.nc); ok {
		// Kafka's default principal builder: the certificate subject's full DN.
		c.principal = auth.UserPrincipal(tlsconf.SubjectDN(cert))
		lc.SetIdentity(c.principal.Name, "")
	}
	c.lc = lc
	c.initSecurity(c.listener.spec.Protocol.SASL())
	lc.SetCloser(func(string) {
		c.cancel()
		c.nc.Close()
	})
	c.serve()
}

// Registry lists the live connections.
func (s *Server) Registry() *listener.Registry { return s.lsrv.Registry() }

// Shutdown stops accepting, aborts waits (long polls, durability waits), closes every
// connection and waits for their goroutines (or ctx). Appends already made stay made.
func (s *Server) Shutdown(ctx context.Context) error {
	s.cancel()
	if err := s.lsrv.Shutdown(ctx); err != nil {
		return fmt.Errorf("cannot stop kafka server: %w", err)
	}
	return nil
}
