package group

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"reflect"
	"testing"

	rb "github.com/yardmq/yard/internal/recordbatch"
)

func TestPartitionForIsKafkas(t *testing.T) {
	// Expected values from Java's String.hashCode and Kafka's Utils.abs(h) % 50.
	for _, c := range []struct {
		group string
		want  int32
	}{
		{"", 0},
		{"group", 47},
		{"my-group", 12},
		{"polygenelubricants", 0}, // hashCode is Integer.MIN_VALUE: Utils.abs gives 0
		{"console-consumer-12345", 6},
		{"\U0001F600g", 22}, // a surrogate pair in UTF-16
		{"grüppe", 12},
	} {
		if got := PartitionFor(c.group, 50); got != c.want {
			t.Errorf("PartitionFor(%q) = %d, want %d", c.group, got, c.want)
		}
	}
}

// TestRecordBytesAreKafkas pins the bytes of each record kind against Kafka's schemas.
func TestRecordBytesAreKafkas(t *testing.T) {
	key := appendOffsetKey(nil, "g", TopicPartition{"t", 2})
	if want := "0001" + "000167" + "000174" + "00000002"; hex.EncodeToString(key) != want {
		t.Errorf("offset key %x, want %s", key, want)
	}
	val := appendOffsetValue(nil, &OffsetValue{Offset: 5, LeaderEpoch: 7, Metadata: "m", CommitMs: 9})
	if want := "0003" + "0000000000000005" + "00000007" + "00016d" + "0000000000000009"; hex.EncodeToString(val) != want {
		t.Errorf("offset value %x, want %s", val, want)
	}
	gkey := appendGroupKey(nil, "g")
	if want := "0002000167"; hex.EncodeToString(gkey) != want {
		t.Errorf("group key %x, want %s", gkey, want)
	}
	gval := appendGroupValue(nil, &GroupMetadata{ProtocolType: "consumer", Generation: 1, CurrentStateMs: 3})
	want := "0003" + "0008" + hex.EncodeToString([]byte("consumer")) + "00000001" + "ffff" + "ffff" + "0000000000000003" + "00000000"
	if hex.EncodeToString(gval) != want {
		t.Errorf("empty group value %x, want %s", gval, want)
	}
}

func sampleGroup() *GroupMetadata {
	return &GroupMetadata{ProtocolType: "consumer", Generation: 4, Protocol: "range", Leader: "m1", CurrentStateMs: 1700000000000,
		Members: []MemberMetadata{
			{MemberID: "m1", InstanceID: "i1", ClientID: "c", ClientHost: "/127.0.0.1", RebalanceTimeoutMs: 60000, SessionTimeoutMs: 45000, Subscription: []byte{0, 1}, Assignment: []byte{2}},
			{MemberID: "m2", ClientID: "c", ClientHost: "/127.0.0.1", RebalanceTimeoutMs: 1, SessionTimeoutMs: 2, Subscription: []byte{}, Assignment: []byte{}},
		}}
}

func sampleRecords() []coordRecord {
	return []coordRecord{
		{Kind: kindOffset, Group: "g", TopicPartition: TopicPartition{"t", 0}, Offset: &OffsetValue{Offset: 42, LeaderEpoch: 3, Metadata: "meta", CommitMs: 1700000000000}},
		{Kind: kindOffset, Group: "g", TopicPartition: TopicPartition{"t", 1}},
		{Kind: kindOffset, Group: "", TopicPartition: TopicPartition{"", -1}, Offset: &OffsetValue{Offset: -1, LeaderEpoch: -1}},
		{Kind: kindGroup, Group: "g", Meta: sampleGroup()},
		{Kind: kindGroup, Group: "gone"},
	}
}

func decodeAll(t testing.TB, b []byte) []coordRecord {
	t.Helper()
	var got []coordRecord
	used, _, err := walkBatches(b, func(h *rb.Header, batch []byte) error {
		_, err := forEachRecord(h, batch, func(r coordRecord) { got = append(got, r) })
		return err
	})
	if err != nil || used != len(b) {
		t.Fatalf("decode: used %d of %d: %v", used, len(b), err)
	}
	return got
}

