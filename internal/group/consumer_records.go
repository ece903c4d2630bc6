package group

// The records of KIP-848 consumer groups in __consumer_offsets, in the schemas of Kafka 4.4's
// group coordinator (its coordinator-key/-value message definitions
// ConsumerGroup*Key/Value.json). A key starts with its int16 record type (Kafka's "apiKey";
// older Kafka called it the key version), then the key's fields, not flexible:
//
//	3 ConsumerGroupMetadata          string group
//	5 ConsumerGroupMemberMetadata    string group | string memberId
//	6 ConsumerGroupTargetAssignmentMetadata string group
//	7 ConsumerGroupTargetAssignmentMember   string group | string memberId
//	8 ConsumerGroupCurrentMemberAssignment  string group | string memberId
//
// (4, ConsumerGroupPartitionMetadata, is no longer written since Kafka 4.1, replaced by the
// MetadataHash below; 16, ConsumerGroupRegularExpression, is Kafka's cache of what a regular
// expression resolved to: yard resolves them again and writes neither; both are skipped when
// read.) Values start with their int16 version, 0, and are flexible: compact strings and
// arrays (unsigned varint length+1, 0 = null), and after every struct its tagged fields
// (unsigned varint count, then per field: varint tag, varint size, data):
//
//	3 int32 epoch | tags {0: int64 metadataHash}
//	5 nullable instanceId | nullable rackId | clientId | clientHost |
//	  []string subscribedTopicNames | nullable subscribedTopicRegex | int32 rebalanceTimeoutMs |
//	  nullable serverAssignor | tags {0: classicMemberMetadata (classic members; skipped)}
//	6 int32 assignmentEpoch | tags {0: int64 assignmentTimestamp}
//	7 []topicPartitions
//	8 int32 memberEpoch | int32 previousMemberEpoch | int8 state |
//	  []topicPartitions assigned | []topicPartitions pendingRevocation
//	topicPartitions: uuid topicId | []int32 partitions | tags {0: []int32 assignmentEpochs}
//
// A null value is a tombstone. Partitions are named by topic id, so a topic deleted and
// created again under the same name does not inherit the old one's assignment.

import (
	"encoding/binary"
	"fmt"
)

// Record types (key versions) of KIP-848 consumer groups.
const (
	keyConsumerGroup          = 3
	keyConsumerPartitionMeta  = 4
	keyConsumerMember         = 5
	keyConsumerTargetMeta     = 6
	keyConsumerTargetMember   = 7
	keyConsumerCurrent        = 8
	keyConsumerRegex          = 16
	consumerValueVersion      = 0
	memberStateStable         = 0 // Kafka's MemberState
	memberStateUnrevoked      = 1
	memberStateUnreleased     = 2
	maxConsumerRecordElements = 1 << 20 // bounds what a decoded array may claim
)

// cgMetaValue is ConsumerGroupMetadataValue.
type cgMetaValue struct {
	Epoch        int32
	MetadataHash int64 // 0 = none
}

// cgMemberValue is ConsumerGroupMemberMetadataValue ("" is written as null where nullable).
type cgMemberValue struct {
	InstanceID, RackID, ClientID, ClientHost string
	Subscribed                               []string
	Regex                                    string
	RebalanceTimeoutMs                       int32
	Assignor                                 string
}

// cgTargetMetaValue is ConsumerGroupTargetAssignmentMetadataValue.
type cgTargetMetaValue struct {
	AssignmentEpoch int32
	TimestampMs     int64 // 0 = none
}

// cgTopicPartitions is one topic's partitions in an assignment. Epochs (the member epoch each
// partition was assigned at, KIP-1251) is nil when absent and otherwise as long as Partitions.
type cgTopicPartitions struct {
	TopicID    [16]byte
	Partitions []int32
	Epochs     []int32
}

// cgCurrentValue is ConsumerGroupCurrentMemberAssignmentValue.
type cgCurrentValue struct {
	MemberEpoch, PrevEpoch int32
	State                  int8
	Assigned, Revoking     []cgTopicPartitions
}

