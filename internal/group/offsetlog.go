package group

// The committed-offsets log: one internal/log.Log (by default <data-dir>/__consumer_offsets/)
// whose batches are in the Kafka RecordBatch v2 layout the log engine requires, each holding
// the records of one OffsetCommit (or of one snapshot chunk), so a commit is atomic.
//
// Batches (internal/recordbatch documents the layout) are written here uncompressed, with
// producer id, epoch and base sequence -1, leader epoch 0, both timestamps the unix ms of the
// write, and n >= 1 records whose offset deltas are 0..n-1, each with timestamp delta 0, a key,
// a value (null = tombstone) and no headers.
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
	"math"

	rb "github.com/yardmq/yard/internal/recordbatch"
)

const (
	recordKeyVersion = 1
	recordValVersion = 1
	maxStringLen     = math.MaxInt16
)

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
	h := rb.NewHeader(int32(len(recs)), nowMs)
	dst = rb.AppendHeader(dst, &h)
	var scratch []byte
	for i := range recs {
		key := appendKey(scratch[:0], &recs[i])
		r := rb.Record{OffsetDelta: int32(i), Key: key}
		if recs[i].Value != nil {
			r.Value = appendValue(key[len(key):], recs[i].Value)
		}
		dst = r.AppendTo(dst)
		scratch = key[:0]
	}
	return rb.Finish(dst, start)
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
	for len(b)-used >= rb.HeaderLen {
		h, err := rb.ParseHeader(b[used:])
		if err != nil {
			return used, next, fmt.Errorf("%w: %w", errCorruptRecord, err)
		}
		if h.Length > len(b)-used {
			return used, next, nil
		}
		if err := decodeBatch(b[used:used+h.Length], &h, fn); err != nil {
			return used, next, err
		}
		next = h.LastOffset() + 1
		used += h.Length
	}
	return used, next, nil
}

func decodeBatch(b []byte, h *rb.Header, fn func(offsetRecord)) error {
	if err := rb.CheckCRC(b); err != nil {
		return fmt.Errorf("%w: %w", errCorruptRecord, err)
	}
	if h.Codec() != rb.CodecNone {
		return fmt.Errorf("%w: compressed batch", errCorruptRecord)
	}
	it := rb.NewRecords(b[rb.HeaderLen:], h.RecordCount)
	var rec rb.Record
	for it.Next(&rec) {
		r, err := decodeRecord(&rec)
		if err != nil {
			return fmt.Errorf("record %d: %w", it.Index()-1, err)
		}
		fn(r)
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("%w: %w", errCorruptRecord, err)
	}
	return nil
}

// decodeRecord parses the key and value of one record.
func decodeRecord(rec *rb.Record) (offsetRecord, error) {
	var r offsetRecord
	if rec.Key == nil {
		return r, fmt.Errorf("%w: record key", errCorruptRecord)
	}
	if len(rec.Headers) != 0 {
		return r, fmt.Errorf("%w: record headers", errCorruptRecord)
	}
	if err := decodeKey(rec.Key, &r); err != nil {
		return r, err
	}
	if rec.Value != nil {
		v, err := decodeValue(rec.Value)
		if err != nil {
			return r, err
		}
		r.Value = &v
	}
	return r, nil
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
