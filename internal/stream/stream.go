// Package stream is yard's event-streaming core: named topics split into partitions, each
// partition one internal/log.Log in <data-dir>/topics/<topic>-<partition>/ (internal/datadir
// lays the directory out), described durably by the catalog (internal/catalog). On the write path it keeps Kafka's promises: it validates
// what producers send as Kafka does (header, CRC-32C, max.message.bytes, and every record,
// decompressed within a bound), stamps the leader epoch and LogAppendTime, and tracks
// idempotent producers so that a retried batch is written once (see producer.go). Batches are
// stored as sent, never recompressed or rewritten.
//
// It owns reading a partition (read.go): front ends get file ranges for sendfile, decoded
// records (RecordReader, through internal/recordbatch), positions, change notification
// (Changes) and DeleteRecords, never the log itself. Node (node.go) is the one place that
// says which node this is and who leads each partition in which epoch. Front ends
// (internal/kafka, internal/amqp) translate protocol requests into calls here.
//
// Locking: Manager.adminMu serializes topic administration (create, delete, add partitions,
// config changes) so that the catalog and the open logs change together; Manager.mu guards
// the lookup maps for readers on the hot path; each Partition's mu serializes its appends
// (see Partition).
package stream

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/yardmq/yard/internal/catalog"
	"github.com/yardmq/yard/internal/datadir"
	"github.com/yardmq/yard/internal/log"
)

// Limits.
const (
	// MaxTopicNameLen is Kafka's limit (249, so that "<name>-<partition>" fits a file name).
	MaxTopicNameLen = 249
	// MaxPartitionsPerTopic bounds one CreateTopics/CreatePartitions request's cost (each
	// partition holds open files).
	MaxPartitionsPerTopic = 10000
	// producerIDBlockSize is how many producer IDs one durable catalog write reserves.
	producerIDBlockSize = 1000
	// defaultRetentionCheckInterval is Kafka's log.retention.check.interval.ms.
	defaultRetentionCheckInterval = 5 * time.Minute
	// defaultProducerStateWindow is how long an idle producer's state is kept (Kafka's
	// producer.id.expiration.ms default, one day).
	defaultProducerStateWindow = 24 * time.Hour
	// defaultProducerSnapshotInterval is how often changed partitions snapshot their producer
	// state, which bounds the log scan after a crash (snapshot.go).
	defaultProducerSnapshotInterval = time.Minute
)

// Errors of topic administration.
var (
	ErrUnknownTopic      = errors.New("unknown topic or partition")
	ErrTopicExists       = errors.New("topic already exists")
	ErrInvalidTopic      = errors.New("invalid topic name")
	ErrInvalidPartitions = errors.New("invalid number of partitions")
	// ErrInternalTopic refuses a client's write or record deletion on an internal topic.
	ErrInternalTopic = errors.New("internal topic")
	// ErrInternalTopicAdmin refuses deleting an internal topic or changing its partitions.
	ErrInternalTopicAdmin = errors.New("internal topics cannot be deleted or get new partitions")
)

// Config configures a Manager.
type Config struct {
	// Layout says where topics/ and producer-snapshots/ are; nothing else of it is used.
	Layout       datadir.Layout
	SyncPolicy   log.SyncPolicy
	SyncInterval time.Duration
	Logger       *slog.Logger
	// RetentionCheckInterval is how often time and size retention run (default 5 minutes).
	RetentionCheckInterval time.Duration
	// ProducerStateWindow: see defaultProducerStateWindow.
	ProducerStateWindow time.Duration
	// ProducerSnapshotInterval: see defaultProducerSnapshotInterval.
	ProducerSnapshotInterval time.Duration
	Now                      func() time.Time // nil = time.Now
	FS                       log.FS           // the partitions' file system; nil = the real one (tests inject faults)
	// FileCache bounds the segment files open at once across every partition (and the
	// broker's other logs); nil = each partition's log has its own.
	FileCache *log.FileCache
	// SyncObserver is told about every partition's group commits (metrics); nil = nobody.
	SyncObserver log.SyncObserver
	// TopicDeleted is called with a topic's name once DeleteTopic has removed it from the
	// catalog (metrics drop its series); nil = nobody.
	TopicDeleted func(name string)
	// NodeID is this broker's id, reported wherever a protocol names a broker (see Node).
	NodeID int32
	// JournalDir is the produce journal (journal.go), e.g. <data-dir>/kafka-journal. A
	// journal found there is always replayed at Open; Journal says whether appends to the
	// (non-internal) partitions go through it. It needs SyncPolicy always and a single node.
	JournalDir string
	Journal    bool
	// ReplicaCheckpointEntries: a replicated partition checkpoints how far its log holds its
	// Raft group's entries every this many applied entries (default 1,000; replica.go).
	ReplicaCheckpointEntries uint64
	// The log cleaner (cleaner.go): goroutines (default 1), time between rounds (default
	// 15s) and the bytes per second they read and write together (0: the default, 64 MiB/s;
	// negative: unlimited).
	CleanerThreads          int
	CleanerBackoff          time.Duration
	CleanerIOBytesPerSecond int64
}

