package queue

// On-disk encoding of a durable queue's messages and settlements, inside the Kafka
// RecordBatch v2 layout that internal/log stores (see the log package's contract).
//
// Every batch yard's queue store writes (internal/recordbatch documents the layout) holds
// exactly one uncompressed record: leader epoch 0, producer id, epoch and base sequence -1,
// both timestamps the publish time (Unix ms); the record has timestamp and offset deltas 0, a
// null key, the value below and no headers.
//
// The record value of a MESSAGE (the message log):
//
//	version   uint8 = 2 (version 1, written by earlier builds, lacks the next field)
//	flags     uint8: bit 0 = persistent (delivery-mode 2); other bits zero
//	uvarint   persistent bytes before: the payload size (properties + body) of every
//	          persistent message written before this one, cumulated (modulo 2^64) since the
//	          log was last empty; the payload of [a, b) is before(b) - before(a), which is how
//	          recovery learns the live bytes of a queue without reading its messages
//	uvarint len + exchange bytes
//	uvarint len + routing key bytes
//	uvarint len + encoded AMQP content-header property list (as the publisher sent it)
//	body: the rest of the value
//
// The record value of a SETTLEMENT LOG entry (the ack log):
//
//	version uint8 = 1
//	kind    uint8: 1 = settled (then uvarint count and count uvarint sequence numbers, the
//	        first absolute and each next one as the delta from the previous, ascending;
//	        written by earlier builds, read for compatibility: the sizes are unknown);
//	        2 = delivered-through (then one uvarint: every message below it may have been
//	        delivered, so it is flagged redelivered after a restart);
//	        3 = settled range (then two uvarints: from, and the count; used by purge);
//	        4 = reset (then one uvarint N: forget every settlement and delivered mark at or above
//	        N written before this entry; written at open when the message log ends at N but
//	        settlements name positions beyond it, because the settlement log reached the disk
//	        and the message log's tail did not: those positions will be reused);
//	        5 = delivery counts (then uvarint count and count pairs of uvarints: sequence
//	        number, as in kind 1 delta-encoded ascending, and how many times that message was
//	        delivered and returned, its x-delivery-count; the latest entry for a message wins);
//	        6 = settled with sizes (then uvarint count and count pairs of uvarints: sequence
//	        number, delta-encoded ascending as in kind 1, and the message's payload size if it
//	        is persistent, else 0: recovery subtracts them from the live bytes)

import (
	"encoding/binary"
	"errors"

	rb "github.com/yardmq/yard/internal/recordbatch"
)

const (
	recordVersion  = 1 // settlement entries, and messages of earlier builds
	messageVersion = 2
	flagPersistent = 1

	ackSettled   = 1
	ackDelivered = 2
	ackRange     = 3
	ackReset     = 4
	ackCounts    = 5
	ackSized     = 6
)

// errBadRecord: a stored record does not decode. Recovery treats it as corruption.
var errBadRecord = errors.New("malformed queue record")

// appendBatch appends a one-record batch holding value to dst.
func appendBatch(dst []byte, tsMs int64, value []byte) []byte {
	dst, start := beginBatch(dst, tsMs, len(value))
	dst = append(dst, value...)
	return endBatch(dst, start)
}

// beginBatch appends the head of a one-record batch whose value is valueLen bytes; the caller
// appends exactly that value, then calls endBatch. This lets a message be encoded straight
// into the write buffer instead of being encoded and then copied.
func beginBatch(dst []byte, tsMs int64, valueLen int) ([]byte, int) {
	start := len(dst)
	h := rb.NewHeader(1, tsMs)
	dst = rb.AppendHeader(dst, &h)
	var r rb.Record
	return r.AppendHead(dst, valueLen), start
}

// endBatch completes the batch beginBatch began at start: header count, length and CRC.
func endBatch(dst []byte, start int) []byte {
	var r rb.Record
	return rb.Finish(r.AppendTail(dst), start)
}

// nextBatch splits the first batch off b and returns its base offset, timestamp and the value
// of its first record. It checks lengths and the CRC; it never reads past b.
func nextBatch(b []byte) (offset int64, tsMs int64, value []byte, rest []byte, err error) {
	batch, rest, h, err := rb.Split(b)
	if err != nil || rb.CheckCRC(batch) != nil || h.RecordCount < 1 || h.Codec() != rb.CodecNone {
		return 0, 0, nil, nil, errBadRecord
	}
	it := rb.NewRecords(batch[rb.HeaderLen:], 1)
	var r rb.Record
	if !it.Next(&r) || r.Value == nil {
		return 0, 0, nil, nil, errBadRecord
	}
	return h.BaseOffset, h.BaseTimestamp, r.Value, rest, nil
}

// messageValueLen is the length of appendMessageValue's encoding.
func messageValueLen(m *Message, before uint64) int {
	n := 2 + uvarintLen(before)
	for _, l := range [3]int{len(m.Exchange), len(m.RoutingKey), len(m.Properties)} {
		n += uvarintLen(uint64(l)) + l
	}
	return n + len(m.Body)
}

