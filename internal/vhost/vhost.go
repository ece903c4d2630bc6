// Package vhost is yard's AMQP domain, independent of the wire: virtual hosts, each with its
// exchanges and bindings (a route.Topology) and its registry of queues (internal/queue); the
// durable topology saved in the catalog (internal/catalog) and restored at start; queue
// types (classic, quorum, stream) and the one list of the queue arguments yard knows, with
// their validation; dead-lettering; stream queues attached to the Kafka topics of
// internal/stream; and durable queue stores on disk (store.go: their layout, and their check
// against the topology at start).
//
// internal/amqp is its wire front end: it decodes methods, calls the domain and encodes what
// it answers. The domain never imports the front end. A refusal is an *Error whose Kind
// (ErrNotFound, ErrPrecondition, ...) the front end maps to its protocol's reply code; the
// AMQP message format the domain needs (field tables for arguments kept in the catalog, the
// properties that dead-lettering rewrites) comes from a Codec the front end supplies.
//
// Files: vhost.go (hosts and the queue registry), queuedecl.go (declaring and deleting
// queues), exchange.go (declaring, deleting and binding exchanges), publish.go (routing and
// delivering a published message, for every front end that publishes), args.go (known queue
// arguments), queuetype.go (classic, quorum, stream), stream.go (stream queues), topology.go
// (durable topology: save, restore), deadletter.go, store.go (queue stores on disk),
// errors.go (refusals).
package vhost

import (
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/yardmq/yard/internal/queue"
	"github.com/yardmq/yard/internal/route"
	"github.com/yardmq/yard/internal/stream"
)

// Codec is the AMQP message format the domain needs without owning it; the wire front end
// supplies it (amqp.Codec), so that the domain never imports the wire codec.
type Codec interface {
	// AppendTable appends t as a length-prefixed field table: the catalog keeps arguments
	// in that encoding.
	AppendTable(dst []byte, t map[string]any) []byte
	// DecodeTable decodes what AppendTable wrote.
	DecodeTable(b []byte) (map[string]any, error)
	// ParseMessage fills m's priority and per-message TTL from its properties.
	ParseMessage(m *queue.Message)
	// Headers returns the headers of encoded message properties (a map of the caller's, nil
	// if there are none; nested tables are map[string]any too) and their expiration property.
	Headers(props []byte) (headers map[string]any, expiration string, hasExpiration bool)
	// WithHeaders returns props with headers as their headers, without the expiration
	// property if dropExpiration.
	WithHeaders(props []byte, headers map[string]any, dropExpiration bool) []byte
	// AppendStreamRecord appends the one-record Kafka batch (timestamp tsMs) that a message
	// with these properties and body becomes in a stream queue (publish.go).
	AppendStreamRecord(dst []byte, tsMs int64, routingKey string, props, body []byte) []byte
}

// Config configures Hosts.
type Config struct {
	Names  []string // the virtual hosts; nil means {"/"}
	Logger *slog.Logger
	Codec  Codec // required
	// QueueStore opens the store behind a newly declared or restored queue; nil keeps every
	// queue in memory. Stores.Open is the durable one.
	QueueStore func(vhost, queue string, opts queue.Options) (queue.Store, error)
	// Topology saves durable exchanges, queues and bindings; nil keeps them in memory only.
	Topology TopologyStore
	// Streams is the topic manager the Kafka front end serves: stream queues are its topics.
	// nil refuses stream queues.
	Streams *stream.Manager
}

// Hosts is the set of virtual hosts: those of Config.Names, then Add and Delete.
type Hosts struct {
	cfg    Config
	log    *slog.Logger
	topoMu sync.Mutex // serialises topology snapshots and saves

	quorum QuorumCluster // nil on a single node (quorum.go)

	hostsMu sync.RWMutex // guards hosts
	hosts   map[string]*VHost
}

// VHost is one virtual host: its exchanges and bindings, and its queues.
type VHost struct {
	name  string
	topo  *route.Topology
	log   *slog.Logger
	hosts *Hosts

	mu     sync.RWMutex // guards queues
	queues map[string]*Queue
}

