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

	"github.com/yardmq/yard/internal/group"
	"github.com/yardmq/yard/internal/ratelog"
	"github.com/yardmq/yard/internal/stream"
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
type Config struct {
	Streams   *stream.Manager
	Groups    *group.Coordinator // consumer groups and committed offsets; nil = not served
	Logger    *slog.Logger
	ClusterID string // this node's identity and partition leadership are the streams' Node
	// AdvertisedHost and AdvertisedPort are what Metadata tells clients to connect to; empty
	// and 0 mean "the local address of the client's own connection", right for one node.
	AdvertisedHost string
	AdvertisedPort int32
	// MaxRequestBytes: a frame whose size prefix exceeds it closes the connection.
	MaxRequestBytes int32
	// MaxConnections: connections beyond it are closed at once.
	MaxConnections int
	// IdleTimeout closes a connection that sends nothing for this long.
	IdleTimeout time.Duration
	// AutoCreateTopics: Metadata (and Produce) for an unknown topic creates it with
	// DefaultPartitions partitions, as Kafka's auto.create.topics.enable.
	AutoCreateTopics  bool
	DefaultPartitions int32
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

	mu    sync.Mutex // guards conns and ln
	conns map[*conn]struct{}
	ln    net.Listener
	wg    sync.WaitGroup
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
	if cfg.DefaultPartitions <= 0 {
		cfg.DefaultPartitions = DefaultPartitions
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{cfg: cfg, log: cfg.Logger, rl: ratelog.New(cfg.Logger, 0), st: cfg.Streams, apis: newAPITable(), ctx: ctx, cancel: cancel, conns: map[*conn]struct{}{}}, nil
}

// Serve accepts connections on ln until Shutdown; it returns nil after Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("cannot accept kafka connection: %w", err)
		}
		s.mu.Lock()
		if len(s.conns) >= s.cfg.MaxConnections {
			s.mu.Unlock()
			s.log.Warn("kafka connection refused: MaxConnections reached", "remote", nc.RemoteAddr().String(), "max_connections", s.cfg.MaxConnections)
			nc.Close()
			continue
		}
		c := newConn(s, nc)
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// Shutdown stops accepting, aborts waits, closes every connection and waits for their
// goroutines (or ctx).
func (s *Server) Shutdown(ctx context.Context) error {
	s.cancel()
	s.mu.Lock()
	if s.ln != nil {
		s.ln.Close()
	}
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("cannot stop kafka server: %w", ctx.Err())
	}
}
