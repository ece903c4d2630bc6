package group

// The records of __consumer_offsets, in Kafka's own schemas (the group coordinator's
// OffsetCommitKey/Value and GroupMetadataKey/Value message definitions), so that tools that
// read the topic (kafka-console-consumer's OffsetsMessageFormatter, lag exporters,
// Burrow-style monitors) decode what yard writes. Every key and value starts with its int16
// version. Non-flexible versions use int16-length strings (-1 = null), int32-length bytes
// and int32-counted arrays; flexible versions (value v4) use unsigned-varint lengths plus
// one (0 = null) and end every struct with tagged fields.
//
// Offset commit (written: key v1, value v3, as Kafka 4 writes them):
//
//	key   int16 version (0 or 1) | string group | string topic | int32 partition
//	value int16 version | int64 offset | [v3+: int32 leaderEpoch] | string metadata |
//	      int64 commitTimestamp | [v1 only: int64 expireTimestamp]
//
// Group metadata of a classic group (written: key v2, value v3):
//
//	key   int16 version=2 | string group
//	value int16 version | string protocolType | int32 generation | nullable string protocol |
//	      nullable string leader | [v2+: int64 currentStateTimestamp] |
//	      int32 n | n x member
//	member string memberId | [v3+: nullable string groupInstanceId] | string clientId |
//	      string clientHost | [v1+: int32 rebalanceTimeout] | int32 sessionTimeout |
//	      bytes subscription | bytes assignment
//
// A null value is a tombstone: the offset or the group was deleted. Keys of version 3 to 8
// are Kafka's KIP-848 consumer-group records (consumer_records.go); other key versions (share
// and streams groups) are skipped when the topic is read.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	rb "github.com/yardmq/yard/internal/recordbatch"
)

// Key and value versions.
const (
	offsetKeyVersion   = 1 // OffsetCommitKey
	offsetValueVersion = 3 // OffsetCommitValue, as Kafka 4 writes it (MetadataVersion.offsetCommitValueVersion)
	groupKeyVersion    = 2 // GroupMetadataKey
	groupValueVersion  = 3 // GroupMetadataValue, as Kafka 4 writes it (MetadataVersion.groupMetadataValueVersion)
	maxOffsetValue     = 4
	maxGroupValue      = 4
	flexibleFrom       = 4 // first flexible value version of both
	maxStringLen       = math.MaxInt16
)

// errCorruptRecord marks an offsets-topic batch or record that cannot be decoded.
var errCorruptRecord = errors.New("corrupt __consumer_offsets record")

// recordKind says what a record of the topic is.
type recordKind uint8

const (
	kindUnknown recordKind = iota // a key version yard does not read
	kindOffset
	kindGroup
	kindConsumerGroup      // KIP-848 ConsumerGroupMetadata
	kindConsumerMember     // ConsumerGroupMemberMetadata
	kindConsumerTargetMeta // ConsumerGroupTargetAssignmentMetadata
	kindConsumerTarget     // ConsumerGroupTargetAssignmentMember
	kindConsumerCurrent    // ConsumerGroupCurrentMemberAssignment
	// kindSkipped: a KIP-848 record whose value could not be decoded. Replay goes on without
	// it (the group's members are fenced and rejoin where the state is short of it) rather
	// than refusing to start over a record the offsets do not depend on.
	kindSkipped
)

// GroupMetadata is a classic group's state as Kafka records it when a generation completes.
type GroupMetadata struct {
	ProtocolType   string
	Generation     int32
	Protocol       string // "" is written as null
	Leader         string // "" is written as null
	CurrentStateMs int64
	Members        []MemberMetadata
}

// MemberMetadata is one member in GroupMetadata.
type MemberMetadata struct {
	MemberID           string
	InstanceID         string // "" is written as null
	ClientID           string
	ClientHost         string
	RebalanceTimeoutMs int32
	SessionTimeoutMs   int32
	Subscription       []byte
	Assignment         []byte
}

// coordRecord is one decoded record of the topic. A nil Offset (kindOffset) or Group
// (kindGroup) is a tombstone.
type coordRecord struct {
	Kind  recordKind
	Group string
	TopicPartition
	Offset *OffsetValue
	Meta   *GroupMetadata
	C      consumerRecord // KIP-848 kinds
}

