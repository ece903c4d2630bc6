package log

import (
	"github.com/yardmq/yard/internal/recordbatch"
)

// Record batches are stored exactly as the Kafka RecordBatch v2 layout (documented byte by
// byte in internal/recordbatch). The engine reads only the header fields of
// recordbatch.Prefix (baseOffset, batchLength, magic, lastOffsetDelta, maxTimestamp) and the
// CRC; every other byte is opaque to it. baseOffset is outside the CRC, so assigning offsets
// needs no CRC recomputation.
const (
	batchHeaderLen      = recordbatch.HeaderLen
	batchPrefixReadSize = recordbatch.PrefixLen // enough header bytes for offsets, length and max timestamp
)

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
	p, err := recordbatch.ParsePrefix(h)
	if err != nil {
		return batchInfo{}, err
	}
	return batchInfo{baseOffset: p.BaseOffset, size: p.Size, lastDelta: p.LastOffsetDelta, maxTS: p.MaxTimestamp}, nil
}

// checkBatchCRC verifies the CRC-32C of a whole batch b (len(b) == size).
func checkBatchCRC(b []byte) error { return recordbatch.CheckCRC(b) }

// validateBatches checks that b is a non-empty concatenation of whole, valid v2
// batches and returns their count.
func validateBatches(b []byte) (int, error) { return recordbatch.Validate(b) }
