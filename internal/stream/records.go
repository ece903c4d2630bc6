package stream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy/xerial"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Reading the records inside a batch, for the rare questions that need record granularity
// (ListOffsets by timestamp and max timestamp). The write and fetch paths never do this.
//
// Records of a v2 batch (after the 61-byte header, compressed as a whole when codec != 0):
//
//	length varint (zigzag) | attributes int8 | timestampDelta varlong | offsetDelta varint |
//	keyLength varint, key | valueLength varint, value | headerCount varint, headers
//
// Only timestampDelta and offsetDelta are read; the rest of each record is skipped by length.

// maxDecompressedBatchBytes bounds what one batch may inflate to here (a compressed batch is at
// most max.message.bytes, but a hostile one could inflate far more).
const maxDecompressedBatchBytes = 64 << 20

var errDecompressedTooLarge = errors.New("decompressed batch exceeds the limit")

// batchRecords calls fn for each record of a whole batch, in order, until fn returns false.
func batchRecords(batch []byte, fn func(offsetDelta int32, timestampDelta int64) bool) error {
	h, err := parseBatchHeader(batch)
	if err != nil {
		return err
	}
	if h.Length > len(batch) {
		return fmt.Errorf("%w: batch length %d exceeds %d bytes", ErrCorruptBatch, h.Length, len(batch))
	}
	body, err := decompress(int(h.Attributes&7), batch[batchHeaderLen:h.Length], maxDecompressedBatchBytes)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCorruptBatch, err)
	}
	for i := int32(0); i < h.RecordCount && len(body) > 0; i++ {
		n, k := binary.Varint(body)
		if k <= 0 || n < 0 || n > int64(len(body)-k) {
			return fmt.Errorf("%w: bad record length", ErrCorruptBatch)
		}
		rec := body[k : k+int(n)]
		body = body[k+int(n):]
		if len(rec) < 1 {
			return fmt.Errorf("%w: empty record", ErrCorruptBatch)
		}
		tsDelta, k1 := binary.Varint(rec[1:])
		if k1 <= 0 {
			return fmt.Errorf("%w: bad record timestamp", ErrCorruptBatch)
		}
		offDelta, k2 := binary.Varint(rec[1+k1:])
		if k2 <= 0 || offDelta < 0 || offDelta > int64(h.LastOffsetDelta) {
			return fmt.Errorf("%w: bad record offset delta", ErrCorruptBatch)
		}
		if !fn(int32(offDelta), tsDelta) {
			return nil
		}
	}
	return nil
}

// decompress inflates a batch body compressed with Kafka codec c (0 none, 1 gzip, 2 snappy
// (raw or xerial-framed, as the Java client writes it), 3 lz4 frame, 4 zstd).
func decompress(c int, src []byte, max int) ([]byte, error) {
	var out []byte
	var err error
	switch c {
	case 0:
		return src, nil
	case 1:
		var r *gzip.Reader
		if r, err = gzip.NewReader(bytes.NewReader(src)); err == nil {
			out, err = io.ReadAll(io.LimitReader(r, int64(max)+1))
		}
	case 2:
		// Snappy cannot inflate more than a few dozen times, so the input size bounds this.
		out, err = xerial.Decode(src)
	case 3:
		out, err = io.ReadAll(io.LimitReader(lz4.NewReader(bytes.NewReader(src)), int64(max)+1))
	case 4:
		var d *zstd.Decoder
		if d, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(max))); err == nil {
			out, err = d.DecodeAll(src, nil)
			d.Close()
		}
	default:
		return nil, fmt.Errorf("unknown compression codec %d", c)
	}
	if err != nil {
		return nil, err
	}
	if len(out) > max {
		return nil, errDecompressedTooLarge
	}
	return out, nil
}