// Manager owns every topic and partition of one data directory.
type Manager struct {
	cfg    Config
	log    *slog.Logger
	cat    *catalog.Catalog
	layout datadir.Layout

	adminMu sync.Mutex // serializes administration; held while the catalog and logs change

	mu     sync.RWMutex // guards topics and byID
	topics map[string]*Topic
	byID   map[catalog.UUID]*Topic

	pidMu   sync.Mutex // guards pidNext, pidEnd
	pidNext int64
	pidEnd  int64

	stop chan struct{}
	wg   sync.WaitGroup

	inflateBufs sync.Pool // *[]byte, scratch for the records of compressed produced batches

	cleaned cleanerCounters // cleaner.go

	repl        atomic.Pointer[CatalogReplicator] // replicate.go; nil on a single node
	hooks       atomic.Pointer[ReplicaHooks]      // replicate.go; nil on a single node
	clusterSize atomic.Int32                      // replicate.go; 0 on a single node
	nodes       atomic.Pointer[[]int32]           // placement.go; nil on a single node
	adopting    atomic.Bool                       // adopt.go: this node's topics await adoption
	foreign     atomic.Bool                       // adopt.go: a topic change was refused meanwhile
	leadMu      sync.Mutex                        // guards leaders
	leaders     map[leaderKey]Leadership          // leadership.go

	failOpen func(topic string, p int32) error // tests only: fails opening a partition

	journal *produceJournal // journal.go; nil without Config.Journal
}