func uvarintLen(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

// appendMessageValue encodes m as a message record value; before is the cumulated payload of
// the persistent messages written before it.
func appendMessageValue(dst []byte, m *Message, before uint64) []byte {
	var flags byte
	if m.Persistent {
		flags |= flagPersistent
	}
	dst = append(dst, messageVersion, flags)
	dst = binary.AppendUvarint(dst, before)
	dst = binary.AppendUvarint(dst, uint64(len(m.Exchange)))
	dst = append(dst, m.Exchange...)
	dst = binary.AppendUvarint(dst, uint64(len(m.RoutingKey)))
	dst = append(dst, m.RoutingKey...)
	dst = binary.AppendUvarint(dst, uint64(len(m.Properties)))
	dst = append(dst, m.Properties...)
	return append(dst, m.Body...)
}

// decodeMessageValue decodes a message record value; the message does not alias v. hasBefore
// is false for a record of an earlier build, which did not record before.
func decodeMessageValue(v []byte) (m *Message, before uint64, hasBefore bool, err error) {
	if len(v) < 2 || (v[0] != recordVersion && v[0] != messageVersion) || v[1]&^flagPersistent != 0 {
		return nil, 0, false, errBadRecord
	}
	m = &Message{Persistent: v[1]&flagPersistent != 0}
	r := v[2:]
	if v[0] == messageVersion {
		n, k := binary.Uvarint(r)
		if k <= 0 {
			return nil, 0, false, errBadRecord
		}
		before, hasBefore, r = n, true, r[k:]
	}
	var parts [3][]byte
	for i := range parts {
		n, k := binary.Uvarint(r)
		if k <= 0 || n > uint64(len(r)-k) {
			return nil, 0, false, errBadRecord
		}
		parts[i], r = r[k:k+int(n)], r[k+int(n):]
	}
	m.Exchange, m.RoutingKey = string(parts[0]), string(parts[1])
	if len(parts[2]) > 0 {
		m.Properties = append([]byte(nil), parts[2]...)
	}
	m.Body = append([]byte(nil), r...)
	return m, before, hasBefore, nil
}

// persistentSize is what a message adds to the persistent bytes (record "before" values).
func persistentSize(m *Message) uint64 {
	if !m.Persistent {
		return 0
	}
	return uint64(m.Size())
}

// ackEntry is one decoded settlement-log value.
type ackEntry struct {
	kind      byte
	seqs      []uint64 // ackSettled, ackSized, ackCounts
	vals      []uint64 // ackSized: sizes; ackCounts: delivery counts
	through   uint64   // ackDelivered
	from, num uint64   // ackRange
}

func appendSettledValue(dst []byte, seqs []uint64) []byte {
	dst = append(dst, recordVersion, ackSettled)
	dst = binary.AppendUvarint(dst, uint64(len(seqs)))
	var prev uint64
	for i, s := range seqs {
		if i == 0 {
			dst = binary.AppendUvarint(dst, s)
		} else {
			dst = binary.AppendUvarint(dst, s-prev)
		}
		prev = s
	}
	return dst
}

// appendPairsValue encodes an ackSized or ackCounts entry: pairs sorted by sequence number.
func appendPairsValue(dst []byte, kind byte, pairs [][2]uint64) []byte {
	dst = append(dst, recordVersion, kind)
	dst = binary.AppendUvarint(dst, uint64(len(pairs)))
	var prev uint64
	for _, p := range pairs {
		dst = binary.AppendUvarint(dst, p[0]-prev)
		dst = binary.AppendUvarint(dst, p[1])
		prev = p[0]
	}
	return dst
}

func appendDeliveredValue(dst []byte, through uint64) []byte {
	dst = append(dst, recordVersion, ackDelivered)
	return binary.AppendUvarint(dst, through)
}

func appendResetValue(dst []byte, n uint64) []byte {
	dst = append(dst, recordVersion, ackReset)
	return binary.AppendUvarint(dst, n)
}

func appendRangeValue(dst []byte, from, num uint64) []byte {
	dst = append(dst, recordVersion, ackRange)
	dst = binary.AppendUvarint(dst, from)
	return binary.AppendUvarint(dst, num)
}

func decodeAckValue(v []byte) (ackEntry, error) {
	if len(v) < 2 || v[0] != recordVersion {
		return ackEntry{}, errBadRecord
	}
	e := ackEntry{kind: v[1]}
	r := v[2:]
	next := func() (uint64, bool) {
		x, k := binary.Uvarint(r)
		if k <= 0 {
			return 0, false
		}
		r = r[k:]
		return x, true
	}
	switch e.kind {
	case ackSettled:
		n, ok := next()
		if !ok || n > uint64(len(r)) { // each sequence number takes at least one byte
			return ackEntry{}, errBadRecord
		}
		e.seqs = make([]uint64, 0, n)
		var prev uint64
		for i := uint64(0); i < n; i++ {
			d, ok := next()
			if !ok {
				return ackEntry{}, errBadRecord
			}
			prev += d
			e.seqs = append(e.seqs, prev)
		}
	case ackSized, ackCounts:
		n, ok := next()
		if !ok || n > uint64(len(r))/2 { // each pair takes at least two bytes
			return ackEntry{}, errBadRecord
		}
		e.seqs, e.vals = make([]uint64, 0, n), make([]uint64, 0, n)
		var prev uint64
		for i := uint64(0); i < n; i++ {
			d, ok1 := next()
			x, ok2 := next()
			if !ok1 || !ok2 {
				return ackEntry{}, errBadRecord
			}
			prev += d
			e.seqs, e.vals = append(e.seqs, prev), append(e.vals, x)
		}
	case ackDelivered, ackReset:
		var ok bool
		if e.through, ok = next(); !ok {
			return ackEntry{}, errBadRecord
		}
	case ackRange:
		var ok1, ok2 bool
		e.from, ok1 = next()
		e.num, ok2 = next()
		if !ok1 || !ok2 {
			return ackEntry{}, errBadRecord
		}
	default:
		return ackEntry{}, errBadRecord
	}
	if len(r) != 0 {
		return ackEntry{}, errBadRecord
	}
	return e, nil
}
