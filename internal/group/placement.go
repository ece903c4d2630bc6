package group

// Coordinator placement on a cluster node (Config.ClusterPartitions > 0), as Kafka places it:
// __consumer_offsets is a replicated topic (one Raft group per partition, internal/broker),
// and the coordinator of group G is the leader of partition PartitionFor(G). This node
// coordinates the groups of the partitions it leads, and no other: their requests get
// ErrNotCoordinator here (clients find the coordinator again and go there).
//
// The broker tells the coordinator which partitions this node leads (SetLeader). On becoming
// leader of a partition the coordinator loads it: it waits until every entry committed by an
// earlier leader is applied to this node's log (the barrier), then replays the partition into
// fresh maps exactly as Open replays a single node's partitions (offsets.go), and restores
// the classic groups of its last GroupMetadata records (restore.go). Requests for its groups
// get ErrCoordinatorLoadInProgress meanwhile. On losing leadership it unloads the partition:
// its maps are dropped and its groups' goroutines stop (their waiting requests answered
// ErrNotCoordinator); the new leader loads them from its copy of the log.
//
// Every write goes through the partition's Raft group (stream.Partition.AppendInternal
// proposes it) and is answered once committed and applied here; there is no offsets journal
// on a cluster node (Raft's WAL is the write-ahead log). A write that fails may or may not
// have committed (a leader change, a timeout): the partition is unloaded, so that the next
// SetLeader loads it again from the log rather than from what memory guessed.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/yardmq/yard/internal/stream"
)

var (
	// ErrNotCoordinator: this node does not coordinate the group (Kafka's NOT_COORDINATOR).
	ErrNotCoordinator = errors.New("this node is not the group's coordinator")
	// ErrCoordinatorLoadInProgress: this node is loading the group's partition
	// (COORDINATOR_LOAD_IN_PROGRESS).
	ErrCoordinatorLoadInProgress = errors.New("coordinator load in progress")
	// ErrTxnNotReplicated refuses completing a transaction's offsets through the group
	// coordinator on a cluster node: the transaction coordinator writes the marker itself.
	ErrTxnNotReplicated = fmt.Errorf("transactional offset commits through the group coordinator: %w", stream.ErrNotReplicated)
)

// shardState is whether this node coordinates a shard's groups (cluster nodes only).
type shardState int8

const (
	shardUnowned shardState = iota
	shardLoading
	shardLoaded
)

// barrierRetryMs is the pause between two attempts at a partition's barrier while this node
// still leads it.
const barrierRetryMs = 100

// Clustered says whether the coordinator runs on a cluster node (placement by leadership).
func (c *Coordinator) Clustered() bool { return c.cfg.ClusterPartitions > 0 }

// WantOffsetsTopic records that a client looked for a group's coordinator while the cluster's
// __consumer_offsets does not exist yet: as Kafka, the topic is created on first use
// (OffsetsTopicWanted tells the broker).
func (c *Coordinator) WantOffsetsTopic() {
	select {
	case c.topicWanted <- struct{}{}:
	default:
	}
}

// OffsetsTopicWanted receives once WantOffsetsTopic was called.
func (c *Coordinator) OffsetsTopicWanted() <-chan struct{} { return c.topicWanted }

// OffsetsPartitionFor is the partition of __consumer_offsets that holds group's records.
func (c *Coordinator) OffsetsPartitionFor(group string) int32 {
	return PartitionFor(group, int32(len(c.offsets.shards)))
}

// Coordinates returns nil if this node coordinates group, else ErrNotCoordinator or
// ErrCoordinatorLoadInProgress. A single node coordinates every group.
func (c *Coordinator) Coordinates(group string) error {
	return c.offsets.shard(group).ownerErr()
}

// ownerErr: nil if this node may serve the shard's groups. It does not wait for sh.mu (held
// across a write's Raft round trip).
func (sh *offsetShard) ownerErr() error {
	if !sh.cluster {
		return nil
	}
	return ownerErrOf(shardState(sh.stateA.Load()))
}

func (sh *offsetShard) ownerErrLocked() error {
	if !sh.cluster {
		return nil
	}
	return ownerErrOf(sh.state)
}

// setStateLocked changes the shard's state. sh.mu held.
func (sh *offsetShard) setStateLocked(st shardState) {
	sh.state = st
	sh.stateA.Store(int32(st))
}

func ownerErrOf(st shardState) error {
	switch st {
	case shardLoaded:
		return nil
	case shardLoading:
		return ErrCoordinatorLoadInProgress
	default:
		return ErrNotCoordinator
	}
}