// Open opens every topic in the catalog and starts the retention loop. It finishes the topic
// deletions a crash interrupted (tombstones, see DeleteTopic), keeps and logs partition
// directories the catalog does not know, and refuses to start when the catalog file is
// missing while topics/ holds partitions: that data is described by nothing else (topic IDs,
// configs such as retention, the producer-ID allocator), so it is neither guessed nor dropped.
func Open(cfg Config, cat *catalog.Catalog) (*Manager, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RetentionCheckInterval <= 0 {
		cfg.RetentionCheckInterval = defaultRetentionCheckInterval
	}
	if cfg.ReplicaCheckpointEntries == 0 {
		cfg.ReplicaCheckpointEntries = defaultReplicaCheckpointEntries
	}
	if cfg.ProducerStateWindow <= 0 {
		cfg.ProducerStateWindow = defaultProducerStateWindow
	}
	if cfg.ProducerSnapshotInterval <= 0 {
		cfg.ProducerSnapshotInterval = defaultProducerSnapshotInterval
	}
	if cfg.CleanerThreads <= 0 {
		cfg.CleanerThreads = defaultCleanerThreads
	}
	if cfg.CleanerBackoff <= 0 {
		cfg.CleanerBackoff = defaultCleanerBackoff
	}
	if cfg.CleanerIOBytesPerSecond == 0 {
		cfg.CleanerIOBytesPerSecond = DefaultCleanerIOBytesPerSecond
	}
	m := &Manager{
		cfg: cfg, log: cfg.Logger, cat: cat, layout: cfg.Layout,
		topics: map[string]*Topic{}, byID: map[catalog.UUID]*Topic{},
		stop: make(chan struct{}),
	}
	if cfg.Layout.Root() == "" {
		return nil, errors.New("BUG: stream.Open without a data directory layout")
	}
	if err := datadir.MkdirAll(m.layout.Topics()); err != nil {
		return nil, fmt.Errorf("cannot create topics dir: %w", err)
	}
	st := cat.Snapshot()
	if err := m.checkTopicsDir(st); err != nil {
		return nil, err
	}
	if cfg.Journal {
		if cfg.JournalDir == "" || cfg.SyncPolicy != log.SyncAlways {
			return nil, errors.New("BUG: stream.Open with the journal but without its directory or SyncAlways")
		}
		// Set before the partitions open: their logs take log.SyncJournal (Topic.logOptions).
		m.journal = &produceJournal{pending: map[*Partition]struct{}{}, flush: map[*Partition]struct{}{},
			kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	}
	replay := cfg.JournalDir != "" && (cfg.Journal || dirExists(cfg.FS, cfg.JournalDir))
	names := make([]string, 0, len(st.Topics))
	for n := range st.Topics {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t, err := m.openTopic(st.Topics[n], st.BrokerConfigs, !replay)
		if err != nil {
			m.closeAll()
			return nil, err
		}
		m.topics[n] = t
		m.byID[t.ID] = t
	}
	if replay {
		j, err := m.openJournal()
		if err == nil {
			err = m.rebuildAll()
		}
		if err != nil {
			if j != nil {
				j.Close()
			}
			m.closeAll()
			return nil, err
		}
		if m.journal != nil {
			m.journal.j = j
		} else if err := j.Close(); err != nil {
			m.closeAll()
			return nil, fmt.Errorf("cannot close the journal after replaying it: %w", err)
		}
	}
	if err := m.removeOrphanSnapshots(st); err != nil {
		m.closeJournal(false)
		m.closeAll()
		return nil, err
	}
	if m.journal != nil {
		go m.journal.follow()
		go m.flushLoop()
	}
	m.wg.Add(2)
	go m.retentionLoop()
	go m.cleanerLoop()
	return m, nil
}

// rebuildAll rebuilds the producer state of every partition (after a journal replay).
func (m *Manager) rebuildAll() error {
	for _, t := range m.topics {
		for _, p := range t.Partitions() {
			if err := p.rebuild(); err != nil {
				return err
			}
		}
	}
	return nil
}

// closeJournal closes the journal, if open; with release (every journaled partition closed,
// and so fsynced) it first drops what it can of it.
func (m *Manager) closeJournal(release bool) error {
	pj := m.journal
	if pj == nil || pj.j == nil {
		return nil
	}
	var err error
	if release {
		err = pj.j.Release(pj.j.End())
	}
	return errors.Join(err, pj.j.Close())
}

// dirExists reports whether dir exists in fsys (nil: the OS's).
func dirExists(fsys log.FS, dir string) bool {
	if fsys == nil {
		fsys = log.OSFS{}
	}
	_, err := fsys.Stat(dir)
	return err == nil
}

// partitionDir is where a partition's log lives.
func (m *Manager) partitionDir(topic string, p int32) string { return m.layout.Partition(topic, p) }

// knows reports whether the catalog state describes the partition directory called name.
func knows(st catalog.State, name string) bool {
	topic, p, ok := datadir.ParsePartitionName(name)
	if !ok {
		return false
	}
	t, ok := st.Topics[topic]
	return ok && p < t.Partitions
}

// checkTopicsDir is Open's look at topics/ before any log opens: it refuses a missing catalog
// in front of partition data, finishes (or, if the catalog was not changed, undoes) the
// deletions that tombstones mark, and logs the directories nothing describes, keeping them.
func (m *Manager) checkTopicsDir(st catalog.State) error {
	dir := m.layout.Topics()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("cannot list topics dir: %w", err)
	}
	if !m.cat.Existed() {
		var data []string
		for _, e := range entries {
			if !datadir.IsTombstone(e.Name()) && !datadir.IsMovedAside(e.Name()) {
				data = append(data, e.Name())
			}
		}
		if len(data) > 0 {
			return fmt.Errorf("cannot open topics: %s is missing but %s holds %d partition directories (%s, ...) "+
				"that only it describes (topic IDs, configs, producer IDs); restore the file from a backup, "+
				"or move %s away to start without those topics; nothing was deleted",
				m.layout.Catalog(), dir, len(data), data[0], dir)
		}
		// From now on the file exists, so that its absence always means it was lost.
		if err := m.cat.Update(func(*catalog.State) error { return nil }); err != nil {
			return fmt.Errorf("cannot create the catalog: %w", err)
		}
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case datadir.IsTombstone(name):
			if err := m.finishDeletion(st, name); err != nil {
				return err
			}
		case datadir.IsMovedAside(name):
		case !knows(st, name):
			m.log.Warn("keeping a partition directory the catalog does not describe; it is not served "+
				"(restore the catalog entry, or remove it by hand)", "dir", filepath.Join(dir, name))
		}
	}
	return nil
}