func TestRecordsRoundTrip(t *testing.T) {
	recs := sampleRecords()
	b := appendBatch(nil, recs, 1234, noProducer)
	b = appendBatch(b, recs[:1], 1235, batchProducer{ID: 7, Epoch: 2})
	binary.BigEndian.PutUint64(b, 100) // the log assigns base offsets
	got := decodeAll(t, b)
	if want := append(append([]coordRecord{}, recs...), recs[0]); !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
	}
	h, _ := rb.ParseHeader(b[len(appendBatch(nil, recs, 1234, noProducer)):])
	if !h.Transactional() || h.ProducerID != 7 || h.ProducerEpoch != 2 {
		t.Fatalf("transactional batch header: %+v", h)
	}
	bad := bytes.Clone(b)
	bad[70] ^= 1
	if _, _, err := walkBatches(bad, func(*rb.Header, []byte) error { return nil }); err == nil {
		t.Fatal("corrupt batch accepted")
	}
}

// TestDecodeOtherVersions: values of every version Kafka has defined decode (a topic written
// by Kafka, or by a later yard, is readable), and keys of records yard does not keep are skipped.
func TestDecodeOtherVersions(t *testing.T) {
	key := appendOffsetKey(nil, "g", TopicPartition{"t", 0})
	be16 := func(v int) []byte { return binary.BigEndian.AppendUint16(nil, uint16(v)) }
	be32 := func(v int) []byte { return binary.BigEndian.AppendUint32(nil, uint32(v)) }
	be64 := func(v int) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for name, c := range map[string]struct {
		value []byte
		want  OffsetValue
	}{
		"v0": {cat(be16(0), be64(5), be16(1), []byte("m"), be64(9)), OffsetValue{Offset: 5, LeaderEpoch: -1, Metadata: "m", CommitMs: 9}},
		"v1": {cat(be16(1), be64(5), be16(1), []byte("m"), be64(9), be64(11)), OffsetValue{Offset: 5, LeaderEpoch: -1, Metadata: "m", CommitMs: 9}},
		"v2": {cat(be16(2), be64(5), be16(0), be64(9)), OffsetValue{Offset: 5, LeaderEpoch: -1, CommitMs: 9}},
		// v4 is flexible: compact string (length+1 as uvarint), then tagged fields (one, skipped).
		"v4": {cat(be16(4), be64(5), be32(3), []byte{2, 'm'}, be64(9), []byte{1, 0, 2, 0xaa, 0xbb}), OffsetValue{Offset: 5, LeaderEpoch: 3, Metadata: "m", CommitMs: 9}},
	} {
		r, err := decodeRecord(key, c.value)
		if err != nil || r.Offset == nil || *r.Offset != c.want {
			t.Errorf("%s: %+v %v", name, r.Offset, err)
		}
	}
	// Group metadata v0 (no rebalance timeout, state timestamp or instance id) and v4.
	v0 := cat(be16(0), be16(1), []byte("c"), be32(2), be16(1), []byte("r"), be16(-1), be32(1),
		be16(2), []byte("m1"), be16(1), []byte("x"), be16(1), []byte("h"), be32(10), be32(1), []byte{7}, be32(0))
	r, err := decodeRecord(appendGroupKey(nil, "g"), v0)
	want := GroupMetadata{ProtocolType: "c", Generation: 2, Protocol: "r", CurrentStateMs: -1,
		Members: []MemberMetadata{{MemberID: "m1", ClientID: "x", ClientHost: "h", RebalanceTimeoutMs: -1, SessionTimeoutMs: 10, Subscription: []byte{7}, Assignment: []byte{}}}}
	if err != nil || !reflect.DeepEqual(*r.Meta, want) {
		t.Errorf("group v0: %+v %v", r.Meta, err)
	}
	v4 := cat(be16(4), []byte{2, 'c'}, be32(2), []byte{2, 'r'}, []byte{0}, be64(3), []byte{2},
		[]byte{3, 'm', '1'}, []byte{0}, []byte{2, 'x'}, []byte{2, 'h'}, be32(5), be32(10), []byte{2, 7}, []byte{1}, []byte{0}, []byte{0})
	r, err = decodeRecord(appendGroupKey(nil, "g"), v4)
	want = GroupMetadata{ProtocolType: "c", Generation: 2, Protocol: "r", CurrentStateMs: 3,
		Members: []MemberMetadata{{MemberID: "m1", ClientID: "x", ClientHost: "h", RebalanceTimeoutMs: 5, SessionTimeoutMs: 10, Subscription: []byte{7}, Assignment: []byte{}}}}
	if err != nil || !reflect.DeepEqual(*r.Meta, want) {
		t.Errorf("group v4: %+v %v", r.Meta, err)
	}
	// Records yard does not keep: ConsumerGroupPartitionMetadata (no longer written since
	// Kafka 4.1), ConsumerGroupRegularExpression, share and streams groups.
	for _, typ := range []int{keyConsumerPartitionMeta, 9, 10, 11, keyConsumerRegex, 17} {
		if r, err := decodeRecord(cat(be16(typ), be16(1), []byte("g")), []byte{0, 0}); err != nil || r.Kind != kindUnknown {
			t.Errorf("key %d: %+v %v", typ, r, err)
		}
	}
	if _, err := decodeRecord(cat(be16(0xfff0)), nil); err == nil {
		t.Error("negative key version accepted")
	}
}

