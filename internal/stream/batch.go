package stream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// A record batch, Kafka's RecordBatch v2 layout (big-endian), as this package reads it:
//
//	offset  size  field
//	 0      8     baseOffset            assigned by the log
//	 8      4     batchLength           bytes after this field
//	12      4     partitionLeaderEpoch  set by us (leaderEpoch); not covered by the CRC
//	16      1     magic                 must be 2
//	17      4     crc                   CRC-32C of bytes 21..end
//	21      2     attributes            bits 0-2 codec, 3 timestamp type, 4 transactional, 5 control
//	23      4     lastOffsetDelta
//	27      8     baseTimestamp
//	35      8     maxTimestamp          set to the append time for LogAppendTime topics
//	43      8     producerId            -1 = not idempotent
//	51      2     producerEpoch
//	53      4     baseSequence
//	57      4     recordCount
//	61      ...   records (compressed as a whole when codec != 0; opaque to us)
const (
	batchHeaderLen = 61
	// batchLogOverhead is the baseOffset and batchLength fields, which batchLength excludes.
	batchLogOverhead = 12

	offLeaderEpoch   = 12
	offMagic         = 16
	offCRC           = 17
	offAttributes    = 21
	offLastDelta     = 23
	offBaseTimestamp = 27
	offMaxTimestamp  = 35
	offProducerID    = 43
	offProducerEpoch = 51
	offBaseSequence  = 53
	offRecordCount   = 57

	attrTimestampLogAppend = 1 << 3
	attrTransactional      = 1 << 4
	attrControl            = 1 << 5
)

// leaderEpoch is the partition leader epoch of every partition: one node, never re-elected.
const leaderEpoch = 0

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// batchHeader is the parsed fixed part of a batch.
type batchHeader struct {
	Length          int // whole batch, including baseOffset and batchLength
	Attributes      int16
	LastOffsetDelta int32
	BaseTimestamp   int64
	MaxTimestamp    int64
	ProducerID      int64
	ProducerEpoch   int16
	BaseSequence    int32
	RecordCount     int32
}

func (h *batchHeader) idempotent() bool { return h.ProducerID >= 0 }

// lastSequence is the sequence of the batch's last record; sequences wrap at MaxInt32 as in
// Kafka.
func (h *batchHeader) lastSequence() int32 { return addSeq(h.BaseSequence, h.LastOffsetDelta) }

func addSeq(seq, n int32) int32 {
	if int64(seq)+int64(n) > 0x7fffffff {
		return int32(int64(seq) + int64(n) - 0x7fffffff - 1)
	}
	return seq + n
}

// parseBatchHeader reads the fixed header at the start of b (at least batchHeaderLen bytes;
// the records need not follow) without checking the CRC.
func parseBatchHeader(b []byte) (batchHeader, error) {
	if len(b) < batchHeaderLen {
		return batchHeader{}, fmt.Errorf("%w: %d bytes is shorter than a batch header", ErrCorruptBatch, len(b))
	}
	n := int64(int32(binary.BigEndian.Uint32(b[8:]))) + batchLogOverhead
	if n < batchHeaderLen {
		return batchHeader{}, fmt.Errorf("%w: batch length %d is shorter than its header", ErrCorruptBatch, n)
	}
	if b[offMagic] != 2 {
		return batchHeader{}, fmt.Errorf("%w: magic %d, only 2 is supported", ErrCorruptBatch, b[offMagic])
	}
	return batchHeader{
		Length:          int(n),
		Attributes:      int16(binary.BigEndian.Uint16(b[offAttributes:])),
		LastOffsetDelta: int32(binary.BigEndian.Uint32(b[offLastDelta:])),
		BaseTimestamp:   int64(binary.BigEndian.Uint64(b[offBaseTimestamp:])),
		MaxTimestamp:    int64(binary.BigEndian.Uint64(b[offMaxTimestamp:])),
		ProducerID:      int64(binary.BigEndian.Uint64(b[offProducerID:])),
		ProducerEpoch:   int16(binary.BigEndian.Uint16(b[offProducerEpoch:])),
		BaseSequence:    int32(binary.BigEndian.Uint32(b[offBaseSequence:])),
		RecordCount:     int32(binary.BigEndian.Uint32(b[offRecordCount:])),
	}, nil
}

// validateProducedBatch checks what a producer sent for one partition: exactly one whole
// v2 batch, a correct CRC, a record count that matches its offset range, no transactional or
// control batch (transactions are not served), and at most maxBytes in size.
func validateProducedBatch(b []byte, maxBytes int) (batchHeader, error) {
	if len(b) == 0 {
		return batchHeader{}, fmt.Errorf("%w: no record batch", ErrInvalidRecord)
	}
	if len(b) > offMagic && b[offMagic] != 2 {
		// What Kafka answers from Produce v3 on: only the v2 batch format is accepted.
		return batchHeader{}, fmt.Errorf("%w: record batch magic %d, only 2 is accepted", ErrInvalidRecord, b[offMagic])
	}
	h, err := parseBatchHeader(b)
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
	if want := binary.BigEndian.Uint32(b[offCRC:]); crc32.Checksum(b[offAttributes:], castagnoli) != want {
		return h, fmt.Errorf("%w: CRC mismatch", ErrCorruptBatch)
	}
	if h.RecordCount <= 0 || h.LastOffsetDelta != h.RecordCount-1 {
		return h, fmt.Errorf("%w: record count %d does not match last offset delta %d", ErrCorruptBatch, h.RecordCount, h.LastOffsetDelta)
	}
	if h.Attributes&(attrTransactional|attrControl) != 0 {
		return h, fmt.Errorf("%w: transactional and control batches are not supported", ErrInvalidRecord)
	}
	if h.idempotent() && (h.ProducerEpoch < 0 || h.BaseSequence < 0) {
		return h, fmt.Errorf("%w: idempotent batch without epoch or sequence", ErrInvalidRecord)
	}
	return h, nil
}

// stampBatch prepares a validated batch for the log: our leader epoch, and for LogAppendTime
// topics the append time in maxTimestamp with the timestamp-type bit set (what Kafka does: the
// records keep their deltas, readers use maxTimestamp). The CRC covers attributes and
// timestamps, so it is recomputed when they change.
func stampBatch(b []byte, logAppendTimeMs int64) {
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], leaderEpoch)
	if logAppendTimeMs < 0 {
		return
	}
	attrs := binary.BigEndian.Uint16(b[offAttributes:]) | attrTimestampLogAppend
	binary.BigEndian.PutUint16(b[offAttributes:], attrs)
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(logAppendTimeMs))
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
}

// Errors of the produce path; the Kafka front end maps each to its protocol error code.
var (
	ErrCorruptBatch         = errors.New("corrupt record batch")
	ErrInvalidRecord        = errors.New("invalid record")
	ErrMessageTooLarge      = errors.New("record batch too large")
	ErrOutOfOrderSequence   = errors.New("out of order sequence number")
	ErrInvalidProducerEpoch = errors.New("invalid producer epoch")
)