// finishDeletion deals with one tombstone <topic>-<partition>.<topic-id>.deleted left by a
// DeleteTopic that did not finish: if the catalog still has that topic (same ID) and the
// partition's directory is absent, the deletion never committed and the tombstone is renamed
// back; otherwise the deletion committed and the tombstone is removed.
func (m *Manager) finishDeletion(st catalog.State, name string) error {
	dir := m.layout.Topics()
	base, id := strings.TrimSuffix(name, datadir.DeletedSuffix), ""
	if i := strings.LastIndexByte(base, '.'); i > 0 { // topic names may hold '.'; IDs do not
		base, id = base[:i], base[i+1:]
	}
	topic, p, ok := datadir.ParsePartitionName(base)
	if ok {
		if t, known := st.Topics[topic]; known && t.ID.String() == id && p < t.Partitions {
			if _, err := os.Lstat(filepath.Join(dir, base)); os.IsNotExist(err) {
				m.log.Warn("restoring a partition whose deletion did not commit", "dir", filepath.Join(dir, base))
				return datadir.Untombstone(filepath.Join(dir, name), filepath.Join(dir, base))
			}
		}
	}
	m.log.Info("finishing an interrupted topic deletion", "dir", filepath.Join(dir, name))
	return datadir.RemoveTombstone(filepath.Join(dir, name))
}

func (m *Manager) openTopic(ct catalog.Topic, brokerCfg map[string]string, rebuild bool) (*Topic, error) {
	t := newTopic(m, ct)
	t.setConfig(ct.Configs, brokerCfg)
	parts, err := m.openPartitions(t, 0, ct.Partitions, rebuild)
	if err != nil {
		return nil, err
	}
	t.storeParts(parts)
	return t, nil
}

// newTopic is the Topic ct describes, without partitions yet.
func newTopic(m *Manager, ct catalog.Topic) *Topic {
	t := &Topic{Name: ct.Name, ID: ct.ID, Internal: ct.Internal, m: m}
	rs := replicaLists(ct.Replicas)
	t.replicas.Store(&rs)
	t.adopted.Store(ct.Adopted)
	return t
}

// openPartitions opens the partitions of [from, to) of t that this node holds (rebuild: see
// openPartition); the result is indexed from from, nil where this node is not a replica.
func (m *Manager) openPartitions(t *Topic, from, to int32, rebuild bool) ([]*Partition, error) {
	var parts []*Partition
	for i := from; i < to; i++ {
		if !hosts(t.placement(), m.cfg.NodeID, i) {
			parts = append(parts, nil)
			continue
		}
		p, err := openPartition(t, i, rebuild)
		if err != nil {
			for _, q := range parts {
				if q != nil {
					q.log.Close()
				}
			}
			return nil, err
		}
		parts = append(parts, p)
	}
	return parts, nil
}

// indexes are the partition numbers of parts, leaving out the nil ones.
func indexes(parts []*Partition) []int32 {
	var out []int32
	for _, p := range parts {
		if p != nil {
			out = append(out, p.Index)
		}
	}
	return out
}

// createPartitions creates partitions [from, to) of t, which the catalog already lists. A
// directory already under one of their names is described by nothing (the catalog did not
// list the partition until now), so it is moved aside rather than served as the new
// partition's content. If any partition fails, the ones created are removed again: a failed
// creation leaves no directories behind.
func (m *Manager) createPartitions(t *Topic, from, to int32) ([]*Partition, error) {
	for i := from; i < to; i++ {
		if !hosts(t.placement(), m.cfg.NodeID, i) {
			continue
		}
		dir := m.partitionDir(t.Name, i)
		if _, err := os.Lstat(dir); err == nil {
			moved, err := datadir.MoveAside(dir, m.cfg.Now())
			if err != nil {
				return nil, err
			}
			m.log.Warn("moved aside a partition directory the catalog did not describe, to create the partition anew", "dir", dir, "now", moved)
		}
	}
	parts, err := m.openPartitions(t, from, to, true)
	if err != nil {
		var held []int32
		for i := from; i < to; i++ {
			if hosts(t.placement(), m.cfg.NodeID, i) {
				held = append(held, i)
			}
		}
		if rerr := m.removePartitionDirs(t.Name, t.ID, held); rerr != nil {
			m.log.Error("cannot remove the directories of a failed partition creation", "topic", t.Name, "err", rerr)
		}
		return nil, err
	}
	return parts, nil
}