// FuzzDecodeRecord: the record decoder (classic and KIP-848 records) never panics or reads
// past its input, and what it accepts re-encodes (in the versions yard writes) to a record that decodes the same.
func FuzzDecodeRecord(f *testing.F) {
	for _, r := range append(sampleRecords(), consumerSampleRecords()...) {
		k, v, _ := encodeRecord(nil, &r)
		f.Add(k, v)
		if len(v) > 3 {
			f.Add(k, v[:len(v)-3])
		}
	}
	f.Add([]byte{0, 1}, []byte{0, 4, 0})
	f.Add([]byte{}, []byte(nil))
	f.Fuzz(func(t *testing.T, key, value []byte) {
		r, err := decodeRecord(key, value)
		if err != nil || r.Kind == kindUnknown {
			return
		}
		if len(r.Group) > maxStringLen || len(r.Topic) > maxStringLen || len(r.C.MemberID) > maxStringLen {
			return
		}
		if r.Meta != nil {
			for _, m := range r.Meta.Members {
				if len(m.MemberID) > maxStringLen || len(m.ClientID) > maxStringLen || len(m.ClientHost) > maxStringLen {
					return
				}
			}
		}
		k, v, _ := encodeRecord(nil, &r)
		again, err := decodeRecord(k, v)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		norm := func(x *coordRecord) {
			if x.Meta != nil {
				for i := range x.Meta.Members {
					m := &x.Meta.Members[i]
					if m.Subscription == nil {
						m.Subscription = []byte{}
					}
					if m.Assignment == nil {
						m.Assignment = []byte{}
					}
				}
			}
		}
		norm(&r)
		norm(&again)
		if !reflect.DeepEqual(r, again) {
			t.Fatalf("round trip differs:\n%+v\n%+v", r, again)
		}
	})
}

// FuzzDecodeBatches: the batch walker never panics and never claims more than its input.
func FuzzDecodeBatches(f *testing.F) {
	valid := appendBatch(nil, sampleRecords(), 1, noProducer)
	f.Add(valid)
	f.Add(valid[:len(valid)-3])
	f.Add(append(bytes.Clone(valid), valid...))
	f.Add(appendLegacyBatch(nil, sampleRecords()[:3], 1))
	f.Add(make([]byte, 61))
	f.Fuzz(func(t *testing.T, b []byte) {
		used, _, _ := walkBatches(b, func(h *rb.Header, batch []byte) error {
			_, err := forEachRecord(h, batch, func(coordRecord) {})
			return err
		})
		if used > len(b) {
			t.Fatalf("used %d of %d", used, len(b))
		}
	})
}

// FuzzDecodeLegacyRecord: the decoder of the old offsets log never panics, and round-trips.
func FuzzDecodeLegacyRecord(f *testing.F) {
	b := appendLegacyBatch(nil, sampleRecords()[:3], 1)
	h, _ := rb.ParseHeader(b)
	it := rb.NewRecords(b[rb.HeaderLen:], h.RecordCount)
	var rec rb.Record
	for it.Next(&rec) {
		f.Add(bytes.Clone(rec.Key), bytes.Clone(rec.Value))
	}
	f.Fuzz(func(t *testing.T, key, value []byte) {
		r, err := decodeLegacyRecord(key, value)
		if err != nil || len(r.Group) > maxStringLen || len(r.Topic) > maxStringLen {
			return
		}
		if r.Offset != nil && len(r.Offset.Metadata) > maxStringLen {
			return
		}
		enc := appendLegacyBatch(nil, []coordRecord{r}, 0)
		h, _ := rb.ParseHeader(enc)
		it := rb.NewRecords(enc[rb.HeaderLen:], h.RecordCount)
		var rec rb.Record
		if !it.Next(&rec) {
			t.Fatal("no record")
		}
		again, err := decodeLegacyRecord(rec.Key, rec.Value)
		if err != nil || !reflect.DeepEqual(r, again) {
			t.Fatalf("round trip: %+v %+v %v", r, again, err)
		}
	})
}
