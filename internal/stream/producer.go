package stream

import (
	"errors"
	"fmt"

	"github.com/yardmq/yard/internal/log"
	rb "github.com/yardmq/yard/internal/recordbatch"
)

// Idempotent producers (Kafka's KIP-98 without transactions). A producer gets an ID and epoch
// from InitProducerId and numbers its records per partition; each batch carries the sequence
// of its first record. Per partition and producer we remember the epoch and the last
// producerBatchWindow batches written (their sequence ranges and offsets), which is how many a
// Kafka producer may have in flight. A batch that repeats one of them exactly is a retry: it is
// answered with the original offsets and not appended. Any other batch must continue the
// sequence where the last one ended, else OUT_OF_ORDER_SEQUENCE_NUMBER.
//
// The state is derived from the log only (every batch header carries producer ID, epoch and
// base sequence), so after a restart or crash it is rebuilt by scanning batch headers from the
// last snapshot (snapshot.go) on: a batch that reached the log before the crash is recognised
// when the producer retries it.

// producerBatchWindow is Kafka's max.in.flight.requests.per.connection limit for idempotence.
const producerBatchWindow = 5

type seqEntry struct {
	firstSeq, lastSeq       int32
	firstOffset, lastOffset int64
	appendTime              int64
}

type producerState struct {
	epoch      int16
	batches    []seqEntry // oldest first, at most producerBatchWindow
	lastSeenMs int64      // when it last wrote here (batch timestamp while rebuilding)
}

// checkSequence decides about an idempotent batch: a duplicate (returned), acceptable (nil,
// nil) or refused. p.mu must be held.
func (p *Partition) checkSequence(h *rb.Header) (*seqEntry, error) {
	s := p.producers[h.ProducerID]
	if s != nil && h.ProducerEpoch < s.epoch {
		// Fenced: a newer epoch wrote here (a batch or a transaction marker).
		return nil, fmt.Errorf("%w: producer %d epoch %d is older than the current epoch %d", ErrInvalidProducerEpoch, h.ProducerID, h.ProducerEpoch, s.epoch)
	}
	if s == nil || len(s.batches) == 0 {
		// Unknown producer: new, or idle beyond the rebuild window. Accept any sequence, as
		// Kafka does when a producer's state has expired.
		return nil, nil
	}
	switch {
	case h.ProducerEpoch < s.epoch:
		return nil, fmt.Errorf("%w: producer %d epoch %d is older than the current epoch %d", ErrInvalidProducerEpoch, h.ProducerID, h.ProducerEpoch, s.epoch)
	case h.ProducerEpoch > s.epoch:
		if h.BaseSequence != 0 {
			return nil, fmt.Errorf("%w: producer %d started epoch %d at sequence %d, not 0", ErrOutOfOrderSequence, h.ProducerID, h.ProducerEpoch, h.BaseSequence)
		}
		return nil, nil
	}
	last := lastSequence(h)
	for i := range s.batches {
		if e := &s.batches[i]; e.firstSeq == h.BaseSequence && e.lastSeq == last {
			return e, nil
		}
	}
	if want := addSeq(s.batches[len(s.batches)-1].lastSeq, 1); h.BaseSequence != want {
		return nil, fmt.Errorf("%w: producer %d sent sequence %d, expected %d", ErrOutOfOrderSequence, h.ProducerID, h.BaseSequence, want)
	}
	return nil, nil
}

// recordBatch remembers a batch written by an idempotent producer. p.mu must be held (or the
// partition not yet shared, during rebuild).
func (p *Partition) recordBatch(h *rb.Header, baseOffset, appendTime, seenMs int64) {
	s := p.producers[h.ProducerID]
	if s == nil || s.epoch != h.ProducerEpoch {
		s = &producerState{epoch: h.ProducerEpoch, batches: make([]seqEntry, 0, producerBatchWindow)}
		p.producers[h.ProducerID] = s
	}
	s.lastSeenMs = seenMs
	if len(s.batches) == producerBatchWindow {
		copy(s.batches, s.batches[1:])
		s.batches = s.batches[:producerBatchWindow-1]
	}
	s.batches = append(s.batches, seqEntry{
		firstSeq: h.BaseSequence, lastSeq: lastSequence(h),
		firstOffset: baseOffset, lastOffset: baseOffset + int64(h.LastOffsetDelta),
		appendTime: appendTime,
	})
}

// rebuildScanBytes is how much one log read covers while rebuilding producer state.
const rebuildScanBytes = 1 << 20

// rebuildProducerState replays batch headers from offset from (where the loaded snapshot ends,
// or 0) to the end of the log. A rebuilt producer counts as seen now, so that its expiry runs
// from the restart whatever timestamps its batches carry.
func (p *Partition) rebuildProducerState(from int64) error {
	now := p.Topic.m.cfg.Now().UnixMilli()
	off := max(from, p.log.StartOffset())
	for off < p.log.HighWatermark() {
		rr, err := p.log.Read(off, rebuildScanBytes)
		if errors.Is(err, log.ErrOffsetOutOfRange) {
			return nil // retention moved the start past us: nothing left to scan
		}
		if err != nil {
			return err
		}
		next := off
		err = forEachBatchHeader(rr, func(h *rb.Header, f log.File, pos int64) error {
			base := h.BaseOffset
			next = base + int64(h.LastOffsetDelta) + 1
			switch {
			case h.Control():
				if h.ProducerID < 0 {
					return nil
				}
				b := make([]byte, h.Length)
				if _, err := f.ReadAt(b, pos); err != nil {
					return fmt.Errorf("cannot read control batch at %d: %w", base, err)
				}
				if typ, ok := controlType(b, h); ok {
					p.endTxnLocked(h.ProducerID, h.ProducerEpoch, typ == ControlCommit, base, now)
				} else if h.RecordCount == 0 {
					// A marker the log cleaner emptied, kept for the producer's epoch.
					p.noteEpochLocked(h.ProducerID, h.ProducerEpoch, now)
				}
			case idempotent(h):
				t := int64(-1)
				if h.LogAppendTime() {
					t = h.MaxTimestamp
				}
				p.recordBatch(h, base, t, now)
				if h.Transactional() {
					p.beginTxnLocked(h.ProducerID, base)
				}
			}
			return nil
		})
		rr.Release()
		if err != nil {
			return err
		}
		if next <= off {
			return nil // nothing readable (should not happen below the high watermark)
		}
		off = next
	}
	return nil
}

// expireProducers forgets producers that have not written since cutoffMs, as Kafka does after
// producer.id.expiration.ms, so that short-lived producers do not accumulate forever.
func (p *Partition) expireProducers(cutoffMs int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, s := range p.producers {
		if s.lastSeenMs < cutoffMs {
			delete(p.producers, id)
		}
	}
}
