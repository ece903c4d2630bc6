package stream

// Transactions on a partition (Kafka's KIP-98, as the partition leader sees them). A
// transactional producer's batches carry the transactional attribute; the first one of a
// producer opens its transaction on the partition (ongoing: producer ID -> first offset). The
// transaction coordinator (internal/txn) ends it with a marker, a control batch of one record
// (WriteMarker): key int16 version 0 | int16 type (0 abort, 1 commit); value int16 version 0 |
// int32 coordinator epoch.
//
// The last stable offset (LSO) is the first offset of the earliest transaction still open
// here, else the high watermark: read_committed consumers read below it only. Aborted
// transactions are kept in an index (producer ID, first offset, marker offset), in offset
// order, so that a read_committed fetch can tell the client which producers' records to drop
// in the range it returns (Kafka keeps the same index in .txnindex files). Both are derived
// from the log: rebuilt by the producer-state scan on open (producer.go) and saved with the
// producer snapshots (snapshot.go). Entries of the index that retention left behind the log
// start are dropped.

import (
	"context"
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/yardmq/yard/internal/log"
	rb "github.com/yardmq/yard/internal/recordbatch"
)

// Control record types (the key's second int16).
const (
	ControlAbort  = 0
	ControlCommit = 1
)

// AbortedTxn is one aborted transaction of a partition: the producer, the first offset of its
// transaction and the offset of the abort marker.
type AbortedTxn struct {
	ProducerID  int64
	FirstOffset int64
	LastOffset  int64
}

// appendControlBatch builds a marker batch for the producer.
func appendControlBatch(dst []byte, pid int64, epoch int16, coordinatorEpoch int32, commit bool, nowMs int64) []byte {
	h := rb.NewHeader(1, nowMs)
	h.Attributes = rb.AttrTransactional | rb.AttrControl
	h.ProducerID, h.ProducerEpoch = pid, epoch
	start := len(dst)
	dst = rb.AppendHeader(dst, &h)
	typ := int16(ControlAbort)
	if commit {
		typ = ControlCommit
	}
	key := binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, 0), uint16(typ))
	val := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint16(nil, 0), uint32(coordinatorEpoch))
	r := rb.Record{Key: key, Value: val}
	dst = r.AppendTo(dst)
	return rb.Finish(dst, start)
}

// controlType decodes the type of a control batch's record (ControlAbort, ControlCommit);
// ok is false for a control record of another type or a malformed one.
func controlType(batch []byte, h *rb.Header) (typ int16, ok bool) {
	if h.Codec() != rb.CodecNone || h.RecordCount != 1 || len(batch) < h.Length {
		return 0, false
	}
	it := rb.NewRecords(batch[rb.HeaderLen:h.Length], 1)
	var r rb.Record
	if !it.Next(&r) || len(r.Key) < 4 {
		return 0, false
	}
	typ = int16(binary.BigEndian.Uint16(r.Key[2:]))
	return typ, typ == ControlAbort || typ == ControlCommit
}

// WriteMarker ends the producer's transaction on this partition with a commit or abort
// marker and waits until the marker is durable. The marker carries epoch, which fences
// older epochs of the producer here. A partition where the producer wrote nothing still gets
// the marker, as in Kafka.
//
// On a replicated partition the marker is a command of the partition's group
// (replica_internal.go), proposed from any member (forwarded to the leader) and applied by
// every member alike; it returns once the marker is committed and applied on this node.
func (p *Partition) WriteMarker(ctx context.Context, pid int64, epoch int16, coordinatorEpoch int32, commit bool) error {
	if r := p.replicaOf(); r != nil {
		return p.writeMarkerReplicated(ctx, r, pid, epoch, coordinatorEpoch, commit)
	}
	now := p.Topic.m.cfg.Now().UnixMilli()
	batch := appendControlBatch(nil, pid, epoch, coordinatorEpoch, commit, now)
	p.mu.Lock()
	rb.Stamp(batch, p.LeaderEpoch(), -1)
	res, err := p.appendLogLocked(batch)
	if err != nil {
		p.mu.Unlock()
		return fmt.Errorf("cannot write transaction marker to %s-%d: %w", p.Topic.Name, p.Index, err)
	}
	p.endTxnLocked(pid, epoch, commit, res.BaseOffset, now)
	p.mu.Unlock()
	return p.WaitDurable(ctx, res.LastOffset)
}

// endTxnLocked applies a marker at offset markerOffset to the transaction state. p.mu held
// (or the partition not yet shared).
func (p *Partition) endTxnLocked(pid int64, epoch int16, commit bool, markerOffset, nowMs int64) {
	if first, ok := p.ongoing[pid]; ok {
		delete(p.ongoing, pid)
		if !commit {
			p.aborted = append(p.aborted, AbortedTxn{ProducerID: pid, FirstOffset: first, LastOffset: markerOffset})
		}
	}
	p.noteEpochLocked(pid, epoch, nowMs)
	// Drop index entries retention has passed.
	start := p.log.StartOffset()
	i := 0
	for i < len(p.aborted) && p.aborted[i].LastOffset < start {
		i++
	}
	if i > 0 {
		p.aborted = append(p.aborted[:0], p.aborted[i:]...)
	}
}

