package txn

// Coordinator placement on a cluster node, as Kafka places it: __transaction_state is a
// replicated internal topic (one Raft group per partition, every node a voter; created through
// the metadata group when a client first looks for a transaction coordinator), and the
// coordinator of transactional ID T is the leader of partition abs(javaHashCode(T)) % n. A
// Placed serves a node: one Coordinator per partition this node leads, whose state log is
// that partition (statepart.go); requests for the IDs of other partitions get
// ErrNotCoordinator (clients find the coordinator again and go there).
//
// The broker tells Placed which partitions this node leads (SetLeader). On becoming leader
// of a partition it waits until every entry an earlier leader committed is applied here (the
// barrier, as the group coordinator does), then opens a Coordinator over the partition: the
// state is replayed, and transactions found preparing a commit or an abort are completed by
// this node (their markers written again: harmless where they were), ongoing ones abort when
// they time out, as after a single node's restart. Requests for its IDs get
// ErrCoordinatorLoadInProgress meanwhile. Every state write is a Raft entry of the partition
// that applies only in the term the coordinator loaded in, so a deposed coordinator cannot
// change the state its successor read; a write that fails unloads the partition, and the next
// SetLeader loads it again from the log. The coordinator epoch in markers is that term.
//
// Transaction version 1 only (ApiVersions finalizes transaction.version 1 on a cluster node):
// under version 2 a partition's leader would add partitions to the transaction itself,
// which would take a request from it to the coordinator's node. A transactional Produce is
// checked against the transaction when this node coordinates the producer's transactional ID
// and accepted otherwise (as Kafka did before KIP-890), producer epochs fencing zombies on
// the partition. TxnOffsetCommit goes to the group's coordinator, which writes the offsets to
// its partition of the replicated __consumer_offsets as the producer's transactional records
// (as Kafka); the transaction's end writes its marker there too (MarkerOffsets), and the
// group coordinator applies it when its partition applies it.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/yardmq/yard/internal/group"
	"github.com/yardmq/yard/internal/stream"
)

// StateTopic is the replicated topic of a cluster's transaction state.
const StateTopic = "__transaction_state"

// DefaultStatePartitions is Kafka's transaction.state.log.num.partitions.
const DefaultStatePartitions = 50

// StateTopicConfigs are the configs of StateTopic, as Kafka creates it: compacted (the last
// record of an ID is its state).
func StateTopicConfigs() map[string]string {
	return map[string]string{"cleanup.policy": "compact", "compression.type": "producer", "segment.bytes": "104857600"}
}

var (
	// ErrNotCoordinator: this node does not coordinate the transactional ID (NOT_COORDINATOR).
	ErrNotCoordinator = errors.New("this node is not the transactional ID's coordinator")
	// ErrCoordinatorLoadInProgress: this node is loading the ID's partition
	// (COORDINATOR_LOAD_IN_PROGRESS).
	ErrCoordinatorLoadInProgress = errors.New("transaction coordinator load in progress")
	// ErrOffsetsNotReplicated refuses AddOffsetsToTxn on a cluster node.
	ErrOffsetsNotReplicated = fmt.Errorf("transactional offset commits on a cluster: %w", stream.ErrNotReplicated)
)

// Service is what the Kafka front end needs of transactions: a *Coordinator on a single
// node, a *Placed on a cluster node.
type Service interface {
	InitProducerID(id string, timeoutMs int32, reqPID int64, reqEpoch int16) (int64, int16, error)
	AddPartitions(id string, pid int64, epoch int16, tps []TopicPartition, verifyOnly bool) (map[TopicPartition]error, error)
	AddOffsets(id string, pid int64, epoch int16, group string) error
	CommitOffsets(id string, pid int64, epoch int16, group string, offsets map[TopicPartition]Offset, v2 bool) (map[TopicPartition]error, error)
	End(id string, pid int64, epoch int16, commit, v2 bool) (int64, int16, error)
	Produce(pid int64, epoch int16, tp TopicPartition, v2 bool, appendFn func() error) error
	PendingOffsets(group string) map[TopicPartition]bool
	Describe(id string) (Description, error)
	List(states []State, pids []int64, minDurationMs int64) []Description
	TransactionVersion() int16
}

var (
	_ Service = (*Coordinator)(nil)
	_ Service = (*Placed)(nil)
)

const (
	shardUnowned int32 = iota
	shardLoading
	shardLoaded
)

// placedShard is one partition of __transaction_state as this node sees it.
type placedShard struct {
	state atomic.Int32
	mu    sync.Mutex
	epoch uint64       // bumped by every load and unload
	c     *Coordinator // loaded
}

// Placed is the transaction coordinator of a cluster node (see the top of this file).
type Placed struct {
	cfg    Config // each partition's Coordinator's, but Dir, CoordinatorEpoch
	log    *slog.Logger
	shards []*placedShard
	wanted chan struct{}

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
	stop   chan struct{}
}

