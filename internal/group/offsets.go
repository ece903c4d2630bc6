package group

// The committed-offsets store over __consumer_offsets (records.go describes its records).
//
// Every group's records live in one partition of the topic, PartitionFor(group); the
// in-memory state is sharded the same way, one offsetShard per partition, each with its own
// lock, so commits of groups in different partitions never wait for each other and commits
// in one partition share its group commit (fsync).
//
// Replay on open reads every partition from its start: an offset commit record sets (or, as
// a tombstone, removes) one committed offset; a group metadata record sets (or removes) the
// group's last recorded generation. A transactional batch (TxnOffsetCommit) holds its
// offsets aside under its producer ID until that producer's control batch (the transaction
// marker) in the same partition makes them committed (commit) or drops them (abort), as
// Kafka's coordinator does. Compaction is the log cleaner's (the topic is
// cleanup.policy=compact): the last record of each key survives.

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/yardmq/yard/internal/log"
	rb "github.com/yardmq/yard/internal/recordbatch"
)

const (
	// chunkRecords bounds one batch written by the migration.
	chunkRecords    = 1000
	replayReadBytes = 1 << 20
)

// OffsetsPartition is one partition of __consumer_offsets as the coordinator writes and
// reads it. *stream.Partition implements it.
type OffsetsPartition interface {
	// AppendInternal appends a batch the coordinator built, without waiting for durability.
	AppendInternal(batch []byte) (lastOffset int64, err error)
	// WriteMarker writes a transaction marker (control batch).
	WriteMarker(ctx context.Context, pid int64, epoch int16, coordinatorEpoch int32, commit bool) error
	WaitDurable(ctx context.Context, offset int64) error
	// Sync fsyncs the partition: its log does not on its own (see stream.Topic.logOptions).
	Sync() error
	Read(offset int64, maxBytes int) (*log.ReadResult, error)
	StartOffset() int64
	EndOffset() int64
}

// offsetStore holds committed offsets and recorded group metadata in memory, backed by the
// partitions of __consumer_offsets.
type offsetStore struct {
	shards  []*offsetShard
	journal *journal // nil: commits wait for their partition's own fsync (journal.go)
	now     func() time.Time
	logger  *slog.Logger
}

// offsetShard is the state of the groups of one partition.
//
// mu guards the maps and buf, and is held around the append so that the partition's order is
// the maps' order; it is not held across WaitDurable, so concurrent commits share one fsync.
type offsetShard struct {
	p   OffsetsPartition
	idx int      // the partition's number
	j   *journal // the store's (nil: none)

	mu      sync.Mutex
	groups  map[string]map[TopicPartition]OffsetValue
	meta    map[string]*GroupMetadata
	cgroups map[string]*cgRecords                               // KIP-848 groups (consumer_persist.go)
	skipped int                                                 // KIP-848 records replay could not decode
	pending map[int64]map[string]map[TopicPartition]OffsetValue // open transactions by producer ID
	buf     []byte
	// With a journal: batches journaled but not yet written to the partition (writeQueued
	// writes them, in order), and the partition offset the next batch will get.
	queued [][]byte
	next   int64

	// On a cluster node (placement.go): whether this node coordinates the shard's groups,
	// the number of the shard's loads and unloads so far, and what to do after a failed
	// write. p is nil until the partition is first loaded.
	cluster bool
	state   shardState
	stateA  atomic.Int32 // state, readable without mu (set with it held)
	epoch   uint64
	lost    func(*offsetShard)
	// On a cluster node: the markers the partition applied (transactions ending, written by
	// a transaction coordinator anywhere) not yet applied to the maps, in log order, guarded
	// by markMu (not mu: the partition's apply goroutine adds them); replayedTo is the log end
	// the loaded maps were replayed to (-1: none loaded). See placement.go.
	markMu     sync.Mutex
	marks      []markerEvent
	replayedTo int64
}

// markerEvent is a marker a replicated partition applied.
type markerEvent struct {
	pid    int64
	commit bool
	offset int64
}

