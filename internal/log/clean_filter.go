package log

// What one cleaning keeps of each batch (Kafka's Cleaner.cleanInto with its RecordFilter and
// CleanedTransactionMetadata); see the comment at the top of clean.go.

import (
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/yardmq/yard/internal/recordbatch"
)

// cleanRound is the state of one cleaning, carried from group to group in offset order.
type cleanRound struct {
	cc        *CleanConfig
	m         *offsetMap
	now       int64 // when the cleaning started (ms)
	retention int64 // delete.retention.ms, >= 0
	producers map[int64]ProducerLast
	// Producers with a transactional batch seen since their last marker: of a committed (or
	// unknown) transaction, of an aborted one. A marker stays while either holds.
	committed, aborted map[int64]bool
	body, recs, out    []byte // scratch
}

// onData notes a data batch and reports whether all of it may go (an aborted transaction's).
func (cr *cleanRound) onData(h *recordbatch.Header) bool {
	if !h.Transactional() {
		return false
	}
	if cr.cc.aborted(h) {
		cr.aborted[h.ProducerID] = true
		return true
	}
	cr.committed[h.ProducerID] = true
	return false
}

// onMarker notes a control batch and reports whether it may go once its delete horizon is
// past: a commit or abort marker none of whose transaction's batches is left before it (Kafka
// looks only at batches of the same outcome; yard at any transactional batch of the producer
// since its previous marker, so that a producer-state rebuild never finds a transaction
// without its end), or an empty control batch (already cleaned).
func (cr *cleanRound) onMarker(batch []byte, h *recordbatch.Header) (bool, error) {
	if h.RecordCount == 0 {
		return true, nil
	}
	typ := int16(-1)
	err := forEachRecord(batch, h, func(r *recordbatch.Record) {
		if typ == -1 && len(r.Key) >= 4 {
			typ = int16(binary.BigEndian.Uint16(r.Key[2:]))
		}
	})
	if err != nil {
		return false, err
	}
	if typ != 0 && typ != 1 { // 0 abort, 1 commit; other control records stay
		return false, nil
	}
	pid := h.ProducerID
	pending := cr.committed[pid] || cr.aborted[pid]
	delete(cr.committed, pid)
	delete(cr.aborted, pid)
	return !pending, nil
}

// isLast reports whether the batch is the one that keeps its producer's state: the one that
// holds its last data offset, or, for a producer without data batches, a marker of its epoch.
func (cr *cleanRound) isLast(h *recordbatch.Header) bool {
	p, ok := cr.producers[h.ProducerID]
	if !ok || h.ProducerID < 0 {
		return false
	}
	if p.LastDataOffset >= 0 {
		return h.LastOffset() == p.LastDataOffset
	}
	return h.Control() && h.ProducerEpoch == p.Epoch
}

// filter decides what stays of a batch: nil (it goes), batch itself, or a rewritten copy
// (rewritten true; valid until the next call). keep is how many records stay.
func (cr *cleanRound) filter(batch []byte, h *recordbatch.Header) (out []byte, keep int, rewritten bool, err error) {
	var discardable bool
	if h.Control() {
		if discardable, err = cr.onMarker(batch, h); err != nil {
			return nil, 0, false, err
		}
	} else {
		discardable = cr.onData(h)
	}
	horizon, hasHorizon := h.DeleteHorizon()
	discardRecords := discardable
	if h.Control() {
		discardRecords = discardable && hasHorizon && horizon <= cr.now &&
			(!cr.cc.LimitMarkers || h.BaseOffset < cr.cc.MarkersBelow)
	}
	retainEmpty := cr.isLast(h)
	if discardRecords && !retainEmpty {
		return nil, 0, false, nil
	}
	body, err := recordbatch.Body(batch, h, cr.body, recordbatch.InflateLimit(len(batch)))
	if err != nil {
		return nil, 0, false, fmt.Errorf("cannot read batch at offset %d: %w", h.BaseOffset, err)
	}
	if h.Codec() != recordbatch.CodecNone {
		cr.body = body // a scratch buffer, never the batch itself
	}
	stays := func(r *recordbatch.Record) bool {
		switch {
		case discardRecords:
			return false // kept, empty, for its producer's state only
		case h.Control(), r.Key == nil:
			return true // keyless records cannot reach a compacted topic but would stay
		}
		if latest, ok := cr.m.keys[md5.Sum(r.Key)]; ok && h.BaseOffset+int64(r.OffsetDelta) < latest {
			return false
		}
		return r.Value != nil || !hasHorizon || cr.now < horizon
	}
	tombstones := false
	it := recordbatch.NewRecords(body, h.RecordCount)
	var r recordbatch.Record
	for it.Next(&r) {
		if stays(&r) {
			keep++
			tombstones = tombstones || r.Value == nil
		}
	}
	if err := it.Err(); err != nil {
		return nil, 0, false, fmt.Errorf("cannot read batch at offset %d: %w", h.BaseOffset, err)
	}
	if keep == 0 {
		if !retainEmpty {
			return nil, 0, false, nil
		}
		if h.RecordCount == 0 && h.Attributes&(recordbatch.AttrCodecMask|recordbatch.AttrDeleteHorizon) == 0 {
			return batch, 0, false, nil // emptied by an earlier cleaning
		}
		// Kafka's empty batch: the header alone, uncompressed, stamped with its max timestamp.
		nh := *h
		nh.Attributes &^= recordbatch.AttrCodecMask | recordbatch.AttrDeleteHorizon
		nh.BaseTimestamp, nh.RecordCount = h.MaxTimestamp, 0
		cr.out = recordbatch.Finish(recordbatch.AppendHeader(cr.out[:0], &nh), 0)
		return cr.out, 0, true, nil
	}
	// The first cleaning that keeps a tombstone or a removable marker writes the horizon.
	setHorizon := (tombstones || (discardable && h.Control())) && !hasHorizon
	if keep == int(h.RecordCount) && !setHorizon {
		return batch, keep, false, nil
	}
	nh := *h
	nh.RecordCount = int32(keep)
	if setHorizon {
		nh.Attributes |= recordbatch.AttrDeleteHorizon
		nh.BaseTimestamp = cr.now + min(cr.retention, math.MaxInt64-max(cr.now, 0))
	}
	// Records keep their timestamps: their deltas follow the new base timestamp.
	recs := cr.recs[:0]
	it = recordbatch.NewRecords(body, h.RecordCount)
	for it.Next(&r) {
		if stays(&r) {
			r.TimestampDelta += h.BaseTimestamp - nh.BaseTimestamp
			recs = r.AppendTo(recs)
		}
	}
	cr.recs = recs
	out = recordbatch.AppendHeader(cr.out[:0], &nh)
	if out, err = recordbatch.Compress(out, h.Codec(), recs); err != nil {
		return nil, 0, false, fmt.Errorf("cannot rewrite batch at offset %d: %w", h.BaseOffset, err)
	}
	cr.out = recordbatch.Finish(out, 0)
	return cr.out, keep, true, nil
}
