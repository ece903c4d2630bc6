package stream

import (
	"errors"
	"fmt"

	rb "github.com/yardmq/yard/internal/recordbatch"
)

// Batches are Kafka's RecordBatch v2 (see internal/recordbatch for the byte layout); this
// package checks what producers send and stamps it for the log.

func idempotent(h *rb.Header) bool { return h.ProducerID >= 0 }

// lastSequence is the sequence of the batch's last record; sequences wrap at MaxInt32 as in
// Kafka.
func lastSequence(h *rb.Header) int32 { return addSeq(h.BaseSequence, h.LastOffsetDelta) }

func addSeq(seq, n int32) int32 {
	if int64(seq)+int64(n) > 0x7fffffff {
		return int32(int64(seq) + int64(n) - 0x7fffffff - 1)
	}
	return seq + n
}

// validateProducedBatch checks what a producer sent for one partition: exactly one whole
// v2 batch, a correct CRC, a record count that matches its offset range, no transactional or
// control batch (transactions are not served), and at most maxBytes in size. This is the one
// CRC computation of a produced batch: the log is told it was checked.
func validateProducedBatch(b []byte, maxBytes int) (rb.Header, error) {
	if len(b) == 0 {
		return rb.Header{}, fmt.Errorf("%w: no record batch", ErrInvalidRecord)
	}
	if len(b) > rb.OffMagic && b[rb.OffMagic] != rb.MagicV2 {
		// What Kafka answers from Produce v3 on: only the v2 batch format is accepted.
		return rb.Header{}, fmt.Errorf("%w: record batch magic %d, only 2 is accepted", ErrInvalidRecord, b[rb.OffMagic])
	}
	h, err := rb.ParseHeader(b)
	if err != nil {
		return h, err
	}
	if h.Length > len(b) {
		return h, fmt.Errorf("%w: batch length %d exceeds the %d bytes sent", ErrCorruptBatch, h.Length, len(b))
	}
	if h.Length < len(b) {
		return h, fmt.Errorf("%w: a produce request must hold exactly one record batch per partition", ErrInvalidRecord)
	}
	if h.Length > maxBytes {
		return h, fmt.Errorf("%w: batch of %d bytes exceeds max.message.bytes %d", ErrMessageTooLarge, h.Length, maxBytes)
	}
	if err := rb.CheckCRC(b); err != nil {
		return h, err
	}
	if h.RecordCount <= 0 || h.LastOffsetDelta != h.RecordCount-1 {
		return h, fmt.Errorf("%w: record count %d does not match last offset delta %d", ErrCorruptBatch, h.RecordCount, h.LastOffsetDelta)
	}
	if h.Control() {
		// Only the transaction coordinator writes markers (Kafka's InvalidRecordException).
		return h, fmt.Errorf("%w: a producer may not write control batches", ErrInvalidRecord)
	}
	if h.Transactional() && h.ProducerID < 0 {
		return h, fmt.Errorf("%w: transactional batch without a producer ID", ErrInvalidRecord)
	}
	if idempotent(&h) && (h.ProducerEpoch < 0 || h.BaseSequence < 0) {
		return h, fmt.Errorf("%w: idempotent batch without epoch or sequence", ErrInvalidRecord)
	}
	return h, nil
}

// Errors of the produce path; the Kafka front end maps each to its protocol error code.
var (
	ErrCorruptBatch         = rb.ErrCorruptBatch
	ErrInvalidRecord        = rb.ErrInvalidRecord
	ErrMessageTooLarge      = errors.New("record batch too large")
	ErrOutOfOrderSequence   = errors.New("out of order sequence number")
	ErrInvalidProducerEpoch = errors.New("invalid producer epoch")
)
