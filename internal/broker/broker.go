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

	"github.com/yardmq/yard/internal/amqp"
	"github.com/yardmq/yard/internal/auth"
	"github.com/yardmq/yard/internal/auth/acl"
	"github.com/yardmq/yard/internal/cluster"
	"github.com/yardmq/yard/internal/datadir"
	"github.com/yardmq/yard/internal/group"
	"github.com/yardmq/yard/internal/kafka"
	"github.com/yardmq/yard/internal/listener"
	"github.com/yardmq/yard/internal/log"
	"github.com/yardmq/yard/internal/platform"
	"github.com/yardmq/yard/internal/stream"
	"github.com/yardmq/yard/internal/tlsconf"
	"github.com/yardmq/yard/internal/txn"
	"github.com/yardmq/yard/internal/vhost"
)

// Config is everything `yard serve` can be told.
type Config struct {
	// raftLimits, if set, overrides the Raft host's snapshot and retention counts (tests).
	raftLimits *[3]uint64 // SnapshotEntries, CatchUpEntries, RetainEntries

	DataDir     string
	KafkaListen string // empty: Kafka listener disabled
	AMQPListen  string // empty: AMQP listener disabled
	HTTPListen  string // empty: HTTP listener disabled
	AMQPSListen string // AMQP over TLS (RabbitMQ's 5671); empty: disabled
	HTTPSListen string // the admin HTTP plane over TLS; empty: disabled
	HTTPPprof   bool   // serve Go's profiler under /debug/pprof/ on the HTTP listener
	// TLS names the certificate, key and client CA of every TLS listener (Kafka SSL and
	// SASL_SSL, AMQPS, HTTPS); reloaded by ReloadTLS (SIGHUP).
	TLS          tlsconf.Config
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
	// Peers, when set, makes this node a member of a cluster (cluster.go): every member,
	// this one included, as "1=host:port,2=host:port,3=host:port" (--peers); ClusterListen is
	// where this node accepts its peers' connections (--cluster-listen; empty: its own
	// address in Peers).
	Peers         string
	ClusterListen string
	// AdoptSingleNodeData lets this cluster member adopt a data directory a single node
	// wrote (--adopt-single-node-data, adopt.go): its topics, logs and offsets become the new
	// cluster's. Without it such a directory is refused.
	AdoptSingleNodeData bool
	// ClusterTLSCAFile, if set, secures the cluster transport with mutual TLS
	// (--cluster-tls-ca-file): this node presents TLS.CertFile/KeyFile, which must name it
	// with the URI SAN yard-node:<NodeID>, and verifies its peers' certificates against
	// this CA (internal/cluster/tls.go).
	ClusterTLSCAFile string
	// KafkaJournal makes appends to topic partitions durable through one node-wide journal
	// (internal/stream/journal.go, --kafka-journal): one fsync per group commit for every
	// partition instead of one per partition. Single node and SyncPolicy always only.
	KafkaJournal bool
	// Version is yard's version, reported by the admin API (/api/overview).
	Version string

	// AllowUnauthenticated lets listeners without authentication (Kafka PLAINTEXT) serve
	// clients from any address; otherwise they serve loopback clients only.
	AllowUnauthenticated bool

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
	// users is the user store of every protocol and the admin plane (users.json).
	users *auth.Store

	tls *tlsconf.Store // nil without TLS material
	// clusterTLS is the cluster transport's material: the node certificate and the cluster
	// CA (nil: plaintext cluster port).
	clusterTLS *tlsconf.Store

	mu        sync.Mutex              // guards listeners and stops
	listeners map[string]net.Listener // by listenerKey
	stops     []namedStop

	// Set by openKafka and openAMQP (nil while that front end is disabled) for the admin
	// plane, which Start opens after them.
	groups *group.Coordinator
	// txns is the transaction coordinator of a cluster node (nil on a single node).
	txns  *txn.Placed
	hosts *vhost.Hosts
	// metrics are fed by the hot paths (metrics.go), registered by openHTTP.
	metrics *brokerMetrics
	// alarms reports the AMQP front end's resource alarms; nil while it is disabled.
	alarms func() (memory, disk bool)
	// amqp is the AMQP front end, for the admin plane's channel listings; nil while disabled.
	amqp *amqp.Server

	// clusterLn is the bound cluster listener, from Start to openCluster; nil on a single node.
	clusterLn net.Listener
	raft      *cluster.Host   // the Raft host, from openCluster; nil on a single node
	quorum    *quorumCluster  // the replicated quorum queues, from openCluster; nil if none
	startCtx  context.Context // StartContext's
	// authz is the Kafka ACL authorizer (--kafka-authorizer acl), from openKafka; else nil.
	authz     *acl.Authorizer
	kafkaAddr net.Addr // the first Kafka listener's bound address, from Start

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
	if cfg.KafkaJournal && cfg.Peers != "" {
		return nil, errors.New("cannot start broker: --kafka-journal is for a single node; it cannot be used with --peers (replicated partitions are made durable by their Raft group)")
	}
	if cfg.KafkaJournal && cfg.SyncPolicy != log.SyncAlways {
		return nil, fmt.Errorf("cannot start broker: --kafka-journal needs --sync-policy always, not %s (it replaces the per-partition fsync that policy waits for)", cfg.SyncPolicy)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	var tlsStore *tlsconf.Store
	if cfg.TLS.Enabled() {
		var err error
		if tlsStore, err = tlsconf.Open(cfg.TLS); err != nil {
			return nil, fmt.Errorf("cannot start broker: %w", err)
		}
	}
	var clusterTLS *tlsconf.Store
	if cfg.ClusterTLSCAFile != "" {
		if cfg.Peers == "" {
			return nil, errors.New("cannot start broker: --cluster-tls-ca-file needs --peers")
		}
		var err error
		clusterTLS, err = tlsconf.Open(tlsconf.Config{CertFile: cfg.TLS.CertFile, KeyFile: cfg.TLS.KeyFile,
			ClientCAFile: cfg.ClusterTLSCAFile, ClientAuth: tlsconf.ClientAuthRequired})
		if err != nil {
			return nil, fmt.Errorf("cannot start broker: cluster TLS: %w", err)
		}
	}
	layout := datadir.New(cfg.DataDir)
	dd, err := openDataDir(layout)
	if err != nil {
		return nil, err
	}
	users, err := auth.Open(auth.Options{Path: layout.Users(), DefaultUser: cfg.AMQP.DefaultUser, DefaultPass: cfg.AMQP.DefaultPass,
		Logger: cfg.Logger.With("component", "auth")})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("cannot open the user store: %w", err), dd.close())
	}
	conns := listener.NewRegistry()
	users.Watch(func(e auth.Event) { closeRevoked(conns, e) })
	files := log.NewFileCache(segmentFileBound(cfg.MaxOpenSegmentFiles))
	cfg.Logger.Debug("segment file cache", "max_open_files", files.MaxOpenFiles())
	return &Broker{cfg: cfg, log: cfg.Logger, layout: layout, data: dd, files: files, conns: conns, tls: tlsStore, clusterTLS: clusterTLS,
		users: users, listeners: map[string]net.Listener{}, metrics: newBrokerMetrics()}, nil
}