func newOffsetShard(p OffsetsPartition, idx int, j *journal) *offsetShard {
	return &offsetShard{p: p, idx: idx, j: j, replayedTo: -1, groups: map[string]map[TopicPartition]OffsetValue{},
		meta: map[string]*GroupMetadata{}, cgroups: map[string]*cgRecords{}, pending: map[int64]map[string]map[TopicPartition]OffsetValue{}}
}

func newOffsetStore(parts []OffsetsPartition, now func() time.Time, logger *slog.Logger) (*offsetStore, error) {
	if len(parts) == 0 {
		return nil, fmt.Errorf("cannot open offsets: no partitions of __consumer_offsets")
	}
	s := &offsetStore{now: now, logger: logger}
	for i, p := range parts {
		s.shards = append(s.shards, newOffsetShard(p, i, nil))
	}
	return s, nil
}

func (s *offsetStore) shard(group string) *offsetShard {
	return s.shards[PartitionFor(group, int32(len(s.shards)))]
}

// replay rebuilds every shard from its partition.
func (s *offsetStore) replay() error {
	var offsets, groups, records, cgroups, skipped int
	for i, sh := range s.shards {
		n, err := sh.replay()
		if err != nil {
			return fmt.Errorf("cannot replay __consumer_offsets-%d: %w", i, err)
		}
		if sh.skipped > 0 {
			s.logger.Warn("undecodable consumer-group records skipped; their members rejoin", "partition", i, "records", sh.skipped)
		}
		records += n
		cgroups += len(sh.cgroups)
		skipped += sh.skipped
		groups += len(sh.groups)
		for _, g := range sh.groups {
			offsets += len(g)
		}
	}
	s.logger.Info("committed offsets loaded", "groups", groups, "offsets", offsets, "records", records, "consumer_groups", cgroups)
	return nil
}

func (sh *offsetShard) replay() (records int, err error) {
	off, end := sh.p.StartOffset(), sh.p.EndOffset()
	sh.replayedTo = end
	var buf []byte
	for off < end {
		rr, err := sh.p.Read(off, replayReadBytes)
		if err != nil {
			return records, fmt.Errorf("cannot read at %d: %w", off, err)
		}
		buf, err = rr.AppendTo(buf[:0])
		rr.Release()
		if err != nil {
			return records, fmt.Errorf("cannot read at %d: %w", off, err)
		}
		used, next, err := walkBatches(buf, func(h *rb.Header, batch []byte) error {
			n, err := sh.applyBatch(h, batch)
			records += n
			return err
		})
		if err != nil {
			return records, fmt.Errorf("at %d: %w", off, err)
		}
		if used == 0 || next <= off {
			return records, fmt.Errorf("no progress at %d (end %d)", off, end)
		}
		off = next
	}
	return records, nil
}

// walkBatches calls fn for each whole batch in b. It returns the bytes consumed by whole
// batches (a trailing partial batch is left), the offset after the last whole batch (-1 if
// none) and fn's error or one for a batch that is whole but corrupt.
func walkBatches(b []byte, fn func(h *rb.Header, batch []byte) error) (used int, next int64, err error) {
	next = -1
	for len(b)-used >= rb.HeaderLen {
		h, err := rb.ParseHeader(b[used:])
		if err != nil {
			return used, next, fmt.Errorf("%w: %w", errCorruptRecord, err)
		}
		if h.Length > len(b)-used {
			return used, next, nil
		}
		batch := b[used : used+h.Length]
		if err := rb.CheckCRC(batch); err != nil {
			return used, next, fmt.Errorf("%w: %w", errCorruptRecord, err)
		}
		if err := fn(&h, batch); err != nil {
			return used, next, err
		}
		next = h.LastOffset() + 1
		used += h.Length
	}
	return used, next, nil
}

