// Package broker assembles a yard server: it owns the data directory (and its lock), the
// listeners, and the front ends that serve them (Kafka, AMQP, HTTP admin), and it orders their
// start and graceful shutdown. Front ends plug in through one start function each
// (startKafka, startAMQP, startHTTP), in a file named after the front end.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/yardmq/yard/internal/log"
	"github.com/yardmq/yard/internal/stream"
)

// Config is everything `yard serve` can be told.
type Config struct {
	DataDir      string
	KafkaListen  string // empty: Kafka listener disabled
	AMQPListen   string // empty: AMQP listener disabled
	HTTPListen   string // empty: HTTP listener disabled
	HTTPPprof    bool   // serve Go's profiler under /debug/pprof/ on the HTTP listener
	SyncPolicy   log.SyncPolicy
	SyncInterval time.Duration
	Logger       *slog.Logger
	// NodeID is this broker's id, reported wherever a protocol names a broker (Kafka's
	// node.id; 1 as in Kafka's quick start).
	NodeID int32

	Kafka KafkaConfig
	AMQP  AMQPConfig
}

// DefaultNodeID is the node id of Kafka's quick start.
const DefaultNodeID = 1

// DefaultConfig is the embedded default: data in ./yard-data, the incumbents' well-known ports,
// and acknowledgements only after fsync.
func DefaultConfig() Config {
	return Config{
		DataDir:      "yard-data",
		KafkaListen:  ":9092",
		AMQPListen:   ":5672",
		HTTPListen:   ":8080",
		SyncPolicy:   log.SyncAlways,
		SyncInterval: time.Second,
		NodeID:       DefaultNodeID,
		Kafka:        DefaultKafkaConfig(),
		AMQP:         DefaultAMQPConfig(),
	}
}

// Broker is one running yard server.
type Broker struct {
	cfg  Config
	log  *slog.Logger
	data *dataDir

	mu        sync.Mutex // guards listeners and stops
	listeners map[string]net.Listener
	stops     []namedStop

	streamsMu   sync.Mutex // guards streams and streamsRefs (streams.go)
	streams     *stream.Manager
	streamsRefs int
}

type namedStop struct {
	name string
	stop func(ctx context.Context) error
}

// New opens (creating if needed) and locks the data directory. Nothing listens until Start.
func New(cfg Config) (*Broker, error) {
	if cfg.NodeID < 0 {
		return nil, fmt.Errorf("cannot start broker: node id %d is negative", cfg.NodeID)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	dd, err := openDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	return &Broker{cfg: cfg, log: cfg.Logger, data: dd, listeners: map[string]net.Listener{}}, nil
}

// Start binds every enabled listener first (so a busy port fails fast, before any front end has
// touched the data), then starts the front ends.
func (b *Broker) Start() error {
	type frontEnd struct {
		name, addr string
		start      func(net.Listener) (func(context.Context) error, error)
	}
	fronts := []frontEnd{
		{"kafka", b.cfg.KafkaListen, b.startKafka},
		{"amqp", b.cfg.AMQPListen, b.startAMQP},
		{"http", b.cfg.HTTPListen, b.startHTTP},
	}
	bound := map[string]net.Listener{}
	for _, f := range fronts {
		if f.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", f.addr)
		if err != nil {
			for _, l := range bound {
				l.Close()
			}
			return fmt.Errorf("cannot listen for %s on %s: %w", f.name, f.addr, err)
		}
		bound[f.name] = ln
	}
	for _, f := range fronts {
		ln, ok := bound[f.name]
		if !ok {
			continue
		}
		stop, err := f.start(ln)
		if err != nil {
			ln.Close()
			return fmt.Errorf("cannot start %s: %w", f.name, err)
		}
		b.mu.Lock()
		b.listeners[f.name] = ln
		b.stops = append(b.stops, namedStop{f.name, stop})
		b.mu.Unlock()
		b.log.Info("listening", "protocol", f.name, "addr", ln.Addr().String())
	}
	return nil
}

// Addr is the bound address of a front end ("kafka", "amqp", "http"), or nil if it is disabled.
func (b *Broker) Addr(name string) net.Addr {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ln, ok := b.listeners[name]; ok {
		return ln.Addr()
	}
	return nil
}

// Shutdown stops the front ends in reverse start order (each stops accepting, finishes in-flight
// work and flushes its storage), then releases the data directory.
func (b *Broker) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	stops := b.stops
	b.stops = nil
	b.mu.Unlock()
	var errs []error
	for i := len(stops) - 1; i >= 0; i-- {
		if err := stops[i].stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("cannot stop %s: %w", stops[i].name, err))
		}
	}
	if err := b.data.close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