func appendString16(dst []byte, s string) []byte {
	if len(s) > maxStringLen {
		panic("BUG: string too long for __consumer_offsets")
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(s)))
	return append(dst, s...)
}

// appendNullable16 writes "" as null.
func appendNullable16(dst []byte, s string) []byte {
	if s == "" {
		return binary.BigEndian.AppendUint16(dst, 0xffff)
	}
	return appendString16(dst, s)
}

func appendBytes32(dst, b []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(b)))
	return append(dst, b...)
}

func appendOffsetKey(dst []byte, group string, tp TopicPartition) []byte {
	dst = binary.BigEndian.AppendUint16(dst, offsetKeyVersion)
	dst = appendString16(dst, group)
	dst = appendString16(dst, tp.Topic)
	return binary.BigEndian.AppendUint32(dst, uint32(tp.Partition))
}

func appendOffsetValue(dst []byte, v *OffsetValue) []byte {
	dst = binary.BigEndian.AppendUint16(dst, offsetValueVersion)
	dst = binary.BigEndian.AppendUint64(dst, uint64(v.Offset))
	dst = binary.BigEndian.AppendUint32(dst, uint32(v.LeaderEpoch))
	dst = appendString16(dst, v.Metadata)
	return binary.BigEndian.AppendUint64(dst, uint64(v.CommitMs))
}

func appendGroupKey(dst []byte, group string) []byte {
	dst = binary.BigEndian.AppendUint16(dst, groupKeyVersion)
	return appendString16(dst, group)
}

func appendGroupValue(dst []byte, m *GroupMetadata) []byte {
	dst = binary.BigEndian.AppendUint16(dst, groupValueVersion)
	dst = appendString16(dst, m.ProtocolType)
	dst = binary.BigEndian.AppendUint32(dst, uint32(m.Generation))
	dst = appendNullable16(dst, m.Protocol)
	dst = appendNullable16(dst, m.Leader)
	dst = binary.BigEndian.AppendUint64(dst, uint64(m.CurrentStateMs))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(m.Members)))
	for i := range m.Members {
		mm := &m.Members[i]
		dst = appendString16(dst, mm.MemberID)
		dst = appendNullable16(dst, mm.InstanceID)
		dst = appendString16(dst, mm.ClientID)
		dst = appendString16(dst, mm.ClientHost)
		dst = binary.BigEndian.AppendUint32(dst, uint32(mm.RebalanceTimeoutMs))
		dst = binary.BigEndian.AppendUint32(dst, uint32(mm.SessionTimeoutMs))
		dst = appendBytes32(dst, mm.Subscription)
		dst = appendBytes32(dst, mm.Assignment)
	}
	return dst
}

// appendRecord encodes r's key and value (nil value for a tombstone) onto scratch and
// returns both, sharing scratch's array.
func encodeRecord(scratch []byte, r *coordRecord) (key, value []byte, out []byte) {
	switch r.Kind {
	case kindOffset:
		out = appendOffsetKey(scratch, r.Group, r.TopicPartition)
		key = out[len(scratch):]
		if r.Offset != nil {
			n := len(out)
			out = appendOffsetValue(out, r.Offset)
			value = out[n:]
		}
	case kindGroup:
		out = appendGroupKey(scratch, r.Group)
		key = out[len(scratch):]
		if r.Meta != nil {
			n := len(out)
			out = appendGroupValue(out, r.Meta)
			value = out[n:]
		}
	default:
		if !isConsumerKind(r.Kind) {
			panic("BUG: encoding a record of unknown kind")
		}
		out = appendConsumerKey(scratch, r)
		key = out[len(scratch):]
		if !consumerValueIsNull(r) {
			n := len(out)
			out = appendConsumerValue(out, r)
			value = out[n:]
		}
	}
	return key, value, out
}

// batchProducer is the producer a batch is written for: none (pid -1), or a transaction's.
type batchProducer struct {
	ID    int64
	Epoch int16
}

var noProducer = batchProducer{ID: -1, Epoch: -1}