// removePartitionDirs deletes the directories of partitions held of a topic whose logs
// are closed: each is first renamed to a tombstone (datadir.Tombstone), then removed.
func (m *Manager) removePartitionDirs(topic string, id catalog.UUID, held []int32) error {
	tombs, err := m.tombstonePartitions(topic, id, held)
	for _, tomb := range tombs {
		err = errors.Join(err, datadir.RemoveTombstone(tomb))
	}
	return err
}

// tombstonePartitions renames the directories of partitions held to tombstones.
func (m *Manager) tombstonePartitions(topic string, id catalog.UUID, held []int32) ([]string, error) {
	var tombs []string
	for _, i := range held {
		tomb, err := datadir.Tombstone(m.partitionDir(topic, i), id.String())
		if err != nil {
			return tombs, err
		}
		tombs = append(tombs, tomb)
	}
	return tombs, nil
}

// ValidTopicName reports whether name is a legal Kafka topic name, and why not.
func ValidTopicName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: the empty string is not allowed", ErrInvalidTopic)
	case name == "." || name == "..":
		return fmt.Errorf("%w: %q is not allowed", ErrInvalidTopic, name)
	case len(name) > MaxTopicNameLen:
		return fmt.Errorf("%w: %q is longer than %d characters", ErrInvalidTopic, name, MaxTopicNameLen)
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %q contains a character other than ASCII alphanumerics, '.', '_' and '-'", ErrInvalidTopic, name)
		}
	}
	return nil
}

// Topic returns the named topic.
func (m *Manager) Topic(name string) (*Topic, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	t, ok := m.topics[name]
	return t, ok
}

// TopicByID returns the topic with the given ID.
func (m *Manager) TopicByID(id catalog.UUID) (*Topic, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	t, ok := m.byID[id]
	return t, ok
}