// frontEnd is a front end that is open (its storage loaded and validated) but not serving.
type frontEnd struct {
	// serve starts serving on its bound listeners and returns how to stop. It cannot fail:
	// whatever could fail was done when the front end was opened.
	serve func(lns []boundListener) (stop func(ctx context.Context) error)
	// abort releases what opening took, when the front end will not serve after all.
	abort func() error
}

// closeRevoked closes the connections of a deleted user (every protocol) or of a deleted
// vhost (AMQP), as RabbitMQ does.
func closeRevoked(conns *listener.Registry, e auth.Event) {
	for _, c := range conns.List() {
		switch {
		case e.Kind == "user-deleted" && c.User == e.Name:
			_ = conns.Close(c.ID, "user '"+e.Name+"' was deleted")
		case e.Kind == "vhost-deleted" && c.Protocol == "amqp" && c.VHost == e.Name:
			_ = conns.Close(c.ID, "vhost '"+e.Name+"' is deleted")
		}
	}
}

// Users is the user store.
func (b *Broker) Users() *auth.Store { return b.users }

// Connections lists the live Kafka and AMQP connections and closes them by id.
func (b *Broker) Connections() *listener.Registry { return b.conns }

// listenSpec is one address a front end listens on.
type listenSpec struct {
	name string // the listener's name within its front end: "" for the plain one, "tls", or a Kafka listener name
	addr string
	tls  bool
}

// boundListener is a listenSpec bound.
type boundListener struct {
	listenSpec
	ln net.Listener
}

// listenerKey is how Addr names a listener: the front end, then ":" and the listener's name
// if it has one ("kafka", "kafka:SSL", "amqp:tls").
func listenerKey(front, name string) string {
	if name == "" {
		return front
	}
	return front + ":" + name
}