// consumerRecord is the KIP-848 part of a coordRecord: the member (keys 5, 7, 8) and the
// value of the record's kind (nil for a tombstone).
type consumerRecord struct {
	MemberID string
	Meta     *cgMetaValue
	Member   *cgMemberValue
	TMeta    *cgTargetMetaValue
	Target   []cgTopicPartitions // key 7; nil with TargetSet false = tombstone
	Current  *cgCurrentValue
	// TargetSet distinguishes an empty target assignment from a tombstone.
	TargetSet bool
}

func isConsumerKind(k recordKind) bool {
	return k >= kindConsumerGroup && k <= kindConsumerCurrent
}

func consumerKeyType(k recordKind) uint16 {
	switch k {
	case kindConsumerGroup:
		return keyConsumerGroup
	case kindConsumerMember:
		return keyConsumerMember
	case kindConsumerTargetMeta:
		return keyConsumerTargetMeta
	case kindConsumerTarget:
		return keyConsumerTargetMember
	case kindConsumerCurrent:
		return keyConsumerCurrent
	}
	panic("BUG: not a consumer-group record kind")
}

func appendConsumerKey(dst []byte, r *coordRecord) []byte {
	dst = binary.BigEndian.AppendUint16(dst, consumerKeyType(r.Kind))
	dst = appendString16(dst, r.Group)
	switch r.Kind {
	case kindConsumerMember, kindConsumerTarget, kindConsumerCurrent:
		dst = appendString16(dst, r.C.MemberID)
	}
	return dst
}

// consumerValueIsNull reports whether r is a tombstone.
func consumerValueIsNull(r *coordRecord) bool {
	c := &r.C
	switch r.Kind {
	case kindConsumerGroup:
		return c.Meta == nil
	case kindConsumerMember:
		return c.Member == nil
	case kindConsumerTargetMeta:
		return c.TMeta == nil
	case kindConsumerTarget:
		return !c.TargetSet
	case kindConsumerCurrent:
		return c.Current == nil
	}
	panic("BUG: not a consumer-group record kind")
}

func appendConsumerValue(dst []byte, r *coordRecord) []byte {
	c := &r.C
	dst = binary.BigEndian.AppendUint16(dst, consumerValueVersion)
	switch r.Kind {
	case kindConsumerGroup:
		dst = binary.BigEndian.AppendUint32(dst, uint32(c.Meta.Epoch))
		if c.Meta.MetadataHash != 0 {
			dst = append(dst, 1, 0, 8) // one tagged field: tag 0, 8 bytes
			return binary.BigEndian.AppendUint64(dst, uint64(c.Meta.MetadataHash))
		}
		return append(dst, 0)
	case kindConsumerMember:
		m := c.Member
		dst = appendCompactNullable(dst, m.InstanceID)
		dst = appendCompactNullable(dst, m.RackID)
		dst = appendCompactString(dst, m.ClientID)
		dst = appendCompactString(dst, m.ClientHost)
		dst = binary.AppendUvarint(dst, uint64(len(m.Subscribed))+1)
		for _, s := range m.Subscribed {
			dst = appendCompactString(dst, s)
		}
		dst = appendCompactNullable(dst, m.Regex)
		dst = binary.BigEndian.AppendUint32(dst, uint32(m.RebalanceTimeoutMs))
		dst = appendCompactNullable(dst, m.Assignor)
		return append(dst, 0)
	case kindConsumerTargetMeta:
		dst = binary.BigEndian.AppendUint32(dst, uint32(c.TMeta.AssignmentEpoch))
		if c.TMeta.TimestampMs != 0 {
			dst = append(dst, 1, 0, 8)
			return binary.BigEndian.AppendUint64(dst, uint64(c.TMeta.TimestampMs))
		}
		return append(dst, 0)
	case kindConsumerTarget:
		dst = appendTopicPartitions(dst, c.Target)
		return append(dst, 0)
	case kindConsumerCurrent:
		v := c.Current
		dst = binary.BigEndian.AppendUint32(dst, uint32(v.MemberEpoch))
		dst = binary.BigEndian.AppendUint32(dst, uint32(v.PrevEpoch))
		dst = append(dst, byte(v.State))
		dst = appendTopicPartitions(dst, v.Assigned)
		dst = appendTopicPartitions(dst, v.Revoking)
		return append(dst, 0)
	}
	panic("BUG: not a consumer-group record kind")
}