// Topics returns every topic, sorted by name.
func (m *Manager) Topics() []*Topic {
	m.mu.RLock()
	out := make([]*Topic, 0, len(m.topics))
	for _, t := range m.topics {
		out = append(out, t)
	}
	m.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// CreateTopic creates a topic with n partitions and the given topic-level configs. With
// validateOnly it only checks that it could.
func (m *Manager) CreateTopic(name string, n int32, configs map[string]string, validateOnly bool) (*Topic, error) {
	return m.createTopic(name, n, configs, validateOnly, false, Placement{ReplicationFactor: -1})
}

// CreatePlacedTopic is CreateTopic with the replicas asked for (placement.go); with an
// explicit assignment n is its length.
func (m *Manager) CreatePlacedTopic(name string, n int32, pl Placement, configs map[string]string, validateOnly bool) (*Topic, error) {
	return m.createTopic(name, n, configs, validateOnly, false, pl)
}

// EnsureInternalTopic returns the internal topic name, creating it with n partitions and
// configs if it does not exist. Its partition count is fixed once created: an existing topic
// is returned as it is (its count may differ from n). A topic of that name that a client
// created as an ordinary topic is refused: its records are not the broker's.
func (m *Manager) EnsureInternalTopic(name string, n int32, configs map[string]string) (*Topic, error) {
	if t, ok := m.Topic(name); ok {
		if !t.Internal {
			return nil, fmt.Errorf("cannot use %q as the internal topic: a client created an ordinary topic of that name; "+
				"delete it (its records are lost) with the yard that created it, or restore a backup", name)
		}
		return t, nil
	}
	// Internal topics stay on every node (no recorded placement).
	t, err := m.createTopic(name, n, configs, false, true, Placement{})
	if errors.Is(err, ErrTopicExists) {
		return m.EnsureInternalTopic(name, n, configs)
	}
	return t, err
}

func (m *Manager) createTopic(name string, n int32, configs map[string]string, validateOnly, internal bool, pl Placement) (*Topic, error) {
	if err := ValidTopicName(name); err != nil {
		return nil, err
	}
	if n < 1 || n > MaxPartitionsPerTopic {
		return nil, fmt.Errorf("%w: %d (must be 1..%d)", ErrInvalidPartitions, n, MaxPartitionsPerTopic)
	}
	configs, err := normalizeTopicConfigs(configs)
	if err != nil {
		return nil, err
	}
	m.adminMu.Lock()
	defer m.adminMu.Unlock()
	if _, ok := m.Topic(name); ok {
		return nil, fmt.Errorf("%w: %q", ErrTopicExists, name)
	}
	if err := checkTopicConfigs(configs, m.cat.Snapshot().BrokerConfigs); err != nil {
		return nil, err
	}
	var placed [][]int32
	if !internal {
		if placed, err = m.place(0, n, pl); err != nil {
			return nil, err
		}
	}
	if validateOnly {
		return nil, nil
	}
	if m.replicator() == nil {
		placed = nil // a single node holds every partition; nothing to record
	}
	ct := catalog.Topic{Name: name, ID: catalog.NewUUID(), Partitions: n, Configs: configs, CreatedMs: m.cfg.Now().UnixMilli(), Internal: internal, Replicas: placed}
	if r := m.replicator(); r != nil {
		m.adminMu.Unlock() // the command is applied, here too, under adminMu
		defer m.adminMu.Lock()
		if err := m.replicate(r, catalogCmd{Op: opCreateTopic, Topic: &ct}); err != nil {
			return nil, fmt.Errorf("cannot create topic %q: %w", name, err)
		}
		t, ok := m.Topic(name)
		if !ok {
			return nil, fmt.Errorf("cannot create topic %q: %w", name, ErrUnknownTopic)
		}
		return t, nil
	}
	return m.createTopicLocked(ct)
}

// createTopicLocked creates the topic ct describes: catalog entry, then partitions.
func (m *Manager) createTopicLocked(ct catalog.Topic) (*Topic, error) {
	name, n := ct.Name, ct.Partitions
	err := m.cat.Update(func(s *catalog.State) error {
		s.Topics[name] = ct
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cannot create topic %q: %w", name, err)
	}
	t := newTopic(m, ct)
	t.setConfig(ct.Configs, m.cat.Snapshot().BrokerConfigs)
	parts, err := m.createPartitions(t, 0, n)
	if err != nil {
		// The catalog says the topic exists; undo so that state and files agree. The
		// directories are gone already (createPartitions), so a crash here leaves a topic
		// that opens empty, never a directory nothing describes.
		if uerr := m.cat.Update(func(s *catalog.State) error { delete(s.Topics, name); return nil }); uerr != nil {
			m.log.Error("cannot undo a failed topic creation in the catalog", "topic", name, "err", uerr)
		}
		return nil, fmt.Errorf("cannot create topic %q: %w", name, err)
	}
	t.storeParts(parts)
	m.attachReplicas(t.Partitions())
	m.mu.Lock()
	m.topics[name] = t
	m.byID[t.ID] = t
	m.mu.Unlock()
	m.log.Info("topic created", "topic", name, "partitions", n, "id", t.ID.String())
	return t, nil
}

// DeleteTopic removes a topic and its data. The deletion leaves evidence before the catalog
// changes: every partition's log is closed and its directory renamed to a tombstone
// (<topic>-<partition>.<topic-id>.deleted); then the catalog drops the topic; then the
// tombstones are removed. A crash before the catalog write leaves tombstones that Open renames
// back (the topic still exists); a crash after it leaves tombstones that Open removes. On a
// cluster node the deletion is a command of the metadata group, which every node applies.
func (m *Manager) DeleteTopic(name string) error {
	if r := m.replicator(); r != nil {
		t, err := m.deletableTopic(name)
		if err != nil {
			return err
		}
		return m.replicate(r, catalogCmd{Op: opDeleteTopic, Name: name, ID: t.ID})
	}
	m.adminMu.Lock()
	defer m.adminMu.Unlock()
	t, err := m.deletableTopic(name)
	if err != nil {
		return err
	}
	return m.deleteTopicLocked(t)
}

// deletableTopic is topic name, if it exists and clients may delete it.
func (m *Manager) deletableTopic(name string) (*Topic, error) {
	t, ok := m.Topic(name)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownTopic, name)
	}
	if t.Internal {
		return nil, fmt.Errorf("cannot delete %q: %w", name, ErrInternalTopicAdmin)
	}
	return t, nil
}

