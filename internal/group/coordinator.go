// Package group is yard's consumer-group coordinator and committed-offset store.
//
// Model: a Coordinator owns a map of groups and one offsetStore. Each group's membership
// state (members, generation, leader, assignments, timers) is owned by exactly one goroutine
// (group.run), fed by a bounded channel of closures; a request that must wait for a rebalance
// (JoinGroup, SyncGroup) hands over a reply channel that the goroutine answers later. So a
// rebalance storm in one group only fills that group's channel and never stalls another.
// The classic protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) lives in classic.go,
// KIP-848 consumer groups (ConsumerGroupHeartbeat) in consumer.go.
//
// Committed offsets are not group state: they live in offsetStore (offsets.go), in-memory maps
// backed by the partitions of the internal topic __consumer_offsets, in Kafka's own record
// schemas (records.go), replayed on open, so that an acknowledged OffsetCommit survives a
// crash and tools that read the topic understand it. Classic groups also record each
// completed generation there (GroupMetadata), as Kafka does. Committing validates the member against its
// group's goroutine, then appends and waits for durability on the caller's goroutine, so
// commits of many groups share fsyncs.
//
// Group membership is not persisted: after a restart, members rejoin (their old member ids
// get UNKNOWN_MEMBER_ID) and groups known only by their offsets are reported Empty.
package group

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/yardmq/yard/internal/log"
	"github.com/yardmq/yard/internal/ratelog"
)

// Defaults, Kafka's where it has one.
const (
	DefaultOffsetsRetention              = 7 * 24 * time.Hour // offsets.retention.minutes
	DefaultOffsetsRetentionCheckInterval = 10 * time.Minute   // offsets.retention.check.interval.ms
	DefaultMinSessionTimeout             = 6 * time.Second    // group.min.session.timeout.ms
	DefaultMaxSessionTimeout             = 30 * time.Minute   // group.max.session.timeout.ms
	DefaultInitialRebalanceDelay         = 3 * time.Second    // group.initial.rebalance.delay.ms
	DefaultMaxMetadataBytes              = 4096               // offset.metadata.max.bytes
	DefaultGroupQueueLen                 = 256
	DefaultConsumerSessionTimeout        = 45 * time.Second // group.consumer.session.timeout.ms
	DefaultConsumerHeartbeatInterval     = 5 * time.Second  // group.consumer.heartbeat.interval.ms
)

// The internal topic of committed offsets and group metadata, as Kafka names and configures
// it (offsets.topic.num.partitions, offsets.topic.segment.bytes; compacted; the coordinator
// writes its records uncompressed, offsets.topic.compression.codec none).
const (
	OffsetsTopic                  = "__consumer_offsets"
	DefaultOffsetsTopicPartitions = 50
)

// OffsetsTopicConfigs are the topic configs __consumer_offsets is created with.
func OffsetsTopicConfigs() map[string]string {
	return map[string]string{
		"cleanup.policy":   "compact",
		"compression.type": "producer",
		"segment.bytes":    "104857600",
	}
}

// Topics is what the coordinator needs from the stream layer.
type Topics interface {
	// Partitions returns the number of partitions of topic, false if it does not exist.
	Partitions(topic string) (int32, bool)
	// EndOffset returns the log-end offset readers see (the high watermark), false if the
	// partition does not exist.
	EndOffset(topic string, partition int32) (int64, bool)
	// Names lists every topic (for KIP-848 regular-expression subscriptions).
	Names() []string
}

