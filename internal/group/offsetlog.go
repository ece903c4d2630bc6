package group

// The committed-offsets log: one internal/log.Log (by default <data-dir>/__consumer_offsets/)
// whose batches are in the Kafka RecordBatch v2 layout the log engine requires, each holding
// the records of one OffsetCommit (or of one snapshot chunk), so a commit is atomic.
//
// Batch (big-endian), as written here:
//
//	offset  size  field
//	 0      8     baseOffset            0; assigned by the log
//	 8      4     batchLength           bytes after this field
//	12      4     partitionLeaderEpoch  0
//	16      1     magic                 2
//	17      4     crc                   CRC-32C (Castagnoli) of bytes 21..end
//	21      2     attributes            0 (no compression, create time)
//	23      4     lastOffsetDelta       recordCount-1
//	27      8     baseTimestamp         unix ms of the write
//	35      8     maxTimestamp          same
//	43      8     producerId            -1
//	51      2     producerEpoch         -1
//	53      4     baseSequence          -1
//	57      4     recordCount           n >= 1
//	61      ...   n records
//
// Record (Kafka's v2 record; varints are zigzag, as encoding/binary's Varint):
//
//	varint length (of what follows) | int8 attributes 0 | varint timestampDelta 0 |
//	varint offsetDelta i | varint keyLen | key | varint valueLen (-1 = tombstone) | value |
//	varint headerCount 0
//
// Key, version 1 (int16 strings are a big-endian int16 length then UTF-8 bytes):
//
//	int16 version=1 | int16-string group | int16-string topic | int32 partition
//
// Value, version 1 (absent = tombstone: the offset was deleted or expired):
//
//	int16 version=1 | int64 offset | int32 leaderEpoch | int16-string metadata |
//	int64 commitTimestampMs
//
// Replay applies records in log order; the last record of a key wins. A snapshot is the live
// state appended as fresh batches, after which everything before its first offset is dropped
// (DeleteRecordsBefore), so replay from the log start rebuilds the same state.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

const (
	batchHeaderLen   = 61
	batchLogOverhead = 12
	recordKeyVersion = 1
	recordValVersion = 1
	maxStringLen     = math.MaxInt16
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errCorruptRecord marks an offsets-log batch or record that cannot be decoded.
var errCorruptRecord = errors.New("corrupt offsets log record")

// offsetRecord is one key and its value (nil value = tombstone).
type offsetRecord struct {
	Group string
	TopicPartition
	Value *OffsetValue
}

// appendBatch encodes recs as one batch at the end of dst.
func appendBatch(dst []byte, recs []offsetRecord, nowMs int64) []byte {
	if len(recs) == 0 {
		panic("BUG: empty offsets batch")
	}
	start := len(dst)
	dst = append(dst, make([]byte, batchHeaderLen)...)
	h := dst[start:]
	binary.BigEndian.PutUint64(h[0:], 0)
	binary.BigEndian.PutUint32(h[12:], 0)
	h[16] = 2
	binary.BigEndian.PutUint16(h[21:], 0)
	binary.BigEndian.PutUint32(h[23:], uint32(len(recs)-1))
	binary.BigEndian.PutUint64(h[27:], uint64(nowMs))
	binary.BigEndian.PutUint64(h[35:], uint64(nowMs))
	binary.BigEndian.PutUint64(h[43:], math.MaxUint64) // -1
	binary.BigEndian.PutUint16(h[51:], math.MaxUint16)
	binary.BigEndian.PutUint32(h[53:], math.MaxUint32)
	binary.BigEndian.PutUint32(h[57:], uint32(len(recs)))
	var body []byte
	for i := range recs {
		body = appendRecordBody(body[:0], &recs[i], int64(i))
		dst = binary.AppendVarint(dst, int64(len(body)))
		dst = append(dst, body...)
	}
	b := dst[start:]
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-batchLogOverhead))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return dst
}

func appendRecordBody(dst []byte, r *offsetRecord, offsetDelta int64) []byte {
	dst = append(dst, 0)              // attributes
	dst = binary.AppendVarint(dst, 0) // timestamp delta
	dst = binary.AppendVarint(dst, offsetDelta)
	key := appendKey(nil, r)
	dst = binary.AppendVarint(dst, int64(len(key)))
	dst = append(dst, key...)
	if r.Value == nil {
		dst = binary.AppendVarint(dst, -1)
	} else {
		val := appendValue(nil, r.Value)
		dst = binary.AppendVarint(dst, int64(len(val)))
		dst = append(dst, val...)
	}
	return binary.AppendVarint(dst, 0) // headers
}

func appendString16(dst []byte, s string) []byte {
	if len(s) > maxStringLen {
		panic("BUG: string too long for the offsets log")
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(s)))
	return append(dst, s...)
}

func appendKey(dst []byte, r *offsetRecord) []byte {
	dst = binary.BigEndian.AppendUint16(dst, recordKeyVersion)
	dst = appendString16(dst, r.Group)
	dst = appendString16(dst, r.Topic)
	return binary.BigEndian.AppendUint32(dst, uint32(r.Partition))
}

func appendValue(dst []byte, v *OffsetValue) []byte {
	dst = binary.BigEndian.AppendUint16(dst, recordValVersion)
	dst = binary.BigEndian.AppendUint64(dst, uint64(v.Offset))
	dst = binary.BigEndian.AppendUint32(dst, uint32(v.LeaderEpoch))
	dst = appendString16(dst, v.Metadata)
	return binary.BigEndian.AppendUint64(dst, uint64(v.CommitMs))
}