func appendCompactString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s))+1)
	return append(dst, s...)
}

// appendCompactNullable writes "" as null.
func appendCompactNullable(dst []byte, s string) []byte {
	if s == "" {
		return append(dst, 0)
	}
	return appendCompactString(dst, s)
}

func appendInt32s(dst []byte, vs []int32) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(vs))+1)
	for _, v := range vs {
		dst = binary.BigEndian.AppendUint32(dst, uint32(v))
	}
	return dst
}

func appendTopicPartitions(dst []byte, tps []cgTopicPartitions) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(tps))+1)
	for i := range tps {
		t := &tps[i]
		dst = append(dst, t.TopicID[:]...)
		dst = appendInt32s(dst, t.Partitions)
		if t.Epochs == nil {
			dst = append(dst, 0)
			continue
		}
		size := uvarintLen(uint64(len(t.Epochs))+1) + 4*len(t.Epochs)
		dst = append(dst, 1, 0) // one tagged field, tag 0
		dst = binary.AppendUvarint(dst, uint64(size))
		dst = appendInt32s(dst, t.Epochs)
	}
	return dst
}

func uvarintLen(v uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], v)
}

// decodeConsumerKey reads the fields of a KIP-848 key after its type.
func decodeConsumerKey(typ int16, d *decoder, r *coordRecord) {
	switch typ {
	case keyConsumerGroup:
		r.Kind = kindConsumerGroup
	case keyConsumerMember:
		r.Kind = kindConsumerMember
	case keyConsumerTargetMeta:
		r.Kind = kindConsumerTargetMeta
	case keyConsumerTargetMember:
		r.Kind = kindConsumerTarget
	case keyConsumerCurrent:
		r.Kind = kindConsumerCurrent
	default:
		panic("BUG: not a consumer-group key type")
	}
	r.Group = d.str()
	switch r.Kind {
	case kindConsumerMember, kindConsumerTarget, kindConsumerCurrent:
		r.C.MemberID = d.str()
	}
}

// decodeConsumerValue decodes the value of a KIP-848 record into r. A value of a later
// version is read as far as version 0's fields go (flexible versions only add fields, tagged
// ones among them): what yard needs is there.
func decodeConsumerValue(b []byte, r *coordRecord) error {
	if len(b) < 2 {
		return fmt.Errorf("%w: consumer-group value shorter than its version", errCorruptRecord)
	}
	ver := int16(binary.BigEndian.Uint16(b))
	if ver < 0 {
		return fmt.Errorf("%w: consumer-group value version %d", errCorruptRecord, ver)
	}
	d := decoder{b: b[2:], flexible: true}
	c := &r.C
	switch r.Kind {
	case kindConsumerGroup:
		v := &cgMetaValue{Epoch: d.i32()}
		d.taggedFields(func(tag uint64, t *decoder) {
			if tag == 0 {
				v.MetadataHash = t.i64()
			}
		})
		c.Meta = v
	case kindConsumerMember:
		v := &cgMemberValue{}
		v.InstanceID = d.str()
		v.RackID = d.str()
		v.ClientID = d.str()
		v.ClientHost = d.str()
		n := d.arrayLen()
		for i := 0; i < n && d.err == nil; i++ {
			v.Subscribed = append(v.Subscribed, d.str())
		}
		v.Regex = d.str()
		v.RebalanceTimeoutMs = d.i32()
		v.Assignor = d.str()
		d.tags() // ClassicMemberMetadata: members of the classic protocol, which yard keeps apart
		c.Member = v
	case kindConsumerTargetMeta:
		v := &cgTargetMetaValue{AssignmentEpoch: d.i32()}
		d.taggedFields(func(tag uint64, t *decoder) {
			if tag == 0 {
				v.TimestampMs = t.i64()
			}
		})
		c.TMeta = v
	case kindConsumerTarget:
		c.Target, c.TargetSet = d.topicPartitions(), true
		d.tags()
	case kindConsumerCurrent:
		v := &cgCurrentValue{}
		v.MemberEpoch = d.i32()
		v.PrevEpoch = d.i32()
		if s := d.take(1, "int8"); s != nil {
			v.State = int8(s[0])
		}
		v.Assigned = d.topicPartitions()
		v.Revoking = d.topicPartitions()
		d.tags()
		c.Current = v
	}
	if ver > consumerValueVersion && d.err == nil {
		return nil // fields a later version appended
	}
	return d.end("consumer-group value")
}