// deleteTopicLocked deletes t (DeleteTopic), with adminMu held; on a cluster node its
// partitions leave their Raft groups first.
func (m *Manager) deleteTopicLocked(t *Topic) error {
	name := t.Name
	m.mu.Lock()
	delete(m.topics, name)
	delete(m.byID, t.ID)
	m.mu.Unlock()
	m.detachReplicas(t.Partitions())
	for _, p := range t.Partitions() {
		if err := p.log.Close(); err != nil && !errors.Is(err, log.ErrClosed) {
			m.log.Warn("closing a partition of a deleted topic", "topic", name, "partition", p.Index, "err", err)
		}
	}
	tombs, err := m.tombstonePartitions(name, t.ID, indexes(t.Partitions()))
	if err == nil {
		err = m.cat.Update(func(s *catalog.State) error {
			delete(s.Topics, name)
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("cannot delete topic %q: %w", name, errors.Join(err, m.undoDelete(t, tombs)))
	}
	if m.cfg.TopicDeleted != nil {
		m.cfg.TopicDeleted(name)
	}
	var errs []error
	for _, tomb := range tombs {
		if err := datadir.RemoveTombstone(tomb); err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range t.Partitions() {
		// The producer-state snapshot and, on a cluster node, the replica checkpoint are
		// named after the topic: a topic created again under the name must not find them.
		for _, f := range []string{m.snapshotPath(name, p.Index), p.checkpointPath()} {
			if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	m.log.Info("topic deleted", "topic", name)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cannot delete files of topic %q: %w", name, err)
	}
	return nil
}

// undoDelete puts back a topic whose deletion failed before the catalog changed: the
// tombstones get their names back and the partitions are opened again.
func (m *Manager) undoDelete(t *Topic, tombs []string) error {
	var errs []error
	held := indexes(t.Partitions())
	for i, tomb := range tombs {
		if err := datadir.Untombstone(tomb, m.partitionDir(t.Name, held[i])); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cannot restore the topic after a failed deletion (its tombstones are resolved at the next start): %w", err)
	}
	ct, ok := m.cat.Topic(t.Name)
	if !ok {
		return errors.New("BUG: topic left the catalog during a failed deletion")
	}
	nt, err := m.openTopic(ct, m.cat.Snapshot().BrokerConfigs, true)
	if err != nil {
		return fmt.Errorf("cannot reopen the topic after a failed deletion: %w", err)
	}
	m.mu.Lock()
	m.topics[nt.Name] = nt
	m.byID[nt.ID] = nt
	m.mu.Unlock()
	return nil
}

// CreatePartitions raises the partition count of a topic to total; on a cluster node through
// the metadata group, which every node applies.
func (m *Manager) CreatePartitions(name string, total int32, validateOnly bool) error {
	if r := m.replicator(); r != nil {
		t, err := m.growableTopic(name, total)
		if err != nil || validateOnly {
			return err
		}
		placed, err := m.placeNewPartitions(t, total)
		if err != nil {
			return err
		}
		return m.replicate(r, catalogCmd{Op: opCreatePartitions, Name: name, ID: t.ID, From: int64(t.NumPartitions()), Partitions: total, Replicas: placed})
	}
	m.adminMu.Lock()
	defer m.adminMu.Unlock()
	t, err := m.growableTopic(name, total)
	if err != nil || validateOnly {
		return err
	}
	return m.createPartitionsLocked(t, total, nil)
}

// growableTopic is topic name, if its partition count may be raised to total.
func (m *Manager) growableTopic(name string, total int32) (*Topic, error) {
	t, ok := m.Topic(name)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownTopic, name)
	}
	if t.Internal {
		return nil, fmt.Errorf("cannot add partitions to %q: %w: the number of partitions of the offsets topic cannot be changed", name, ErrInternalTopicAdmin)
	}
	if cur := t.NumPartitions(); total <= cur || total > MaxPartitionsPerTopic {
		return nil, fmt.Errorf("%w: topic %q has %d partitions, cannot change to %d (only increases up to %d)",
			ErrInvalidPartitions, name, cur, total, MaxPartitionsPerTopic)
	}
	return t, nil
}

// createPartitionsLocked raises t's partition count to total (CreatePartitions), with
// adminMu held; on a cluster node the new partitions join their Raft groups.
// placed are the new partitions' replicas, nil for a topic whose placement is not recorded
// (every node holds it).
func (m *Manager) createPartitionsLocked(t *Topic, total int32, placed [][]int32) error {
	name, cur := t.Name, t.NumPartitions()
	old := t.placement()
	if old == nil {
		placed = nil
	} else if int32(len(placed)) != total-cur {
		return fmt.Errorf("cannot add partitions to %q: %w: %d replica lists for %d new partitions", name, ErrInvalidReplicaAssignment, len(placed), total-cur)
	}
	err := m.cat.Update(func(s *catalog.State) error {
		ct := s.Topics[name]
		ct.Partitions = total
		if placed != nil {
			ct.Replicas = append(slices.Clone(ct.Replicas), placed...)
		}
		s.Topics[name] = ct
		return nil
	})
	if err != nil {
		return fmt.Errorf("cannot add partitions to %q: %w", name, err)
	}
	if placed != nil {
		next := append(slices.Clone(old), placed...)
		t.replicas.Store(&next)
	}
	added, err := m.createPartitions(t, cur, total)
	if err != nil {
		t.replicas.Store(&old)
		if uerr := m.cat.Update(func(s *catalog.State) error {
			ct := s.Topics[name]
			ct.Partitions = cur
			if placed != nil {
				ct.Replicas = ct.Replicas[:cur]
			}
			s.Topics[name] = ct
			return nil
		}); uerr != nil {
			m.log.Error("cannot undo a failed partition creation in the catalog", "topic", name, "err", uerr)
		}
		return fmt.Errorf("cannot add partitions to %q: %w", name, err)
	}
	m.attachReplicas(slices.DeleteFunc(slices.Clone(added), func(p *Partition) bool { return p == nil }))
	parts := slices.Clone(t.parts.Load().all)
	t.storeParts(append(parts, added...))
	return nil
}

// placeNewPartitions decides the replicas of t's partitions [cur, total): as many as its
// first partition has, nil if t's placement is not recorded.
func (m *Manager) placeNewPartitions(t *Topic, total int32) ([][]int32, error) {
	rs := t.placement()
	if rs == nil || len(rs) == 0 || rs[0] == nil {
		return nil, nil
	}
	cur := t.NumPartitions()
	return m.place(cur, total-cur, Placement{ReplicationFactor: int16(len(rs[0]))})
}

// AllocateProducerID returns a producer ID never handed out before, even across crashes:
// blocks of IDs are reserved durably in the catalog before use.
func (m *Manager) AllocateProducerID() (int64, error) {
	m.pidMu.Lock()
	defer m.pidMu.Unlock()
	if m.pidNext >= m.pidEnd && m.replicator() != nil {
		start, err := m.reserveProducerIDs(m.replicator())
		if err != nil {
			return -1, err
		}
		m.pidNext, m.pidEnd = start, start+producerIDBlockSize
	}
	if m.pidNext >= m.pidEnd {
		var start int64
		err := m.cat.Update(func(s *catalog.State) error {
			start = s.NextProducerID
			s.NextProducerID += producerIDBlockSize
			return nil
		})
		if err != nil {
			return -1, fmt.Errorf("cannot allocate producer id: %w", err)
		}
		m.pidNext, m.pidEnd = start, start+producerIDBlockSize
	}
	id := m.pidNext
	m.pidNext++
	return id, nil
}

// retentionLoop runs retention and producer-state snapshots on their intervals.
func (m *Manager) retentionLoop() {
	defer m.wg.Done()
	retention := time.NewTicker(m.cfg.RetentionCheckInterval)
	defer retention.Stop()
	snapshots := time.NewTicker(m.cfg.ProducerSnapshotInterval)
	defer snapshots.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-retention.C:
			m.EnforceRetention()
		case <-snapshots.C:
			m.writeSnapshots()
		}
	}
}