// Config configures a Coordinator.
type Config struct {
	// OffsetsPartitions are the partitions of __consumer_offsets, in order; group g's records
	// are in OffsetsPartitions[PartitionFor(g, len)]. Their number must not change once
	// records are written (Kafka's offsets.topic.num.partitions is fixed likewise).
	OffsetsPartitions []OffsetsPartition
	// ClusterPartitions > 0 makes this a cluster node's coordinator (placement.go): the
	// replicated __consumer_offsets has this many partitions, handed over one by one as this
	// node becomes their leader (SetLeader); OffsetsPartitions, LegacyOffsetsDir and
	// JournalDir are unused.
	ClusterPartitions int32
	// LegacyOffsetsDir is the one-partition offsets log of earlier versions
	// (<data-dir>/__consumer_offsets); if it exists, Open migrates it (legacy.go). "" = none.
	LegacyOffsetsDir string
	// JournalDir is the offsets journal (journal.go), e.g. <data-dir>/offsets-journal: one
	// fsync for commits to many partitions. "" = none: commits wait for their partition.
	JournalDir string
	SyncPolicy log.SyncPolicy // of the journal (and of the legacy log, read once)
	FS         log.FS         // of the journal and the legacy log; nil = the OS file system
	Topics     Topics
	Logger     *slog.Logger
	Now        func() time.Time // nil = time.Now

	OffsetsRetention              time.Duration // offsets of an empty group expire after this
	OffsetsRetentionCheckInterval time.Duration
	MinSessionTimeout             time.Duration
	MaxSessionTimeout             time.Duration
	// InitialRebalanceDelay: the first rebalance of an empty group waits this long (extended
	// by each member that joins meanwhile, up to the rebalance timeout), so that consumers
	// starting together are assigned in one generation. Negative = no delay.
	InitialRebalanceDelay time.Duration
	MaxMetadataBytes      int
	GroupQueueLen         int // bound of each group's request channel

	// KIP-848 consumer groups.
	ConsumerSessionTimeout    time.Duration
	ConsumerHeartbeatInterval time.Duration
}

func (cfg *Config) fill() {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.OffsetsRetention, DefaultOffsetsRetention)
	def(&cfg.OffsetsRetentionCheckInterval, DefaultOffsetsRetentionCheckInterval)
	def(&cfg.MinSessionTimeout, DefaultMinSessionTimeout)
	def(&cfg.MaxSessionTimeout, DefaultMaxSessionTimeout)
	def(&cfg.InitialRebalanceDelay, DefaultInitialRebalanceDelay)
	def(&cfg.ConsumerSessionTimeout, DefaultConsumerSessionTimeout)
	def(&cfg.ConsumerHeartbeatInterval, DefaultConsumerHeartbeatInterval)
	if cfg.InitialRebalanceDelay < 0 {
		cfg.InitialRebalanceDelay = 0
	}
	if cfg.MaxMetadataBytes <= 0 {
		cfg.MaxMetadataBytes = DefaultMaxMetadataBytes
	}
	if cfg.GroupQueueLen <= 0 {
		cfg.GroupQueueLen = DefaultGroupQueueLen
	}
}

// Coordinator is the group coordinator of this node: of every group on a single node, of the
// groups of the __consumer_offsets partitions it leads on a cluster node (placement.go).
type Coordinator struct {
	cfg     Config
	log     *slog.Logger
	rl      *ratelog.Limiter // for lines a client can repeat per request (a failed commit)
	offsets *offsetStore

	mu     sync.Mutex // guards groups and closed
	groups map[string]*group
	closed bool

	stop      chan struct{}
	wg        sync.WaitGroup
	flushDone chan struct{} // closed when the journal's flush loop has ended (nil: no journal)
	// topicWanted: a client looked for a coordinator before a cluster's __consumer_offsets
	// existed (placement.go).
	topicWanted chan struct{}
}