// noteEpochLocked applies a marker's producer epoch (a newer one fences the older and
// forgets its batches). p.mu held (or the partition not yet shared).
func (p *Partition) noteEpochLocked(pid int64, epoch int16, nowMs int64) {
	s := p.producers[pid]
	if s == nil {
		s = &producerState{epoch: epoch, batches: make([]seqEntry, 0, producerBatchWindow)}
		p.producers[pid] = s
	} else if epoch > s.epoch {
		s.epoch, s.batches = epoch, s.batches[:0]
	}
	s.lastSeenMs = nowMs
}

// beginTxnLocked records a transactional batch written at baseOffset. p.mu held.
func (p *Partition) beginTxnLocked(pid int64, baseOffset int64) {
	if _, ok := p.ongoing[pid]; !ok {
		p.ongoing[pid] = baseOffset
	}
}

// isAborted reports whether producer pid's transactional batch at offset belongs to an
// aborted transaction (for the log cleaner, which removes such records).
func (p *Partition) isAborted(pid, offset int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	// A producer's transactions follow one another: its first entry ending at or after
	// offset is the only one that can hold it.
	for _, a := range p.aborted[sort.Search(len(p.aborted), func(i int) bool { return p.aborted[i].LastOffset >= offset }):] {
		if a.ProducerID == pid {
			return a.FirstOffset <= offset
		}
	}
	return false
}

// LastStableOffset is the first offset of the earliest transaction still open on the
// partition, or the high watermark if it is lower (or no transaction is open).
func (p *Partition) LastStableOffset() int64 {
	hw := p.log.HighWatermark()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lsoLocked(hw)
}

func (p *Partition) lsoLocked(hw int64) int64 {
	lso := hw
	for _, first := range p.ongoing {
		lso = min(lso, first)
	}
	return lso
}

// ReadCommitted is Read for a read_committed consumer: whole batches below the last stable
// offset only, with the aborted transactions that overlap the batches returned (an empty
// list when there are none). rr is nil when nothing is stable at offset yet.
func (p *Partition) ReadCommitted(offset int64, maxBytes int) (rr *log.ReadResult, lso int64, aborted []AbortedTxn, err error) {
	hw := p.log.HighWatermark()
	p.mu.Lock()
	lso = p.lsoLocked(hw)
	p.mu.Unlock()
	if offset >= lso {
		if offset > hw || offset < p.log.StartOffset() {
			return nil, lso, nil, fmt.Errorf("cannot read %s-%d at %d: %w", p.Topic.Name, p.Index, offset, log.ErrOffsetOutOfRange)
		}
		return nil, lso, nil, nil
	}
	rr, err = p.log.Read(offset, maxBytes)
	if err != nil {
		return nil, lso, nil, err
	}
	end, err := cutAt(rr, lso)
	if err != nil {
		rr.Release()
		return nil, lso, nil, err
	}
	if rr.Bytes == 0 {
		rr.Release()
		return nil, lso, nil, nil
	}
	p.mu.Lock()
	// Entries are in marker order; those whose marker is before offset do not concern us.
	i := sort.Search(len(p.aborted), func(i int) bool { return p.aborted[i].LastOffset >= offset })
	for _, a := range p.aborted[i:] {
		if a.FirstOffset < end {
			aborted = append(aborted, a)
		}
	}
	p.mu.Unlock()
	if aborted == nil {
		aborted = []AbortedTxn{}
	}
	return rr, lso, aborted, nil
}

// cutAt drops the batches of rr whose base offset is at or after lso and returns the offset
// after the last batch kept.
func cutAt(rr *log.ReadResult, lso int64) (int64, error) {
	var buf [rb.OffLastOffsetDelta + 4]byte
	end := int64(-1)
	var total int64
	for i, r := range rr.Ranges {
		for pos := r.Pos; pos < r.Pos+r.Len; {
			if _, err := r.File.ReadAt(buf[:], pos); err != nil {
				return 0, fmt.Errorf("cannot read batch header: %w", err)
			}
			base := int64(binary.BigEndian.Uint64(buf[rb.OffBaseOffset:]))
			n := int64(binary.BigEndian.Uint32(buf[rb.OffLength:])) + rb.LogOverhead
			if base >= lso {
				rr.Ranges[i].Len = pos - r.Pos
				total += rr.Ranges[i].Len
				rr.Ranges = rr.Ranges[:i+1]
				if rr.Ranges[i].Len == 0 {
					rr.Ranges = rr.Ranges[:i]
				}
				rr.Bytes = total
				return end, nil
			}
			end = base + int64(int32(binary.BigEndian.Uint32(buf[rb.OffLastOffsetDelta:]))) + 1
			pos += n
		}
		total += r.Len
	}
	return end, nil
}