// EnforceRetention applies time and size retention to every partition now, and forgets idle
// producers (the retention loop calls it periodically).
func (m *Manager) EnforceRetention() {
	cutoff := m.cfg.Now().Add(-m.cfg.ProducerStateWindow).UnixMilli()
	for _, t := range m.Topics() {
		for _, p := range t.Partitions() {
			p.expireProducers(cutoff)
			if err := p.log.EnforceRetention(); err != nil && !errors.Is(err, log.ErrClosed) {
				m.log.Warn("retention failed", "topic", t.Name, "partition", p.Index, "err", err)
			}
		}
	}
}

// Close stops the retention loop, saves producer-state snapshots (snapshot.go) and closes every
// log (flush, fsync, clean shutdown mark). No append may run concurrently.
func (m *Manager) Close() error {
	close(m.stop)
	m.wg.Wait()
	if pj := m.journal; pj != nil {
		close(pj.stop)
		<-pj.done
	}
	m.writeSnapshots()
	err := m.closeAll()
	// If a partition did not close cleanly, the journal keeps its entries for the next start.
	return errors.Join(err, m.closeJournal(err == nil))
}

func (m *Manager) closeAll() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for _, t := range m.topics {
		for _, p := range t.Partitions() {
			if err := p.log.Close(); err != nil {
				errs = append(errs, fmt.Errorf("cannot close %s-%d: %w", t.Name, p.Index, err))
			}
		}
	}
	return errors.Join(errs...)
}