// Open replays the offsets log and starts the expiry loop.
func Open(cfg Config) (*Coordinator, error) {
	cfg.fill()
	if cfg.Topics == nil {
		return nil, fmt.Errorf("cannot open group coordinator: no Topics")
	}
	if cfg.ClusterPartitions > 0 {
		return openClustered(cfg)
	}
	st, err := newOffsetStore(cfg.OffsetsPartitions, cfg.Now, cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("cannot open group coordinator: %w", err)
	}
	fail := func(err error) (*Coordinator, error) {
		if st.journal != nil {
			st.journal.log.Close()
		}
		return nil, fmt.Errorf("cannot open group coordinator: %w", err)
	}
	if cfg.JournalDir != "" {
		if st.journal, err = openJournal(cfg.JournalDir, log.Options{SyncPolicy: cfg.SyncPolicy, FS: cfg.FS}); err != nil {
			return fail(err)
		}
		for _, sh := range st.shards {
			sh.j = st.journal
		}
		if err := st.recoverJournal(); err != nil {
			return fail(err)
		}
	}
	if err := st.migrateLegacy(cfg.LegacyOffsetsDir, log.Options{SyncPolicy: cfg.SyncPolicy, FS: cfg.FS}); err != nil {
		return fail(err)
	}
	if err := st.replay(); err != nil {
		return fail(err)
	}
	c := newCoordinator(cfg, st)
	c.restoreGroups(st.groupNames(), func(g *group) bool { return c.adopt(g, 0) })
	c.wg.Add(1)
	go c.maintenanceLoop()
	if st.journal != nil {
		c.flushDone = make(chan struct{})
		go func() {
			defer close(c.flushDone)
			st.flushLoop(c.stop, c.log)
		}()
	}
	return c, nil
}

func newCoordinator(cfg Config, st *offsetStore) *Coordinator {
	return &Coordinator{cfg: cfg, log: cfg.Logger, rl: ratelog.New(cfg.Logger, 0), offsets: st, groups: map[string]*group{}, stop: make(chan struct{}),
		topicWanted: make(chan struct{}, 1)}
}

// openClustered opens a cluster node's coordinator: no partition is this node's yet.
func openClustered(cfg Config) (*Coordinator, error) {
	st, err := newOffsetStore(make([]OffsetsPartition, cfg.ClusterPartitions), cfg.Now, cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("cannot open group coordinator: %w", err)
	}
	c := newCoordinator(cfg, st)
	for _, sh := range st.shards {
		sh.cluster, sh.lost = true, c.lost
	}
	c.wg.Add(1)
	go c.maintenanceLoop()
	return c, nil
}

// Close stops every group goroutine. The partitions of __consumer_offsets are their owner's
// to close.
func (c *Coordinator) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.stop)
	c.mu.Unlock()
	c.wg.Wait()
	if c.offsets.journal == nil {
		return nil
	}
	<-c.flushDone // its last flush made the partitions durable
	if err := c.offsets.journal.log.Close(); err != nil {
		return fmt.Errorf("cannot close offsets journal: %w", err)
	}
	return nil
}

func (c *Coordinator) now() time.Time { return c.cfg.Now() }

// lookup returns the group's owner, creating it when create is set.
func (c *Coordinator) lookup(id string, create bool) (*group, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrCoordinatorNotAvailable
	}
	if err := c.offsets.shard(id).ownerErr(); err != nil { // a cluster node's (placement.go)
		return nil, err
	}
	g := c.groups[id]
	if g == nil && create {
		g = newGroup(c, id)
		c.groups[id] = g
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			g.run()
		}()
	}
	return g, nil
}

// forget removes g from the map (called by g's goroutine when it dies).
func (c *Coordinator) forget(g *group) {
	c.mu.Lock()
	if c.groups[g.id] == g {
		delete(c.groups, g.id)
	}
	c.mu.Unlock()
}