// forEachRecord decodes the records of an uncompressed data batch.
func forEachRecord(h *rb.Header, batch []byte, fn func(coordRecord)) (int, error) {
	if h.Codec() != rb.CodecNone {
		return 0, fmt.Errorf("%w: compressed batch", errCorruptRecord)
	}
	it := rb.NewRecords(batch[rb.HeaderLen:], h.RecordCount)
	var rec rb.Record
	n := 0
	for it.Next(&rec) {
		if rec.Key == nil {
			return n, fmt.Errorf("%w: record %d has no key", errCorruptRecord, n)
		}
		r, err := decodeRecord(rec.Key, rec.Value)
		if err != nil && isConsumerKind(r.Kind) {
			r = coordRecord{Kind: kindSkipped, Group: r.Group}
		} else if err != nil {
			return n, fmt.Errorf("record %d: %w", n, err)
		}
		n++
		if r.Kind != kindUnknown {
			fn(r)
		}
	}
	if err := it.Err(); err != nil {
		return n, fmt.Errorf("%w: %w", errCorruptRecord, err)
	}
	return n, nil
}

// applyBatch applies one replayed batch. sh.mu held or the shard not yet shared.
func (sh *offsetShard) applyBatch(h *rb.Header, batch []byte) (int, error) {
	if h.Control() {
		typ, ok := controlType(h, batch)
		if ok {
			sh.endTxnLocked(h.ProducerID, typ == controlCommit)
		}
		return 1, nil
	}
	if h.Transactional() {
		return forEachRecord(h, batch, func(r coordRecord) {
			if r.Kind == kindOffset && r.Offset != nil {
				sh.addPendingLocked(h.ProducerID, r.Group, map[TopicPartition]OffsetValue{r.TopicPartition: *r.Offset})
			}
		})
	}
	return forEachRecord(h, batch, sh.applyLocked)
}

// Control record types (the key's second int16), as internal/stream writes them.
const (
	controlAbort  = 0
	controlCommit = 1
)

// controlType decodes a marker's type; ok is false for another control record.
func controlType(h *rb.Header, batch []byte) (typ int16, ok bool) {
	if h.Codec() != rb.CodecNone || h.RecordCount != 1 {
		return 0, false
	}
	it := rb.NewRecords(batch[rb.HeaderLen:], 1)
	var r rb.Record
	if !it.Next(&r) || len(r.Key) < 4 {
		return 0, false
	}
	typ = int16(uint16(r.Key[2])<<8 | uint16(r.Key[3]))
	return typ, typ == controlAbort || typ == controlCommit
}

// applyLocked applies one record. sh.mu held.
func (sh *offsetShard) applyLocked(r coordRecord) {
	switch r.Kind {
	case kindOffset:
		g := sh.groups[r.Group]
		if r.Offset == nil {
			if g != nil {
				delete(g, r.TopicPartition)
				if len(g) == 0 {
					delete(sh.groups, r.Group)
				}
			}
			return
		}
		if g == nil {
			g = map[TopicPartition]OffsetValue{}
			sh.groups[r.Group] = g
		}
		g[r.TopicPartition] = *r.Offset
	case kindGroup:
		if r.Meta == nil {
			delete(sh.meta, r.Group)
		} else {
			sh.meta[r.Group] = r.Meta
		}
	case kindSkipped:
		sh.skipped++
	default:
		if isConsumerKind(r.Kind) {
			sh.applyConsumerLocked(r)
		}
	}
}

func (sh *offsetShard) addPendingLocked(pid int64, group string, offs map[TopicPartition]OffsetValue) {
	byGroup := sh.pending[pid]
	if byGroup == nil {
		byGroup = map[string]map[TopicPartition]OffsetValue{}
		sh.pending[pid] = byGroup
	}
	g := byGroup[group]
	if g == nil {
		g = map[TopicPartition]OffsetValue{}
		byGroup[group] = g
	}
	maps.Copy(g, offs)
}