// appendBatch encodes recs as one uncompressed batch at the end of dst: base offset 0 (the
// log assigns it), both timestamps nowMs, records with offset deltas 0..n-1, timestamp delta
// 0 and no headers. A batch of a producer (transactional offset commits) has the producer's
// id and epoch, base sequence 0 and the transactional attribute, as Kafka writes it.
func appendBatch(dst []byte, recs []coordRecord, nowMs int64, prod batchProducer) []byte {
	if len(recs) == 0 {
		panic("BUG: empty __consumer_offsets batch")
	}
	start := len(dst)
	h := rb.NewHeader(int32(len(recs)), nowMs)
	if prod.ID >= 0 {
		h.Attributes |= rb.AttrTransactional
		h.ProducerID, h.ProducerEpoch, h.BaseSequence = prod.ID, prod.Epoch, 0
	}
	dst = rb.AppendHeader(dst, &h)
	var scratch []byte
	for i := range recs {
		var key, value []byte
		key, value, scratch = encodeRecord(scratch[:0], &recs[i])
		r := rb.Record{OffsetDelta: int32(i), Key: key, Value: value}
		dst = r.AppendTo(dst)
	}
	return rb.Finish(dst, start)
}

// decodeRecord parses the key and value of one record of the topic.
func decodeRecord(key, value []byte) (coordRecord, error) {
	var r coordRecord
	if len(key) < 2 {
		return r, fmt.Errorf("%w: key shorter than its version", errCorruptRecord)
	}
	d := decoder{b: key[2:]}
	switch v := int16(binary.BigEndian.Uint16(key)); {
	case v == 0 || v == 1:
		r.Kind = kindOffset
		r.Group = d.str()
		r.Topic = d.str()
		r.Partition = d.i32()
	case v == groupKeyVersion:
		r.Kind = kindGroup
		r.Group = d.str()
	case v == keyConsumerGroup || (v >= keyConsumerMember && v <= keyConsumerCurrent):
		decodeConsumerKey(v, &d, &r)
	case v > groupKeyVersion:
		return coordRecord{Kind: kindUnknown}, nil
	default:
		return r, fmt.Errorf("%w: key version %d", errCorruptRecord, v)
	}
	if err := d.end("key"); err != nil {
		return r, err
	}
	if value == nil {
		return r, nil
	}
	var err error
	if isConsumerKind(r.Kind) {
		err = decodeConsumerValue(value, &r)
	} else if r.Kind == kindOffset {
		var v OffsetValue
		v, err = decodeOffsetValue(value)
		r.Offset = &v
	} else {
		var m GroupMetadata
		m, err = decodeGroupValue(value)
		r.Meta = &m
	}
	return r, err
}

func decodeOffsetValue(b []byte) (OffsetValue, error) {
	v := OffsetValue{LeaderEpoch: -1}
	if len(b) < 2 {
		return v, fmt.Errorf("%w: offset value shorter than its version", errCorruptRecord)
	}
	ver := int16(binary.BigEndian.Uint16(b))
	if ver < 0 || ver > maxOffsetValue {
		return v, fmt.Errorf("%w: offset value version %d", errCorruptRecord, ver)
	}
	d := decoder{b: b[2:], flexible: ver >= flexibleFrom}
	v.Offset = d.i64()
	if ver >= 3 {
		v.LeaderEpoch = d.i32()
	}
	v.Metadata = d.str()
	v.CommitMs = d.i64()
	if ver == 1 {
		d.i64() // expireTimestamp: yard expires by offsets.retention, as Kafka 2.1+
	}
	d.tags()
	return v, d.end("offset value")
}

func decodeGroupValue(b []byte) (GroupMetadata, error) {
	m := GroupMetadata{CurrentStateMs: -1}
	if len(b) < 2 {
		return m, fmt.Errorf("%w: group value shorter than its version", errCorruptRecord)
	}
	ver := int16(binary.BigEndian.Uint16(b))
	if ver < 0 || ver > maxGroupValue {
		return m, fmt.Errorf("%w: group value version %d", errCorruptRecord, ver)
	}
	d := decoder{b: b[2:], flexible: ver >= flexibleFrom}
	m.ProtocolType = d.str()
	m.Generation = d.i32()
	m.Protocol = d.str()
	m.Leader = d.str()
	if ver >= 2 {
		m.CurrentStateMs = d.i64()
	}
	n := d.arrayLen()
	for i := 0; i < n && d.err == nil; i++ {
		mm := MemberMetadata{RebalanceTimeoutMs: -1}
		mm.MemberID = d.str()
		if ver >= 3 {
			mm.InstanceID = d.str()
		}
		mm.ClientID = d.str()
		mm.ClientHost = d.str()
		if ver >= 1 {
			mm.RebalanceTimeoutMs = d.i32()
		}
		mm.SessionTimeoutMs = d.i32()
		mm.Subscription = d.bytes()
		mm.Assignment = d.bytes()
		d.tags()
		m.Members = append(m.Members, mm)
	}
	d.tags()
	return m, d.end("group value")
}