func (c *Coordinator) groupList() []*group {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*group, 0, len(c.groups))
	for _, g := range c.groups {
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// call runs f on g's goroutine and returns its result.
func call[T any](ctx context.Context, g *group, f func() T) (T, error) {
	ch := make(chan T, 1)
	var zero T
	if err := g.submit(ctx, func() { ch <- f() }); err != nil {
		return zero, err
	}
	select {
	case v := <-ch:
		return v, nil
	case <-g.done:
		select {
		case v := <-ch:
			return v, nil
		default:
			return zero, ErrCoordinatorNotAvailable
		}
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// await waits for an asynchronous answer of g's goroutine.
func await[T any](ctx context.Context, g *group, ch <-chan T, dead T) T {
	select {
	case v := <-ch:
		return v
	case <-g.done:
		select {
		case v := <-ch:
			return v
		default:
			return dead
		}
	case <-ctx.Done():
		return dead
	}
}

func (c *Coordinator) checkSessionTimeout(d time.Duration) error {
	if d < c.cfg.MinSessionTimeout || d > c.cfg.MaxSessionTimeout {
		return fmt.Errorf("%w: %v is outside [group.min.session.timeout.ms %v, group.max.session.timeout.ms %v]",
			ErrInvalidSessionTimeout, d, c.cfg.MinSessionTimeout, c.cfg.MaxSessionTimeout)
	}
	return nil
}

// Join starts a classic JoinGroup and returns a function that waits for its answer (the
// rebalance may take up to the rebalance timeout).
func (c *Coordinator) Join(ctx context.Context, req JoinRequest) func(context.Context) JoinResult {
	fail := func(err error) func(context.Context) JoinResult {
		return func(context.Context) JoinResult { return JoinResult{Err: err, MemberID: req.MemberID, Generation: -1} }
	}
	if req.Group == "" {
		return fail(ErrInvalidGroupID)
	}
	if err := c.checkSessionTimeout(req.SessionTimeout); err != nil {
		return fail(err)
	}
	if req.RebalanceTimeout <= 0 {
		req.RebalanceTimeout = req.SessionTimeout
	}
	g, err := c.lookup(req.Group, true)
	if err != nil {
		return fail(err)
	}
	ch := make(chan JoinResult, 1)
	if err := g.submit(ctx, func() { g.join(req, ch) }); err != nil {
		return fail(err)
	}
	return func(ctx context.Context) JoinResult {
		return await(ctx, g, ch, JoinResult{Err: ErrCoordinatorNotAvailable, MemberID: req.MemberID, Generation: -1})
	}
}

// Sync starts a classic SyncGroup and returns a function that waits for its answer.
func (c *Coordinator) Sync(ctx context.Context, req SyncRequest) func(context.Context) SyncResult {
	fail := func(err error) func(context.Context) SyncResult {
		return func(context.Context) SyncResult { return SyncResult{Err: err} }
	}
	g, err := c.lookup(req.Group, false)
	if err != nil {
		return fail(err)
	}
	if g == nil {
		return fail(ErrUnknownMemberID)
	}
	ch := make(chan SyncResult, 1)
	if err := g.submit(ctx, func() { g.sync(req, ch) }); err != nil {
		return fail(err)
	}
	return func(ctx context.Context) SyncResult {
		return await(ctx, g, ch, SyncResult{Err: ErrCoordinatorNotAvailable})
	}
}

// Heartbeat is a classic Heartbeat.
func (c *Coordinator) Heartbeat(ctx context.Context, req HeartbeatRequest) error {
	g, err := c.lookup(req.Group, false)
	if err != nil {
		return err
	}
	if g == nil {
		return ErrUnknownMemberID
	}
	res, err := call(ctx, g, func() error { return g.heartbeat(req) })
	if err != nil {
		return err
	}
	return res
}

// Leave removes members (LeaveGroup); the result has one error (or nil) per member.
func (c *Coordinator) Leave(ctx context.Context, groupID string, members []LeaveMember) ([]error, error) {
	g, err := c.lookup(groupID, false)
	if err != nil {
		return nil, err
	}
	if g == nil {
		return nil, ErrUnknownMemberID
	}
	return call(ctx, g, func() []error { return g.leave(members) })
}

// newMemberID is "<client id>-<random uuid>", as Kafka makes them.
func newMemberID(clientID string) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("BUG: crypto/rand failed: " + err.Error())
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return clientID + "-" + h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