// SetLeader tells the coordinator whether this node leads partition part of
// __consumer_offsets (p, its partition on this node; barrier waits until every entry committed
// before it is applied to p and returns the term it ran in, see stream.Partition.ReplicaBarrier;
// term is the partition's current term). Called repeatedly by the broker; it acts on changes
// only (and loads again a partition unloaded after a failed write while this node leads it).
func (c *Coordinator) SetLeader(part int32, leader bool, p OffsetsPartition, term func() uint64, barrier func(context.Context) (uint64, error)) {
	if !c.Clustered() || part < 0 || int(part) >= len(c.offsets.shards) {
		return
	}
	sh := c.offsets.shards[part]
	// Nothing to do (the usual case, each poll): decided without locks, which a write holds
	// across its Raft round trip.
	if owned := shardState(sh.stateA.Load()) != shardUnowned; owned == leader {
		return
	}
	if !leader {
		c.unload(part, 0)
		return
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	sh.mu.Lock()
	if sh.state != shardUnowned {
		sh.mu.Unlock()
		c.mu.Unlock()
		return
	}
	sh.setStateLocked(shardLoading)
	sh.p = p
	sh.epoch++
	epoch := sh.epoch
	sh.mu.Unlock()
	if o, ok := p.(markerObservable); ok {
		o.SetMarkerObserver(func(pid int64, commit bool, offset int64) {
			sh.markMu.Lock()
			sh.marks = append(sh.marks, markerEvent{pid, commit, offset})
			sh.markMu.Unlock()
			go func() {
				sh.mu.Lock()
				sh.drainMarkersLocked(math.MaxInt64)
				sh.mu.Unlock()
			}()
		})
	}
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		c.load(part, epoch, p, term, barrier)
	}()
}

// load runs the barrier, replays the partition and makes it this node's (see the top).
func (c *Coordinator) load(part int32, epoch uint64, p OffsetsPartition, term func() uint64, barrier func(context.Context) (uint64, error)) {
	sh := c.offsets.shards[part]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	start := c.now()
	for {
		if !c.loading(sh, epoch) {
			return
		}
		bctx, bcancel := context.WithTimeout(ctx, 10*time.Second)
		t, err := barrier(bctx)
		bcancel()
		// The barrier committed in the term this node still leads: no entry of an earlier
		// leader can commit after it.
		if err == nil && t == term() {
			break
		}
		if err != nil {
			c.log.Debug("offsets partition barrier failed; retrying", "partition", part, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(barrierRetryMs * time.Millisecond):
		}
	}
	fresh := newOffsetShard(sh.p, int(part), nil)
	records, err := fresh.replay()
	if err != nil {
		c.log.Error("cannot load __consumer_offsets partition; not coordinating its groups", "partition", part, "err", err)
		c.unload(part, epoch)
		return
	}
	c.mu.Lock()
	sh.mu.Lock()
	if sh.epoch != epoch || sh.state != shardLoading || c.closed {
		sh.mu.Unlock()
		c.mu.Unlock()
		return
	}
	sh.groups, sh.meta, sh.cgroups, sh.pending = fresh.groups, fresh.meta, fresh.cgroups, fresh.pending
	sh.replayedTo = fresh.replayedTo
	sh.drainMarkersLocked(math.MaxInt64) // those applied since the replay
	names := sh.namesLocked()
	sh.mu.Unlock()
	c.mu.Unlock()
	// The restored groups are adopted only while this load is current (adopt); requests wait
	// (load in progress) until they are.
	c.restoreGroups(names, func(g *group) bool { return c.adopt(g, epoch) })
	sh.mu.Lock()
	if sh.epoch == epoch && sh.state == shardLoading {
		sh.setStateLocked(shardLoaded)
	}
	sh.mu.Unlock()
	c.log.Info("coordinating the groups of an offsets partition", "partition", part, "groups", len(names),
		"records", records, "took", c.now().Sub(start).Round(time.Millisecond))
}

func (c *Coordinator) loading(sh *offsetShard, epoch uint64) bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.epoch == epoch && sh.state == shardLoading
}

// unload makes partition part no longer this node's: its maps are dropped and its groups'
// goroutines stop. epoch 0 unloads whatever is loaded; another only that load.
func (c *Coordinator) unload(part int32, epoch uint64) {
	sh := c.offsets.shards[part]
	c.mu.Lock()
	sh.mu.Lock()
	if sh.state == shardUnowned || (epoch != 0 && sh.epoch != epoch) {
		sh.mu.Unlock()
		c.mu.Unlock()
		return
	}
	wasLoaded := sh.state == shardLoaded
	sh.setStateLocked(shardUnowned)
	sh.epoch++
	empty := newOffsetShard(nil, sh.idx, nil)
	sh.groups, sh.meta, sh.cgroups, sh.pending = empty.groups, empty.meta, empty.cgroups, empty.pending
	sh.replayedTo = -1
	sh.drainMarkersLocked(math.MaxInt64) // dropped: the next load replays them
	sh.mu.Unlock()
	var gone []*group
	for id, g := range c.groups {
		if PartitionFor(id, int32(len(c.offsets.shards))) == part {
			delete(c.groups, id)
			gone = append(gone, g)
		}
	}
	c.mu.Unlock()
	for _, g := range gone {
		close(g.unload)
	}
	if wasLoaded {
		c.log.Info("no longer coordinating the groups of an offsets partition", "partition", part, "groups", len(gone))
	}
}