// decoder reads Kafka's primitive types; the first error sticks and later reads return zero
// values, so a caller checks once at the end.
type decoder struct {
	b        []byte
	flexible bool
	err      error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated or invalid %s", errCorruptRecord, what)
	}
	d.b = nil
}

func (d *decoder) take(n int, what string) []byte {
	if d.err != nil || n < 0 || n > len(d.b) {
		d.fail(what)
		return nil
	}
	out := d.b[:n:n]
	d.b = d.b[n:]
	return out
}

func (d *decoder) i32() int32 {
	if b := d.take(4, "int32"); b != nil {
		return int32(binary.BigEndian.Uint32(b))
	}
	return 0
}

func (d *decoder) i64() int64 {
	if b := d.take(8, "int64"); b != nil {
		return int64(binary.BigEndian.Uint64(b))
	}
	return 0
}

func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// length reads a length: int16/int32 (width) or, flexible, an unsigned varint of length+1.
// -1 is null.
func (d *decoder) length(width int, what string) int {
	if d.flexible {
		v := d.uvarint(what)
		if v > uint64(len(d.b))+1 {
			d.fail(what)
			return 0
		}
		return int(v) - 1
	}
	if width == 2 {
		if b := d.take(2, what); b != nil {
			return int(int16(binary.BigEndian.Uint16(b)))
		}
		return 0
	}
	if b := d.take(4, what); b != nil {
		return int(int32(binary.BigEndian.Uint32(b)))
	}
	return 0
}

// str reads a (nullable) string; null reads as "".
func (d *decoder) str() string {
	n := d.length(2, "string")
	if n < 0 {
		if n != -1 {
			d.fail("string length")
		}
		return ""
	}
	return string(d.take(n, "string"))
}

func (d *decoder) bytes() []byte {
	n := d.length(4, "bytes")
	if n < 0 {
		if n != -1 {
			d.fail("bytes length")
		}
		return nil
	}
	return append([]byte{}, d.take(n, "bytes")...)
}

func (d *decoder) arrayLen() int {
	n := d.length(4, "array")
	if n < 0 {
		if n != -1 {
			d.fail("array length")
		}
		return 0
	}
	if n > len(d.b) { // every element takes at least a byte
		d.fail("array length")
		return 0
	}
	return n
}

// tags skips a flexible struct's tagged fields.
func (d *decoder) tags() {
	if !d.flexible {
		return
	}
	n := d.uvarint("tagged fields")
	for i := uint64(0); i < n && d.err == nil; i++ {
		d.uvarint("tag")
		size := d.uvarint("tag size")
		if size > uint64(len(d.b)) {
			d.fail("tag size")
			return
		}
		d.take(int(size), "tag")
	}
}

func (d *decoder) end(what string) error {
	if d.err != nil {
		return fmt.Errorf("%s: %w", what, d.err)
	}
	if len(d.b) != 0 {
		return fmt.Errorf("%w: %d bytes after the %s", errCorruptRecord, len(d.b), what)
	}
	return nil
}

// javaStringHash is Java's String.hashCode: s[0]*31^(n-1) + ... + s[n-1] over the UTF-16
// code units of s, in int32 arithmetic.
func javaStringHash(s string) int32 {
	var h int32
	for _, r := range s {
		if r >= 0x10000 { // a surrogate pair in UTF-16
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
			continue
		}
		h = 31*h + int32(r)
	}
	return h
}

// PartitionFor is the partition of __consumer_offsets that holds group's records, as Kafka
// computes it: Utils.abs(group.hashCode()) % partitions, where Utils.abs maps
// Integer.MIN_VALUE to 0.
func PartitionFor(group string, partitions int32) int32 {
	h := javaStringHash(group)
	if h == math.MinInt32 {
		h = 0
	} else if h < 0 {
		h = -h
	}
	return h % partitions
}