func (d *decoder) topicPartitions() []cgTopicPartitions {
	n := d.arrayLen()
	if n > maxConsumerRecordElements {
		d.fail("array length")
		return nil
	}
	var out []cgTopicPartitions
	for i := 0; i < n && d.err == nil; i++ {
		var t cgTopicPartitions
		copy(t.TopicID[:], d.take(16, "uuid"))
		t.Partitions = d.int32s()
		d.taggedFields(func(tag uint64, td *decoder) {
			if tag == 0 {
				td.flexible = true
				t.Epochs = d.orFail(td.int32s(), td)
			}
		})
		if t.Epochs != nil && len(t.Epochs) != len(t.Partitions) {
			t.Epochs = nil // not Kafka's: each partition's epoch unknown
		}
		out = append(out, t)
	}
	return out
}

// orFail carries a tagged field decoder's error over to d.
func (d *decoder) orFail(v []int32, td *decoder) []int32 {
	if td.err != nil {
		d.fail("tagged field")
		return nil
	}
	return v
}

func (d *decoder) int32s() []int32 {
	n := d.length(4, "array")
	if n < 0 || n > len(d.b)/4 {
		if n != -1 {
			d.fail("int32 array length")
		}
		return nil
	}
	out := make([]int32, n)
	for i := range out {
		out[i] = d.i32()
	}
	return out
}

// taggedFields reads a flexible struct's tagged fields, handing each to fn with a decoder
// over exactly its bytes (fn may leave bytes unread: a later type of the field).
func (d *decoder) taggedFields(fn func(tag uint64, t *decoder)) {
	n := d.uvarint("tagged fields")
	for i := uint64(0); i < n && d.err == nil; i++ {
		tag := d.uvarint("tag")
		size := d.uvarint("tag size")
		if size > uint64(len(d.b)) {
			d.fail("tag size")
			return
		}
		b := d.take(int(size), "tag")
		if d.err == nil {
			fn(tag, &decoder{b: b})
		}
	}
}

// hashTopics is the MetadataHash yard writes: FNV-1a over the subscribed topics' names and
// partition counts (0 for none; Kafka's own hash also covers racks; the value matters only to the
// coordinator that wrote it: a change means the target assignment is to be recomputed).
func hashTopics(names []string, counts map[string]int32) int64 {
	if len(names) == 0 {
		return 0 // as a group that never had a subscribed topic
	}
	const offset64, prime64 = 14695981039346656037, 1099511628211
	h := uint64(offset64)
	mix := func(b byte) { h = (h ^ uint64(b)) * prime64 }
	for _, n := range names {
		for i := 0; i < len(n); i++ {
			mix(n[i])
		}
		mix(0)
		c := uint32(counts[n])
		mix(byte(c >> 24))
		mix(byte(c >> 16))
		mix(byte(c >> 8))
		mix(byte(c))
	}
	if h == 0 { // 0 reads as "no topics"
		h = 1
	}
	return int64(h)
}