// NewPlaced returns the coordinator of a cluster node over n partitions of StateTopic
// (the same n on every node).
func NewPlaced(cfg Config, n int32) (*Placed, error) {
	if n < 1 {
		return nil, fmt.Errorf("cannot start transaction coordinator: %d partitions of %s", n, StateTopic)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.TransactionVersion > 1 {
		cfg.TransactionVersion = 1
	}
	pl := &Placed{cfg: cfg, log: cfg.Logger, wanted: make(chan struct{}, 1), stop: make(chan struct{})}
	for range n {
		pl.shards = append(pl.shards, &placedShard{})
	}
	return pl, nil
}

// PartitionFor is the partition of StateTopic that holds id's state.
func (pl *Placed) PartitionFor(id string) int32 { return group.PartitionFor(id, int32(len(pl.shards))) }

// Partitions is the partition count of StateTopic this node expects.
func (pl *Placed) Partitions() int32 { return int32(len(pl.shards)) }

// WantStateTopic records that a client looked for a transaction coordinator while StateTopic
// does not exist yet (StateTopicWanted tells the broker, which creates it).
func (pl *Placed) WantStateTopic() {
	select {
	case pl.wanted <- struct{}{}:
	default:
	}
}

// StateTopicWanted receives once WantStateTopic was called.
func (pl *Placed) StateTopicWanted() <-chan struct{} { return pl.wanted }

// SetLeader tells Placed whether this node leads partition part of StateTopic (p, its
// partition on this node; term, the partition's current term). Called repeatedly by the
// broker; it acts on changes only.
func (pl *Placed) SetLeader(part int32, leader bool, p *stream.Partition, term func() uint64) {
	if part < 0 || int(part) >= len(pl.shards) {
		return
	}
	sh := pl.shards[part]
	if owned := sh.state.Load() != shardUnowned; owned == leader {
		return
	}
	if !leader {
		pl.unload(part, 0)
		return
	}
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.closed {
		return
	}
	sh.mu.Lock()
	if sh.state.Load() != shardUnowned {
		sh.mu.Unlock()
		return
	}
	sh.state.Store(shardLoading)
	sh.epoch++
	epoch := sh.epoch
	sh.mu.Unlock()
	pl.wg.Add(1)
	go func() {
		defer pl.wg.Done()
		pl.load(part, epoch, p, term)
	}()
}

// load waits for the barrier, then opens the partition's coordinator (see the top).
func (pl *Placed) load(part int32, epoch uint64, p *stream.Partition, term func() uint64) {
	sh := pl.shards[part]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-pl.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	start := time.Now()
	var t uint64
	for {
		if !pl.current(sh, epoch, shardLoading) {
			return
		}
		bctx, bcancel := context.WithTimeout(ctx, 10*time.Second)
		var err error
		t, err = p.ReplicaBarrier(bctx)
		bcancel()
		if err == nil && t == term() && t > 0 {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	cfg := pl.cfg
	cfg.CoordinatorEpoch = int32(t)
	cfg.Logger = pl.log.With("partition", part)
	store := &partitionStore{p: p, term: t, now: time.Now, lost: func() {
		go pl.unload(part, epoch)
	}}
	if cfg.Now != nil {
		store.now = cfg.Now
	}
	c, err := openStore(cfg, store)
	if err != nil {
		pl.log.Error("cannot load a transaction state partition; not coordinating its transactional IDs", "partition", part, "err", err)
		pl.unload(part, epoch)
		return
	}
	sh.mu.Lock()
	if sh.epoch != epoch || sh.state.Load() != shardLoading {
		sh.mu.Unlock()
		c.Close()
		return
	}
	sh.c = c
	sh.state.Store(shardLoaded)
	sh.mu.Unlock()
	pl.log.Info("coordinating the transactional IDs of a transaction state partition", "partition", part, "term", t,
		"took", time.Since(start).Round(time.Millisecond))
}

func (pl *Placed) current(sh *placedShard, epoch uint64, state int32) bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.epoch == epoch && sh.state.Load() == state
}

// unload makes partition part no longer this node's. epoch 0 unloads whatever is loaded or
// loading; another only that load.
func (pl *Placed) unload(part int32, epoch uint64) {
	sh := pl.shards[part]
	sh.mu.Lock()
	if sh.state.Load() == shardUnowned || (epoch != 0 && sh.epoch != epoch) {
		sh.mu.Unlock()
		return
	}
	c := sh.c
	sh.c = nil
	sh.state.Store(shardUnowned)
	sh.epoch++
	sh.mu.Unlock()
	if c != nil {
		c.Close()
		pl.log.Info("no longer coordinating the transactional IDs of a transaction state partition", "partition", part)
	}
}

// Close unloads every partition.
func (pl *Placed) Close() error {
	pl.mu.Lock()
	if pl.closed {
		pl.mu.Unlock()
		return nil
	}
	pl.closed = true
	close(pl.stop)
	pl.mu.Unlock()
	pl.wg.Wait()
	for i := range pl.shards {
		pl.unload(int32(i), 0)
	}
	return nil
}

// coordinator is the loaded coordinator of id's partition, or why there is none.
func (pl *Placed) coordinator(id string) (*Coordinator, error) {
	sh := pl.shards[pl.PartitionFor(id)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	switch sh.state.Load() {
	case shardLoaded:
		return sh.c, nil
	case shardLoading:
		return nil, ErrCoordinatorLoadInProgress
	}
	return nil, ErrNotCoordinator
}

// loaded lists the loaded coordinators.
func (pl *Placed) loaded() []*Coordinator {
	var out []*Coordinator
	for _, sh := range pl.shards {
		sh.mu.Lock()
		if sh.c != nil {
			out = append(out, sh.c)
		}
		sh.mu.Unlock()
	}
	return out
}

// Coordinates returns nil if this node coordinates id, else ErrNotCoordinator or
// ErrCoordinatorLoadInProgress.
func (pl *Placed) Coordinates(id string) error {
	_, err := pl.coordinator(id)
	return err
}

// TransactionVersion is 1 at most on a cluster node (see the top).
func (pl *Placed) TransactionVersion() int16 { return pl.cfg.TransactionVersion }

// InitProducerID is Coordinator.InitProducerID on id's coordinator.
func (pl *Placed) InitProducerID(id string, timeoutMs int32, reqPID int64, reqEpoch int16) (int64, int16, error) {
	if id == "" || len(id) > maxTransactionalID {
		return -1, -1, ErrInvalidTransactionalID
	}
	c, err := pl.coordinator(id)
	if err != nil {
		return -1, -1, err
	}
	return c.InitProducerID(id, timeoutMs, reqPID, reqEpoch)
}

// AddPartitions is Coordinator.AddPartitions on id's coordinator.
func (pl *Placed) AddPartitions(id string, pid int64, epoch int16, tps []TopicPartition, verifyOnly bool) (map[TopicPartition]error, error) {
	c, err := pl.coordinator(id)
	if err != nil {
		return nil, err
	}
	return c.AddPartitions(id, pid, epoch, tps, verifyOnly)
}

// AddOffsets is Coordinator.AddOffsets on id's coordinator: the transaction's end writes
// its marker to the group's partition of __consumer_offsets (Config.Offsets: MarkerOffsets).
func (pl *Placed) AddOffsets(id string, pid int64, epoch int16, group string) error {
	c, err := pl.coordinator(id)
	if err != nil {
		return err
	}
	return c.AddOffsets(id, pid, epoch, group)
}

// CommitOffsets is not served by a cluster node's transaction coordinator: TxnOffsetCommit
// goes to the group's coordinator, which writes the offsets itself (internal/kafka).
func (pl *Placed) CommitOffsets(id string, pid int64, epoch int16, group string, offsets map[TopicPartition]Offset, v2 bool) (map[TopicPartition]error, error) {
	return nil, ErrOffsetsNotReplicated
}

// End is Coordinator.End on id's coordinator.
func (pl *Placed) End(id string, pid int64, epoch int16, commit, v2 bool) (int64, int16, error) {
	c, err := pl.coordinator(id)
	if err != nil {
		return -1, -1, err
	}
	return c.End(id, pid, epoch, commit, v2)
}

// Produce checks a transactional batch against its transaction when this node coordinates
// the producer, and runs appendFn alone otherwise (see the top).
func (pl *Placed) Produce(pid int64, epoch int16, tp TopicPartition, v2 bool, appendFn func() error) error {
	for _, c := range pl.loaded() {
		if c.hasProducer(pid) {
			return c.Produce(pid, epoch, tp, v2, appendFn)
		}
	}
	return appendFn()
}

// PendingOffsets is empty: on a cluster node the group's coordinator holds a transaction's
// pending offsets (group.Coordinator.PendingTxnOffsets).
func (pl *Placed) PendingOffsets(group string) map[TopicPartition]bool { return nil }

// Describe is Coordinator.Describe on id's coordinator.
func (pl *Placed) Describe(id string) (Description, error) {
	c, err := pl.coordinator(id)
	if err != nil {
		return Description{}, err
	}
	return c.Describe(id)
}

// List lists the transactional IDs this node coordinates (Kafka's tools ask every node).
func (pl *Placed) List(states []State, pids []int64, minDurationMs int64) []Description {
	var out []Description
	for _, c := range pl.loaded() {
		out = append(out, c.List(states, pids, minDurationMs)...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
