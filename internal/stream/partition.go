package stream

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/yardmq/yard/internal/log"
	rb "github.com/yardmq/yard/internal/recordbatch"
)

// Partition is one partition of a topic: a log plus the state of the idempotent producers
// writing to it.
//
// mu serializes Append: the producer-sequence check, the log append that assigns offsets and
// the producer-state update happen as one step, so two retries of one batch cannot both pass
// the check. It is never held while waiting for durability (WaitDurable), so concurrent
// producers share fsyncs.
type Partition struct {
	Topic *Topic
	Index int32
	log   *log.Log

	mu          sync.Mutex
	producers   map[int64]*producerState
	snapshotEnd int64           // log end offset of the last snapshot written (snapshot.go)
	ongoing     map[int64]int64 // open transactions: producer ID -> first offset (txn.go)
	aborted     []AbortedTxn    // aborted transactions in marker order (txn.go)

	// jq: this partition's journal entries not yet known durable, oldest first; guarded by
	// the Manager's produceJournal.mu (journal.go).
	jq []journalPoint

	// A replicated partition's group (replica.go); nil on a single node.
	replica                atomic.Pointer[PartitionReplica]
	appliedIndex           atomic.Uint64 // Raft index of the last entry applied to the log
	appliedSinceCheckpoint atomic.Uint64
	// rangeMu serialises a range fetch (replica_range.go) with the group's applies.
	rangeMu      sync.Mutex
	pendingRange atomic.Pointer[replicaRange]
	// markerObs is told of every marker a replicated partition applies (replica_internal.go).
	markerObs atomic.Pointer[func(pid int64, commit bool, offset int64)]
}

// openPartition opens partition i of t; with rebuild, it also rebuilds the producer state
// (Manager.Open does it after replaying the journal).
func openPartition(t *Topic, i int32, rebuild bool) (*Partition, error) {
	m := t.m
	if m.failOpen != nil {
		if err := m.failOpen(t.Name, i); err != nil {
			return nil, fmt.Errorf("cannot open partition %s-%d: %w", t.Name, i, err)
		}
	}
	l, err := log.Open(m.partitionDir(t.Name, i), t.logOptions())
	if err != nil {
		return nil, fmt.Errorf("cannot open partition %s-%d: %w", t.Name, i, err)
	}
	p := &Partition{Topic: t, Index: i, log: l, producers: map[int64]*producerState{}, snapshotEnd: -1,
		ongoing: map[int64]int64{}}
	if rebuild {
		if err := p.rebuild(); err != nil {
			l.Close()
			return nil, err
		}
	}
	return p, nil
}

// rebuild rebuilds the producer state from the snapshot and the log.
func (p *Partition) rebuild() error {
	if err := p.rebuildProducerState(p.loadSnapshot()); err != nil {
		return fmt.Errorf("cannot rebuild producer state of %s-%d: %w", p.Topic.Name, p.Index, err)
	}
	return nil
}

// AppendResult is what a producer is told.
type AppendResult struct {
	BaseOffset int64
	LastOffset int64
	// LogAppendTime is the broker timestamp for LogAppendTime topics, -1 otherwise.
	LogAppendTime int64
	// LogStartOffset is the partition's start offset after the append.
	LogStartOffset int64
	// Duplicate: the batch was a retry of one already written; the offsets are the original's.
	Duplicate bool
}

// Append validates one record batch as a producer sent it and appends it without waiting for
// durability; callers that acknowledge must WaitDurable(res.LastOffset) afterwards. The batch
// is modified in place (offsets, leader epoch, LogAppendTime) and must not be used afterwards.
func (p *Partition) Append(batch []byte) (AppendResult, error) {
	if p.Topic.Internal {
		return AppendResult{}, fmt.Errorf("cannot append to internal topic %s: %w", p.Topic.Name, ErrInternalTopic)
	}
	if r := p.replicaOf(); r != nil {
		return p.appendReplicated(r, batch, 0)
	}
	appendTime := int64(-1)
	if p.Topic.Config().LogAppendTime {
		appendTime = p.Topic.m.cfg.Now().UnixMilli()
	}
	return p.appendLocal(batch, p.LeaderEpoch(), appendTime)
}