// decodeBatches walks concatenated batches in b and calls fn for each record. It returns the
// number of bytes consumed by whole batches (a trailing partial batch is left for the next
// read), the offset after the last whole batch (-1 if none) and an error for a batch that is
// whole but corrupt.
func decodeBatches(b []byte, fn func(offsetRecord)) (used int, next int64, err error) {
	next = -1
	for len(b)-used >= batchHeaderLen {
		n := int64(int32(binary.BigEndian.Uint32(b[used+8:]))) + batchLogOverhead
		if n < batchHeaderLen {
			return used, next, fmt.Errorf("%w: batch length %d", errCorruptRecord, n)
		}
		if n > int64(len(b)-used) {
			return used, next, nil
		}
		bb := b[used : used+int(n)]
		if err := decodeBatch(bb, fn); err != nil {
			return used, next, err
		}
		next = int64(binary.BigEndian.Uint64(bb)) + int64(int32(binary.BigEndian.Uint32(bb[23:]))) + 1
		used += int(n)
	}
	return used, next, nil
}

func decodeBatch(b []byte, fn func(offsetRecord)) error {
	if b[16] != 2 {
		return fmt.Errorf("%w: magic %d", errCorruptRecord, b[16])
	}
	if binary.BigEndian.Uint32(b[17:]) != crc32.Checksum(b[21:], castagnoli) {
		return fmt.Errorf("%w: CRC mismatch", errCorruptRecord)
	}
	if binary.BigEndian.Uint16(b[21:])&0x7 != 0 {
		return fmt.Errorf("%w: compressed batch", errCorruptRecord)
	}
	count := int32(binary.BigEndian.Uint32(b[57:]))
	rest := b[batchHeaderLen:]
	for i := int32(0); i < count; i++ {
		size, k := binary.Varint(rest)
		if k <= 0 || size < 0 || size > int64(len(rest)-k) {
			return fmt.Errorf("%w: record %d length", errCorruptRecord, i)
		}
		r, err := decodeRecordBody(rest[k : k+int(size)])
		if err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
		fn(r)
		rest = rest[k+int(size):]
	}
	if len(rest) != 0 {
		return fmt.Errorf("%w: %d bytes after the last record", errCorruptRecord, len(rest))
	}
	return nil
}

// decodeRecordBody parses one record (after its length varint).
func decodeRecordBody(b []byte) (offsetRecord, error) {
	var r offsetRecord
	if len(b) < 1 {
		return r, fmt.Errorf("%w: empty record", errCorruptRecord)
	}
	b = b[1:]     // attributes
	for range 2 { // timestamp delta, offset delta
		_, k := binary.Varint(b)
		if k <= 0 {
			return r, fmt.Errorf("%w: record varint", errCorruptRecord)
		}
		b = b[k:]
	}
	key, b, ok := readBytesVarint(b)
	if !ok || key == nil {
		return r, fmt.Errorf("%w: record key", errCorruptRecord)
	}
	val, b, ok := readBytesVarint(b)
	if !ok {
		return r, fmt.Errorf("%w: record value", errCorruptRecord)
	}
	if h, k := binary.Varint(b); k <= 0 || h != 0 || k != len(b) {
		return r, fmt.Errorf("%w: record headers", errCorruptRecord)
	}
	if err := decodeKey(key, &r); err != nil {
		return r, err
	}
	if val != nil {
		v, err := decodeValue(val)
		if err != nil {
			return r, err
		}
		r.Value = &v
	}
	return r, nil
}

// readBytesVarint reads a varint length (-1 = nil) and that many bytes.
func readBytesVarint(b []byte) (field, rest []byte, ok bool) {
	n, k := binary.Varint(b)
	if k <= 0 || n < -1 || n > int64(len(b)-k) {
		return nil, nil, false
	}
	if n == -1 {
		return nil, b[k:], true
	}
	return b[k : k+int(n)], b[k+int(n):], true
}

func readString16(b []byte) (string, []byte, bool) {
	if len(b) < 2 {
		return "", nil, false
	}
	n := int(int16(binary.BigEndian.Uint16(b)))
	if n < 0 || n > len(b)-2 {
		return "", nil, false
	}
	return string(b[2 : 2+n]), b[2+n:], true
}

func decodeKey(b []byte, r *offsetRecord) error {
	if len(b) < 2 || binary.BigEndian.Uint16(b) != recordKeyVersion {
		return fmt.Errorf("%w: key version", errCorruptRecord)
	}
	var ok bool
	if r.Group, b, ok = readString16(b[2:]); !ok {
		return fmt.Errorf("%w: key group", errCorruptRecord)
	}
	if r.Topic, b, ok = readString16(b); !ok {
		return fmt.Errorf("%w: key topic", errCorruptRecord)
	}
	if len(b) != 4 {
		return fmt.Errorf("%w: key partition", errCorruptRecord)
	}
	r.Partition = int32(binary.BigEndian.Uint32(b))
	return nil
}

func decodeValue(b []byte) (OffsetValue, error) {
	var v OffsetValue
	if len(b) < 2+8+4 || binary.BigEndian.Uint16(b) != recordValVersion {
		return v, fmt.Errorf("%w: value version", errCorruptRecord)
	}
	v.Offset = int64(binary.BigEndian.Uint64(b[2:]))
	v.LeaderEpoch = int32(binary.BigEndian.Uint32(b[10:]))
	md, rest, ok := readString16(b[14:])
	if !ok || len(rest) != 8 {
		return v, fmt.Errorf("%w: value metadata", errCorruptRecord)
	}
	v.Metadata = md
	v.CommitMs = int64(binary.BigEndian.Uint64(rest))
	return v, nil
}