// lost is called after a failed write to shard sh on a cluster node: what the log holds is
// unknown until it is loaded again.
func (c *Coordinator) lost(sh *offsetShard) {
	sh.mu.Lock()
	epoch, loaded := sh.epoch, sh.state == shardLoaded
	sh.mu.Unlock()
	if loaded {
		c.unload(int32(sh.idx), epoch)
	}
}

// adopt starts g (a group restore.go rebuilt) unless, on a cluster node, the load of its
// partition with this epoch is no longer current (0: a single node's, always current).
func (c *Coordinator) adopt(g *group, epoch uint64) bool {
	sh := c.offsets.shard(g.id)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.groups[g.id] != nil {
		return false
	}
	if sh.cluster {
		sh.mu.Lock()
		ok := sh.state == shardLoading && sh.epoch == epoch
		sh.mu.Unlock()
		if !ok {
			return false
		}
	}
	c.groups[g.id] = g
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		g.run()
	}()
	return true
}

// namesLocked lists the shard's groups (with offsets or metadata). sh.mu held.
func (sh *offsetShard) namesLocked() []string {
	var names []string
	for g := range sh.groups {
		names = append(names, g)
	}
	for g := range sh.meta {
		if sh.groups[g] == nil {
			names = append(names, g)
		}
	}
	for g := range sh.cgroups {
		if sh.groups[g] == nil && sh.meta[g] == nil {
			names = append(names, g)
		}
	}
	return names
}

// appendReplicatedLocked is appendLocked on a cluster node: the batch is proposed to the
// partition's Raft group and applied to memory once committed. sh.mu held (so the
// partition's order is the maps' order; commits of one partition wait for each other).
func (sh *offsetShard) appendReplicatedLocked(recs []coordRecord, nowMs int64, prod batchProducer) error {
	if err := sh.ownerErrLocked(); err != nil {
		return err
	}
	sh.buf = appendBatch(sh.buf[:0], recs, nowMs, prod)
	last, err := sh.p.AppendInternal(sh.buf)
	if err != nil {
		// Committed or not, this node may no longer lead: load again from the log.
		go sh.lost(sh)
		return fmt.Errorf("cannot append to __consumer_offsets-%d: %w (%w)", sh.idx, err, ErrNotCoordinator)
	}
	// Markers the log holds before the batch end their transactions first (log order).
	sh.drainMarkersLocked(last)
	if prod.ID < 0 { // a transactional batch's offsets wait for their marker (the caller)
		for _, r := range recs {
			sh.applyLocked(r)
		}
	}
	return nil
}

// markerObservable is an OffsetsPartition that reports the markers it applies (a replicated
// *stream.Partition).
type markerObservable interface {
	SetMarkerObserver(fn func(pid int64, commit bool, offset int64))
}

// drainMarkersLocked applies to the maps the markers the partition applied before offset
// upTo and not yet applied here, in log order (a transaction coordinator on any node writes
// them through the partition's Raft group; the maps learn of them here). Markers at or
// before the end the maps were replayed to are in the maps already; none are kept while
// nothing is loaded. sh.mu held.
func (sh *offsetShard) drainMarkersLocked(upTo int64) {
	sh.markMu.Lock()
	n := 0
	for n < len(sh.marks) && sh.marks[n].offset < upTo {
		n++
	}
	evs := sh.marks[:n:n]
	sh.marks = sh.marks[n:]
	if len(sh.marks) == 0 {
		sh.marks = nil
	}
	if sh.state == shardUnowned {
		sh.marks = nil
	}
	sh.markMu.Unlock()
	if sh.replayedTo < 0 {
		if sh.state != shardUnowned {
			// Loading: kept for the load to apply those after its replay.
			sh.markMu.Lock()
			sh.marks = append(evs, sh.marks...)
			sh.markMu.Unlock()
		}
		return
	}
	for _, e := range evs {
		if e.offset >= sh.replayedTo {
			sh.endTxnLocked(e.pid, e.commit)
		}
	}
}

// PendingTxnOffsets is the partitions of group for which an open transaction wrote offsets
// (OffsetFetch's RequireStable answers them UNSTABLE_OFFSET_COMMIT): on a cluster node the
// group's coordinator holds them (the transaction coordinator may be elsewhere).
func (c *Coordinator) PendingTxnOffsets(group string) map[TopicPartition]bool {
	sh := c.offsets.shard(group)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	var out map[TopicPartition]bool
	for _, byGroup := range sh.pending {
		for tp := range byGroup[group] {
			if out == nil {
				out = map[TopicPartition]bool{}
			}
			out[tp] = true
		}
	}
	return out
}