// Queue is a queue of a vhost and what a front end needs to know about it: the queue engine
// it embeds, and fields set when it is created that never change. Deleting a queue goes
// through its VHost (DeleteQueue, DeleteQueueIf), which also unregisters and unbinds it.
type Queue struct {
	*queue.Queue
	// Owner is the connection that declared an exclusive queue, nil for any other queue.
	// The domain compares it, nothing more.
	Owner any
	// Stream is the topic behind a stream queue (x-queue-type=stream), nil for others.
	Stream *Stream
	// Quorum marks x-queue-type=quorum: every message is kept as persistent (queuetype.go).
	Quorum bool
	// Replicated marks a quorum queue replicated through the cluster (quorum.go): the
	// cluster, not this node's topology file, keeps its declaration.
	Replicated bool
}

// New builds the virtual hosts of cfg, empty until Restore.
func New(cfg Config) *Hosts {
	if cfg.Codec == nil {
		panic("BUG: vhost.New without a Codec")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Names) == 0 {
		cfg.Names = []string{"/"}
	}
	h := &Hosts{cfg: cfg, log: cfg.Logger, hosts: map[string]*VHost{}}
	for _, name := range cfg.Names {
		h.hosts[name] = h.newVHost(name)
	}
	return h
}

func (h *Hosts) newVHost(name string) *VHost {
	return &VHost{name: name, topo: route.NewTopology(), log: h.cfg.Logger, hosts: h, queues: map[string]*Queue{}}
}

// Get returns the virtual host of that name, nil if there is none.
func (h *Hosts) Get(name string) *VHost {
	h.hostsMu.RLock()
	defer h.hostsMu.RUnlock()
	return h.hosts[name]
}

// list is a snapshot of the virtual hosts.
func (h *Hosts) list() []*VHost {
	h.hostsMu.RLock()
	defer h.hostsMu.RUnlock()
	vs := make([]*VHost, 0, len(h.hosts))
	for _, v := range h.hosts {
		vs = append(vs, v)
	}
	return vs
}

// Names lists the virtual hosts' names.
func (h *Hosts) Names() []string {
	var ns []string
	for _, v := range h.list() {
		ns = append(ns, v.name)
	}
	return ns
}

// Add creates an empty virtual host; false if it exists already.
func (h *Hosts) Add(name string) bool {
	h.hostsMu.Lock()
	defer h.hostsMu.Unlock()
	if _, ok := h.hosts[name]; ok {
		return false
	}
	h.hosts[name] = h.newVHost(name)
	return true
}

// Delete removes a virtual host with its exchanges, bindings and queues (their stored
// messages too); false if there is none. Connections open on it keep a VHost that is no
// longer listed: their front end should close them.
func (h *Hosts) Delete(name string) bool {
	h.hostsMu.Lock()
	v, ok := h.hosts[name]
	delete(h.hosts, name)
	h.hostsMu.Unlock()
	if !ok {
		return false
	}
	for _, q := range v.queueList() {
		v.deleteQueue(q, false, false)
	}
	if err := h.Save(); err != nil {
		h.log.Error("cannot save durable topology", "err", err)
	}
	return true
}

// Name is the virtual host's name.
func (v *VHost) Name() string { return v.name }

// Topology is the virtual host's exchanges and bindings. Changing them through it skips
// persistence: use the VHost's methods for that.
func (v *VHost) Topology() *route.Topology { return v.topo }

// Queue returns the queue of that name, nil if there is none.
func (v *VHost) Queue(name string) *Queue {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.queues[name]
}

// QueueCount is the number of queues in the vhost.
func (v *VHost) QueueCount() int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.queues)
}

// queueList returns a snapshot of the vhost's queues.
func (v *VHost) queueList() []*Queue {
	v.mu.RLock()
	defer v.mu.RUnlock()
	qs := make([]*Queue, 0, len(v.queues))
	for _, q := range v.queues {
		qs = append(qs, q)
	}
	return qs
}

// Close closes every queue's store at shutdown, keeping durable data. Call it once nothing
// uses the queues any more.
func (h *Hosts) Close() error {
	var first error
	for _, vh := range h.list() {
		for _, q := range vh.queueList() {
			if err := q.Close(); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

// Queues returns a snapshot of the vhost's queues sorted by name (for the admin plane).
func (v *VHost) Queues() []*Queue {
	qs := v.queueList()
	slices.SortFunc(qs, func(a, b *Queue) int { return strings.Compare(a.Name(), b.Name()) })
	return qs
}
