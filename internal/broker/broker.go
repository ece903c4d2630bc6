// Package broker assembles a yard server: it owns the data directory (its layout, see
// internal/datadir, and its lock), the listeners, and the front ends that serve them (Kafka,
// AMQP, HTTP admin), and it orders their start and graceful shutdown. Front ends plug in
// through one open function each (openKafka, openAMQP, openHTTP), in a file named after the
// front end.
//
// Start-up either completes or fails whole: every listener is bound, then every front end is
// opened (catalog, AMQP topology, every log and queue store, read and validated), and only
// then does any of them serve. A failure at any step releases everything taken so far and
// Start returns the error; nothing was served, so nothing has to be stopped mid-flight.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/yardmq/yard/internal/datadir"
	"github.com/yardmq/yard/internal/listener"
	"github.com/yardmq/yard/internal/log"
	"github.com/yardmq/yard/internal/platform"
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
	// RetentionCheckInterval is how often time and size retention run on every log: Kafka
	// topics and AMQP stream queues alike (Kafka's log.retention.check.interval.ms).
	RetentionCheckInterval time.Duration
	// The log cleaner of compacted topics (cleanup.policy=compact): goroutines (Kafka's
	// log.cleaner.threads), pause between rounds (log.cleaner.backoff.ms) and the bytes per
	// second they read and write together (log.cleaner.io.max.bytes.per.second; 0: 64 MiB/s,
	// negative: unlimited).
	CleanerThreads          int
	CleanerBackoff          time.Duration
	CleanerIOBytesPerSecond int64
	Logger                  *slog.Logger
	// MaxOpenSegmentFiles bounds the log segment files open at once across every topic,
	// queue and offsets log (0: from the process's open-file limit, see segmentFileBound).
	MaxOpenSegmentFiles int
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
		// Kafka's default; stream queues are topics, so RabbitMQ streams get the same.
		RetentionCheckInterval:  5 * time.Minute,
		CleanerThreads:          1,
		CleanerBackoff:          15 * time.Second,
		CleanerIOBytesPerSecond: stream.DefaultCleanerIOBytesPerSecond,
		Kafka:                   DefaultKafkaConfig(),
		AMQP:                    DefaultAMQPConfig(),
	}
}

// Broker is one running yard server.
type Broker struct {
	cfg    Config
	log    *slog.Logger
	layout datadir.Layout
	data   *dataDir
	// files is the one segment-file cache of every log the broker opens.
	files *log.FileCache
	// conns lists the live connections of every protocol front end (for the admin plane).
	conns *listener.Registry

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
	if cfg.MaxOpenSegmentFiles < 0 {
		return nil, fmt.Errorf("cannot start broker: --max-open-segment-files %d is negative", cfg.MaxOpenSegmentFiles)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	layout := datadir.New(cfg.DataDir)
	dd, err := openDataDir(layout)
	if err != nil {
		return nil, err
	}
	files := log.NewFileCache(segmentFileBound(cfg.MaxOpenSegmentFiles))
	cfg.Logger.Debug("segment file cache", "max_open_files", files.MaxOpenFiles())
	return &Broker{cfg: cfg, log: cfg.Logger, layout: layout, data: dd, files: files, conns: listener.NewRegistry(),
		listeners: map[string]net.Listener{}}, nil
}

// frontEnd is a front end that is open (its storage loaded and validated) but not serving.
type frontEnd struct {
	// serve starts serving on ln and returns how to stop. It cannot fail: whatever could
	// fail was done when the front end was opened.
	serve func(ln net.Listener) (stop func(ctx context.Context) error)
	// abort releases what opening took, when the front end will not serve after all.
	abort func() error
}

// Connections lists the live Kafka and AMQP connections and closes them by id.
func (b *Broker) Connections() *listener.Registry { return b.conns }

// Start binds every enabled listener first (so a busy port fails fast, before any front end has
// touched the data), then opens every front end (the catalog, the AMQP topology and every log
// are loaded and validated), and only then lets them serve. If any step fails, everything
// taken so far is released and the error is returned: no front end has served.
func (b *Broker) Start() error {
	type front struct {
		name, addr string
		open       func() (*frontEnd, error)
	}
	fronts := []front{
		{"kafka", b.cfg.KafkaListen, b.openKafka},
		{"amqp", b.cfg.AMQPListen, b.openAMQP},
		{"http", b.cfg.HTTPListen, b.openHTTP},
	}
	bound := map[string]net.Listener{}
	closeBound := func() {
		for _, l := range bound {
			l.Close()
		}
	}
	for _, f := range fronts {
		if f.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", f.addr)
		if err != nil {
			closeBound()
			return fmt.Errorf("cannot listen for %s on %s: %w", f.name, f.addr, err)
		}
		bound[f.name] = ln
	}
	opened := map[string]*frontEnd{}
	var order []string
	for _, f := range fronts {
		if _, ok := bound[f.name]; !ok {
			continue
		}
		fe, err := f.open()
		if err != nil {
			errs := []error{fmt.Errorf("cannot start %s: %w", f.name, err)}
			for i := len(order) - 1; i >= 0; i-- {
				if aerr := opened[order[i]].abort(); aerr != nil {
					errs = append(errs, fmt.Errorf("cannot release %s: %w", order[i], aerr))
				}
			}
			closeBound()
			return errors.Join(errs...)
		}
		opened[f.name] = fe
		order = append(order, f.name)
	}
	for _, name := range order {
		ln := bound[name]
		stop := opened[name].serve(ln)
		b.mu.Lock()
		b.listeners[name] = ln
		b.stops = append(b.stops, namedStop{name, stop})
		b.mu.Unlock()
		b.log.Info("listening", "protocol", name, "addr", ln.Addr().String())
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

// segmentFileBound is the segment-file cache's bound: the configured one, else a quarter of
// the process's open-file limit (the rest is for connections, index flushes and everything
// else), between 64 and 65,536, and log.DefaultMaxOpenSegmentFiles where the limit is
// unknown (Windows).
func segmentFileBound(configured int) int {
	if configured > 0 {
		return configured
	}
	limit, err := platform.OpenFileLimit()
	if err != nil || limit == 0 {
		return log.DefaultMaxOpenSegmentFiles
	}
	return int(min(max(limit/4, 64), 65536))
}