// listenSpecs is every listener of the configuration, by front end.
func (b *Broker) listenSpecs() (map[string][]listenSpec, error) {
	out := map[string][]listenSpec{}
	kls, err := kafka.ParseListeners(b.cfg.KafkaListen)
	if err != nil {
		return nil, err
	}
	for i, l := range kls {
		name := l.Name
		if i == 0 {
			name = "" // the first Kafka listener is also plain "kafka"
		}
		out["kafka"] = append(out["kafka"], listenSpec{name: name, addr: l.Addr, tls: l.Protocol.TLS()})
	}
	for _, p := range []struct{ front, plain, secure string }{
		{"amqp", b.cfg.AMQPListen, b.cfg.AMQPSListen},
		{"http", b.cfg.HTTPListen, b.cfg.HTTPSListen},
	} {
		if p.plain != "" {
			out[p.front] = append(out[p.front], listenSpec{addr: p.plain})
		}
		if p.secure != "" {
			out[p.front] = append(out[p.front], listenSpec{name: "tls", addr: p.secure, tls: true})
		}
	}
	if b.cfg.Peers != "" {
		addr, err := b.clusterListenAddr()
		if err != nil {
			return nil, err
		}
		out["cluster"] = []listenSpec{{addr: addr}}
	}
	needTLS := false
	for _, specs := range out {
		for _, sp := range specs {
			needTLS = needTLS || sp.tls
		}
	}
	if needTLS && b.tls == nil {
		return nil, errors.New("cannot start broker: a TLS listener needs --tls-cert-file and --tls-key-file")
	}
	return out, nil
}

// ReloadTLS reads the TLS certificate, key and client CA files again (SIGHUP): new
// handshakes use them, established connections are untouched. A failed reload keeps the
// previous material. Without TLS configured it does nothing.
func (b *Broker) ReloadTLS() error {
	var errs []error
	if b.tls != nil {
		errs = append(errs, b.tls.Reload())
	}
	if b.clusterTLS != nil {
		errs = append(errs, b.clusterTLS.Reload())
	}
	return errors.Join(errs...)
}

// Start binds every enabled listener first (so a busy port fails fast, before any front end has
// touched the data), then opens every front end (the catalog, the AMQP topology and every log
// are loaded and validated), and only then lets them serve. If any step fails, everything
// taken so far is released and the error is returned: no front end has served.
func (b *Broker) Start() error { return b.StartContext(context.Background()) }

// StartContext is Start whose waits end with ctx: a cluster member adopting a single node's
// data waits for a quorum of its peers (adopt.go) until ctx ends.
func (b *Broker) StartContext(ctx context.Context) error {
	b.startCtx = ctx
	type front struct {
		name string
		open func() (*frontEnd, error)
	}
	fronts := []front{
		{"kafka", b.openKafka},
		{"amqp", b.openAMQP},
		{"cluster", b.openCluster},
		{"http", b.openHTTP},
	}
	specs, err := b.listenSpecs()
	if err != nil {
		return err
	}
	bound := map[string][]boundListener{}
	closeBound := func() {
		for _, ls := range bound {
			for _, l := range ls {
				l.ln.Close()
			}
		}
	}
	for _, f := range fronts {
		for _, sp := range specs[f.name] {
			ln, err := net.Listen("tcp", sp.addr)
			if err != nil {
				closeBound()
				return fmt.Errorf("cannot listen for %s on %s: %w", listenerKey(f.name, sp.name), sp.addr, err)
			}
			bound[f.name] = append(bound[f.name], boundListener{sp, ln})
		}
	}
	if cl := bound["cluster"]; len(cl) > 0 {
		b.clusterLn = cl[0].ln
	}
	if kl := bound["kafka"]; len(kl) > 0 {
		b.kafkaAddr = kl[0].ln.Addr()
	}
	opened := map[string]*frontEnd{}
	var order []string
	for _, f := range fronts {
		if len(bound[f.name]) == 0 {
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
		lns := bound[name]
		stop := opened[name].serve(lns)
		b.mu.Lock()
		for _, l := range lns {
			b.listeners[listenerKey(name, l.name)] = l.ln
		}
		b.stops = append(b.stops, namedStop{name, stop})
		b.mu.Unlock()
		for _, l := range lns {
			b.log.Info("listening", "protocol", name, "listener", l.name, "tls", l.tls, "addr", l.ln.Addr().String())
		}
	}
	return nil
}

// Addr is the bound address of a listener, or nil if it is disabled: "kafka", "amqp",
// "http" (the first Kafka listener, the plain AMQP and HTTP ones), "kafka:SSL" (a Kafka
// listener by name), "amqp:tls", "http:tls".
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