// appendLocal validates and appends batch to this node's log, stamped with epoch and
// appendTime (-1: CreateTime).
func (p *Partition) appendLocal(batch []byte, epoch int32, appendTime int64) (AppendResult, error) {
	cfg := p.Topic.Config()
	h, err := validateProducedBatch(batch, cfg.MaxMessageBytes)
	if err != nil {
		return AppendResult{}, err
	}
	if err := p.Topic.m.checkRecords(batch, &h, cfg.MaxMessageBytes); err != nil {
		return AppendResult{}, err
	}
	if cfg.Compact {
		if err := p.checkKeys(batch, &h, cfg.MaxMessageBytes); err != nil {
			return AppendResult{}, err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if idempotent(&h) {
		dup, err := p.checkSequence(&h)
		if err != nil {
			return AppendResult{}, err
		}
		if dup != nil {
			return AppendResult{BaseOffset: dup.firstOffset, LastOffset: dup.lastOffset, LogAppendTime: dup.appendTime,
				LogStartOffset: p.log.StartOffset(), Duplicate: true}, nil
		}
	}
	rb.Stamp(batch, epoch, appendTime)
	res, err := p.appendLogLocked(batch)
	if err != nil {
		if errors.Is(err, log.ErrCorruptBatch) {
			return AppendResult{}, fmt.Errorf("%w: %v", ErrCorruptBatch, err)
		}
		return AppendResult{}, fmt.Errorf("cannot append to %s-%d: %w", p.Topic.Name, p.Index, err)
	}
	if idempotent(&h) {
		p.recordBatch(&h, res.BaseOffset, appendTime, p.Topic.m.cfg.Now().UnixMilli())
	}
	if h.Transactional() {
		p.beginTxnLocked(h.ProducerID, res.BaseOffset)
	}
	return AppendResult{BaseOffset: res.BaseOffset, LastOffset: res.LastOffset, LogAppendTime: appendTime,
		LogStartOffset: p.log.StartOffset()}, nil
}

// AppendInternal appends a batch the broker built for one of its internal topics (the group
// coordinator's records): no producer-sequence check, no validation beyond the log's own
// (length, CRC). A transactional batch opens its producer's transaction here, as a produced
// one does, so that the marker (WriteMarker) ends it and read_committed readers stop at it.
// It does not wait for durability; see WaitDurable. On a replicated partition it proposes the
// batch to the partition's group (leader only) and returns once the batch is committed and
// applied here (replica_internal.go).
func (p *Partition) AppendInternal(batch []byte) (lastOffset int64, err error) {
	if r := p.replicaOf(); r != nil { // a cluster node: through the partition's group
		return p.appendInternalReplicated(r, batch, 0)
	}
	h, err := rb.ParseHeader(batch)
	if err != nil {
		return -1, fmt.Errorf("BUG: internal batch for %s-%d: %w", p.Topic.Name, p.Index, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	rb.Stamp(batch, p.LeaderEpoch(), -1)
	res, err := p.appendLogLocked(batch)
	if err != nil {
		return -1, fmt.Errorf("cannot append to %s-%d: %w", p.Topic.Name, p.Index, err)
	}
	if h.Transactional() && !h.Control() {
		p.beginTxnLocked(h.ProducerID, res.BaseOffset)
	}
	return res.LastOffset, nil
}

// WaitDurable waits until offset of p is durable per the sync policy: with the produce
// journal (journal.go), until the journal's fsync covers it.
func (p *Partition) WaitDurable(ctx context.Context, offset int64) error {
	if pj := p.Topic.m.journal; pj != nil && !p.Topic.Internal {
		return p.waitJournaled(ctx, pj, offset)
	}
	return p.log.WaitDurable(ctx, offset)
}

// Sync forces the partition's appended records to disk, whatever the sync policy.
func (p *Partition) Sync() error { return p.log.Sync() }

// checkRecords walks the records of a produced batch as Kafka does before storing it, so that
// no batch any client would fail to read reaches the log: decompressed within
// recordbatch.InflateLimit (the bound every reader of the partition applies), every length
// within bounds, exactly the declared count.
func (m *Manager) checkRecords(batch []byte, h *rb.Header, maxMessageBytes int) error {
	var err error
	if h.Codec() == rb.CodecNone {
		_, err = rb.CheckRecords(batch, h, nil, 0)
	} else {
		buf, _ := m.inflateBufs.Get().(*[]byte)
		if buf == nil {
			buf = new([]byte)
		}
		*buf, err = rb.CheckRecords(batch, h, *buf, rb.InflateLimit(maxMessageBytes))
		m.inflateBufs.Put(buf)
	}
	if errors.Is(err, rb.ErrTooLarge) {
		return fmt.Errorf("%w: %v (%d times max.message.bytes)", ErrMessageTooLarge, err, rb.DecompressRatioMax)
	}
	return err
}

// checkKeys refuses a batch with a record without a key on a compacted topic, as Kafka does
// (INVALID_RECORD, "Compacted topic cannot accept message without key"): the cleaner keeps
// records by key. The records were checked by checkRecords.
func (p *Partition) checkKeys(batch []byte, h *rb.Header, maxMessageBytes int) error {
	body, err := rb.Body(batch, h, nil, rb.InflateLimit(maxMessageBytes))
	if err != nil {
		return err
	}
	it := rb.NewRecords(body, h.RecordCount)
	var r rb.Record
	for it.Next(&r) {
		if r.Key == nil {
			return fmt.Errorf("%w: Compacted topic cannot accept message without key in topic partition %s-%d",
				ErrInvalidRecord, p.Topic.Name, p.Index)
		}
	}
	return it.Err()
}

// inflateLimit bounds what one batch of this partition may inflate to when read.
func (p *Partition) inflateLimit() int { return rb.InflateLimit(p.Topic.Config().MaxMessageBytes) }

// forEachBatchHeader walks batch headers in the ranges of a read without copying the records;
// fn gets the file and position of each batch.
func forEachBatchHeader(rr *log.ReadResult, fn func(h *rb.Header, f log.File, pos int64) error) error {
	var buf [rb.HeaderLen]byte
	for _, r := range rr.Ranges {
		for pos := r.Pos; pos < r.Pos+r.Len; {
			if _, err := r.File.ReadAt(buf[:], pos); err != nil {
				return fmt.Errorf("cannot read batch header: %w", err)
			}
			h, err := rb.ParseHeader(buf[:])
			if err != nil {
				return err
			}
			if err := fn(&h, r.File, pos); err != nil {
				return err
			}
			pos += int64(h.Length)
		}
	}
	return nil
}

// readBatchAt returns the whole batch that contains offset, copied into memory, and its base
// offset.
func (p *Partition) readBatchAt(offset int64) ([]byte, int64, error) {
	rr, err := p.log.Read(offset, 1)
	if err != nil {
		return nil, -1, err
	}
	defer rr.Release()
	b, err := rr.AppendTo(nil)
	if err != nil {
		return nil, -1, err
	}
	if len(b) < rb.HeaderLen {
		return nil, -1, fmt.Errorf("%w: no batch at offset %d", log.ErrOffsetOutOfRange, offset)
	}
	return b, int64(binary.BigEndian.Uint64(b)), nil
}

// OffsetForTimestamp is Kafka's ListOffsets by timestamp: the first record whose timestamp is
// at or after ts, with that timestamp; (-1, -1) if there is none. The engine indexes batches,
// so the batch is located by its max timestamp and then read record by record.
func (p *Partition) OffsetForTimestamp(ts int64) (offset, timestamp int64, err error) {
	off, err := p.log.OffsetForTimestamp(ts)
	if err != nil || off < 0 {
		return -1, -1, err
	}
	b, base, err := p.readBatchAt(off)
	if err != nil {
		return -1, -1, err
	}
	h, err := rb.ParseHeader(b)
	if err != nil {
		return -1, -1, err
	}
	offset, timestamp = base, h.MaxTimestamp
	if !h.LogAppendTime() {
		err = batchRecords(b, p.inflateLimit(), func(od int32, td int64) bool {
			if h.BaseTimestamp+td >= ts {
				offset, timestamp = base+int64(od), h.BaseTimestamp+td
				return false
			}
			return true
		})
		if err != nil {
			return -1, -1, err
		}
	}
	if start := p.log.StartOffset(); offset < start {
		offset = start // DeleteRecords cut into this batch
	}
	return offset, timestamp, nil
}

// MaxTimestamp is Kafka's ListOffsets with timestamp -3: the largest timestamp and the offset
// of the first record that carries it; (-1, -1) for an empty log.
func (p *Partition) MaxTimestamp() (timestamp, offset int64, err error) {
	ts, last := p.log.MaxTimestamp()
	if last < 0 {
		return -1, -1, nil
	}
	b, base, err := p.readBatchAt(last)
	if err != nil {
		return -1, -1, err
	}
	h, err := rb.ParseHeader(b)
	if err != nil {
		return -1, -1, err
	}
	offset = last
	if h.LogAppendTime() {
		return ts, base, nil // every record of the batch has the append time
	}
	err = batchRecords(b, p.inflateLimit(), func(od int32, td int64) bool {
		if h.BaseTimestamp+td == ts {
			offset = base + int64(od)
			return false
		}
		return true
	})
	if err != nil {
		return -1, -1, err
	}
	return ts, offset, nil
}