// endTxnLocked applies a marker of producer pid: on commit its pending offsets (of every
// group in this partition) become committed; on abort they are dropped.
func (sh *offsetShard) endTxnLocked(pid int64, commit bool) {
	byGroup := sh.pending[pid]
	delete(sh.pending, pid)
	if !commit {
		return
	}
	for _, g := range sortedKeys(byGroup) {
		for tp, v := range byGroup[g] {
			v := v
			sh.applyLocked(coordRecord{Kind: kindOffset, Group: g, TopicPartition: tp, Offset: &v})
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// appendLocked appends recs as one batch and applies them (unless transactional: those wait
// for their marker). sh.mu held. With a journal the batch is journaled and queued for the
// partition (written by the next flush, so that a commit costs one write, to the journal);
// without, it is written to the partition. It returns where the batch's durability is to be
// waited for (waitDurable).
func (sh *offsetShard) appendLocked(recs []coordRecord, nowMs int64, prod batchProducer) (durable, error) {
	d := durable{journal: -1}
	if sh.cluster {
		return d, sh.appendReplicatedLocked(recs, nowMs, prod)
	}
	if sh.j != nil {
		batch := appendBatch(nil, recs, nowMs, prod)
		var err error
		if d.journal, err = sh.j.append(sh.idx, sh.next, batch, nowMs); err != nil {
			return durable{}, fmt.Errorf("%w (%w)", err, ErrCoordinatorNotAvailable)
		}
		sh.queued = append(sh.queued, batch)
		sh.next += int64(len(recs))
	} else {
		sh.buf = appendBatch(sh.buf[:0], recs, nowMs, prod)
		if _, err := sh.p.AppendInternal(sh.buf); err != nil {
			// Retriable for clients, as Kafka answers when its offsets topic cannot be written.
			return durable{}, fmt.Errorf("cannot append to __consumer_offsets: %w (%w)", err, ErrCoordinatorNotAvailable)
		}
	}
	if prod.ID < 0 {
		for _, r := range recs {
			sh.applyLocked(r)
		}
	}
	return d, nil
}

// writeQueuedLocked writes the queued batches to the partition. sh.mu held. A batch that does
// not land where the journal says it would (the partition changed behind the coordinator's
// back) is logged; the records are there all the same.
func (sh *offsetShard) writeQueuedLocked(logger *slog.Logger) error {
	for len(sh.queued) > 0 {
		b := sh.queued[0]
		n := int64(binary.BigEndian.Uint32(b[rb.OffRecordCount:]))
		want := sh.p.EndOffset()
		last, err := sh.p.AppendInternal(b)
		if err != nil {
			return fmt.Errorf("cannot append to __consumer_offsets-%d: %w", sh.idx, err)
		}
		if last != want+n-1 {
			logger.Warn("__consumer_offsets batch landed at an unexpected offset", "partition", sh.idx, "want", want, "last", last)
		}
		sh.queued[0] = nil
		sh.queued = sh.queued[1:]
	}
	sh.queued = nil
	sh.next = sh.p.EndOffset()
	return nil
}

// durable is where an appended batch becomes durable: its offset in the journal (-1: no
// journal, the partition is fsynced).
type durable struct{ journal int64 }

func (sh *offsetShard) waitDurable(ctx context.Context, d durable) error {
	if sh.cluster {
		return nil // committed through the partition's Raft group (its WAL is fsynced)
	}
	var err error
	if sh.j != nil {
		err = sh.j.wait(ctx, d.journal)
	} else {
		err = sh.p.Sync() // no journal (tests): one fsync per write
	}
	if err != nil {
		return fmt.Errorf("cannot make offsets durable: %w (%w)", err, ErrCoordinatorNotAvailable)
	}
	return nil
}

// write appends recs of one group as one batch, then waits for durability outside the lock.
func (s *offsetStore) write(ctx context.Context, group string, recs []coordRecord) error {
	if len(recs) == 0 {
		return nil
	}
	sh := s.shard(group)
	sh.mu.Lock()
	d, err := sh.appendLocked(recs, s.now().UnixMilli(), noProducer)
	sh.mu.Unlock()
	if err != nil {
		return err
	}
	return sh.waitDurable(ctx, d)
}

func offsetRecords(group string, offs map[TopicPartition]OffsetValue) []coordRecord {
	recs := make([]coordRecord, 0, len(offs))
	for tp, v := range offs {
		v := v
		recs = append(recs, coordRecord{Kind: kindOffset, Group: group, TopicPartition: tp, Offset: &v})
	}
	sortRecords(recs)
	return recs
}

func (s *offsetStore) commit(ctx context.Context, group string, offs map[TopicPartition]OffsetValue) error {
	return s.write(ctx, group, offsetRecords(group, offs))
}

// deleteOffsets writes tombstones for tps of group (all of them when tps is nil).
func (s *offsetStore) deleteOffsets(ctx context.Context, group string, tps []TopicPartition) error {
	return s.deleteGroupRecords(ctx, group, tps, false)
}

// deleteGroup writes tombstones for every offset of group and for its metadata.
func (s *offsetStore) deleteGroup(ctx context.Context, group string) error {
	return s.deleteGroupRecords(ctx, group, nil, true)
}

func (s *offsetStore) deleteGroupRecords(ctx context.Context, group string, tps []TopicPartition, meta bool) error {
	sh := s.shard(group)
	sh.mu.Lock()
	var recs []coordRecord
	g := sh.groups[group]
	if tps == nil {
		for tp := range g {
			recs = append(recs, coordRecord{Kind: kindOffset, Group: group, TopicPartition: tp})
		}
	} else {
		for _, tp := range tps {
			if _, ok := g[tp]; ok {
				recs = append(recs, coordRecord{Kind: kindOffset, Group: group, TopicPartition: tp})
			}
		}
	}
	sortRecords(recs)
	if meta && sh.meta[group] != nil {
		recs = append(recs, coordRecord{Kind: kindGroup, Group: group})
	}
	if meta {
		recs = append(recs, sh.consumerTombstonesLocked(group)...)
	}
	if len(recs) == 0 {
		sh.mu.Unlock()
		return nil
	}
	d, err := sh.appendLocked(recs, s.now().UnixMilli(), noProducer)
	sh.mu.Unlock()
	if err != nil {
		return err
	}
	return sh.waitDurable(ctx, d)
}

// storeGroup records a classic group's generation (Kafka's GroupMetadata record), after
// tombstones for the records of the KIP-848 group the name had before, if any (an emptied
// consumer group that classic members took over). It does not wait for durability.
func (s *offsetStore) storeGroup(group string, m *GroupMetadata) error {
	sh := s.shard(group)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	recs := append(sh.consumerTombstonesLocked(group), coordRecord{Kind: kindGroup, Group: group, Meta: m})
	_, err := sh.appendLocked(recs, s.now().UnixMilli(), noProducer)
	return err
}

// writeTxnOffsets writes a transaction's offsets for group as a transactional batch of the
// producer; they stay pending until the transaction's marker (completeTxn).
func (s *offsetStore) writeTxnOffsets(ctx context.Context, group string, pid int64, epoch int16, offs map[TopicPartition]OffsetValue) error {
	if len(offs) == 0 {
		return nil
	}
	sh := s.shard(group)
	sh.mu.Lock()
	d, err := sh.appendLocked(offsetRecords(group, offs), s.now().UnixMilli(), batchProducer{pid, epoch})
	if err == nil {
		sh.addPendingLocked(pid, group, offs)
	}
	sh.mu.Unlock()
	if err != nil {
		return err
	}
	return sh.waitDurable(ctx, d)
}

// completeTxn ends producer pid's transaction in group's partition with a marker. On commit,
// the pending offsets become committed. offs is the transaction coordinator's copy of the
// group's offsets (authoritative): those the partition lacks as pending records (their write
// failed after the coordinator took them, or the transaction is completed again after a
// restart) are written first, in the transaction, so that memory and a replay agree.
func (s *offsetStore) completeTxn(ctx context.Context, group string, pid int64, epoch int16, coordinatorEpoch int32, commit bool, offs map[TopicPartition]OffsetValue) error {
	sh := s.shard(group)
	if sh.cluster {
		return ErrTxnNotReplicated // placement.go
	}
	sh.mu.Lock()
	defer sh.mu.Unlock() // held across the marker's fsync: markers are rare, order is exact
	if commit {
		missing := map[TopicPartition]OffsetValue{}
		have := sh.pending[pid][group]
		for tp, v := range offs {
			hv, ok := have[tp]
			if !ok || hv.Offset != v.Offset || hv.LeaderEpoch != v.LeaderEpoch || hv.Metadata != v.Metadata {
				missing[tp] = v
			}
		}
		if len(missing) > 0 {
			if _, err := sh.appendLocked(offsetRecords(group, missing), s.now().UnixMilli(), batchProducer{pid, epoch}); err != nil {
				return err
			}
			sh.addPendingLocked(pid, group, missing)
		}
	}
	// The marker is not journaled (journal.go): the queued batches go to the partition first,
	// then the marker, then an fsync makes it and everything before it durable.
	var err error
	if sh.j != nil {
		err = sh.writeQueuedLocked(s.logger)
	}
	if err == nil {
		err = sh.p.WriteMarker(ctx, pid, epoch, coordinatorEpoch, commit)
	}
	if err == nil {
		err = sh.p.Sync()
	}
	sh.next = sh.p.EndOffset()
	if err != nil {
		return fmt.Errorf("cannot write transaction marker to __consumer_offsets: %w (%w)", err, ErrCoordinatorNotAvailable)
	}
	sh.endTxnLocked(pid, commit)
	return nil
}

func sortRecords(recs []coordRecord) {
	sort.Slice(recs, func(i, j int) bool {
		if recs[i].Topic != recs[j].Topic {
			return recs[i].Topic < recs[j].Topic
		}
		return recs[i].Partition < recs[j].Partition
	})
}

// fetch returns the committed offsets of group for tps, or all of them when tps is nil.
func (s *offsetStore) fetch(group string, tps []TopicPartition) []FetchedOffset {
	sh := s.shard(group)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	g := sh.groups[group]
	var out []FetchedOffset
	if tps == nil {
		for tp, v := range g {
			out = append(out, FetchedOffset{tp, v})
		}
		sort.Slice(out, func(i, j int) bool {
			if out[i].Topic != out[j].Topic {
				return out[i].Topic < out[j].Topic
			}
			return out[i].Partition < out[j].Partition
		})
		return out
	}
	for _, tp := range tps {
		v, ok := g[tp]
		if !ok {
			v = OffsetValue{Offset: -1, LeaderEpoch: -1}
		}
		out = append(out, FetchedOffset{tp, v})
	}
	return out
}

// hasGroup: the group has committed offsets or recorded metadata.
func (s *offsetStore) hasGroup(group string) bool {
	sh := s.shard(group)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return len(sh.groups[group]) > 0 || sh.meta[group] != nil || sh.cgroups[group] != nil
}

// hasGroupRecords: the topic holds the group's metadata (classic or KIP-848).
func (s *offsetStore) hasGroupRecords(group string) bool {
	sh := s.shard(group)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.meta[group] != nil || sh.cgroups[group] != nil
}

// hasOffsets: the group has committed offsets.
func (s *offsetStore) hasOffsets(group string) bool {
	sh := s.shard(group)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return len(sh.groups[group]) > 0
}

// groupMeta is the group's last recorded metadata (nil if none).
func (s *offsetStore) groupMeta(group string) *GroupMetadata {
	sh := s.shard(group)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.meta[group]
}

// groupNames lists every group with offsets or metadata.
func (s *offsetStore) groupNames() []string {
	var names []string
	for _, sh := range s.shards {
		sh.mu.Lock()
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
		sh.mu.Unlock()
	}
	sort.Strings(names)
	return names
}

// lastCommitMs is the newest commit timestamp of group (0 if none).
func (s *offsetStore) lastCommitMs(group string) int64 {
	sh := s.shard(group)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	var last int64
	for _, v := range sh.groups[group] {
		last = max(last, v.CommitMs)
	}
	return last
}
