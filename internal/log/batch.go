package log

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Record batches are stored exactly as the Kafka RecordBatch v2 layout. The engine
// reads only these big-endian header fields; every other byte is opaque to it:
//
//	offset  size  field
//	0       8     baseOffset            int64, assigned by the log (rewritten in place)
//	8       4     batchLength           int32, bytes after this field (total = 12 + batchLength)
//	12      4     partitionLeaderEpoch  int32, opaque
//	16      1     magic                 int8, must be 2
//	17      4     crc                   uint32, CRC-32C (Castagnoli) of bytes 21..end
//	21      2     attributes            int16, opaque
//	23      4     lastOffsetDelta       int32, last offset = baseOffset + lastOffsetDelta
//	27      8     baseTimestamp         int64, opaque
//	35      8     maxTimestamp          int64, largest record timestamp in the batch
//	43      14    producerId, producerEpoch, baseSequence: opaque
//	57      4     recordCount           int32, opaque
//	61            records (opaque)
//
// baseOffset is outside the CRC, so assigning offsets needs no CRC recomputation.
const (
	batchHeaderLen      = 61
	batchLengthOffset   = 8
	batchMagicOffset    = 16
	batchCRCOffset      = 17
	batchCRCStart       = 21
	batchLastDeltaOff   = 23
	batchMaxTSOffset    = 35
	batchMagicV2        = 2
	batchLogOverhead    = 12 // baseOffset + batchLength
	batchMinLength      = batchHeaderLen - batchLogOverhead
	maxBatchBytes       = 1 << 30 // sanity bound on one batch: no producer sends more
	batchPrefixReadSize = 43      // enough header bytes for offsets, length and max timestamp
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// batchInfo is what the engine knows about a batch.
type batchInfo struct {
	baseOffset int64
	size       int64 // total bytes including the 12-byte log overhead
	lastDelta  int64
	maxTS      int64
}

func (b batchInfo) lastOffset() int64 { return b.baseOffset + b.lastDelta }

// parseBatchPrefix decodes and sanity-checks the first batchPrefixReadSize bytes of a batch
// header. It does not verify the CRC (that needs the whole batch).
func parseBatchPrefix(h []byte) (batchInfo, error) {
	if len(h) < batchPrefixReadSize {
		return batchInfo{}, fmt.Errorf("%w: header truncated (%d bytes)", ErrCorruptBatch, len(h))
	}
	length := int64(int32(binary.BigEndian.Uint32(h[batchLengthOffset:])))
	if length < batchMinLength || length > maxBatchBytes {
		return batchInfo{}, fmt.Errorf("%w: batch length %d out of range", ErrCorruptBatch, length)
	}
	if h[batchMagicOffset] != batchMagicV2 {
		return batchInfo{}, fmt.Errorf("%w: magic %d, want 2", ErrCorruptBatch, int8(h[batchMagicOffset]))
	}
	delta := int64(int32(binary.BigEndian.Uint32(h[batchLastDeltaOff:])))
	if delta < 0 {
		return batchInfo{}, fmt.Errorf("%w: negative lastOffsetDelta %d", ErrCorruptBatch, delta)
	}
	return batchInfo{
		baseOffset: int64(binary.BigEndian.Uint64(h)),
		size:       length + batchLogOverhead,
		lastDelta:  delta,
		maxTS:      int64(binary.BigEndian.Uint64(h[batchMaxTSOffset:])),
	}, nil
}

// checkBatchCRC verifies the CRC-32C of a whole batch b (len(b) == size).
func checkBatchCRC(b []byte) error {
	want := binary.BigEndian.Uint32(b[batchCRCOffset:])
	if got := crc32.Checksum(b[batchCRCStart:], castagnoli); got != want {
		return fmt.Errorf("%w: crc %08x, header says %08x", ErrCorruptBatch, got, want)
	}
	return nil
}

// validateBatches checks that b is a non-empty concatenation of whole, valid v2
// batches and returns their count.
func validateBatches(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, fmt.Errorf("%w: empty append", ErrCorruptBatch)
	}
	n := 0
	for pos := 0; pos < len(b); n++ {
		info, err := parseBatchPrefix(b[pos:])
		if err != nil {
			return 0, fmt.Errorf("cannot validate batch %d at byte %d: %w", n, pos, err)
		}
		end := int64(pos) + info.size
		if end > int64(len(b)) {
			return 0, fmt.Errorf("cannot validate batch %d at byte %d: %w: length %d exceeds the %d bytes given",
				n, pos, ErrCorruptBatch, info.size, len(b)-pos)
		}
		if err := checkBatchCRC(b[pos:end]); err != nil {
			return 0, fmt.Errorf("cannot validate batch %d at byte %d: %w", n, pos, err)
		}
		pos = int(end)
	}
	return n, nil
}
