package group

import (
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func hexOf(parts ...string) string { return strings.Join(parts, "") }

var tid = [16]byte{0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11}

const tidHex = "11111111111111111111111111111111"

// TestConsumerRecordBytesAreKafkas pins each KIP-848 record against bytes derived by hand
// from Kafka 4.4's ConsumerGroup*Key/Value.json (field order, compact lengths, tagged fields).
func TestConsumerRecordBytesAreKafkas(t *testing.T) {
	for _, c := range []struct {
		name       string
		r          coordRecord
		key, value string
	}{
		{"group metadata", coordRecord{Kind: kindConsumerGroup, Group: "g", C: consumerRecord{Meta: &cgMetaValue{Epoch: 5}}},
			"0003" + "000167", hexOf("0000", "00000005", "00")},
		{"group metadata with hash", coordRecord{Kind: kindConsumerGroup, Group: "g", C: consumerRecord{Meta: &cgMetaValue{Epoch: 5, MetadataHash: 0x0102030405060708}}},
			"0003000167", hexOf("0000", "00000005", "01", "00", "08", "0102030405060708")},
		{"member metadata", coordRecord{Kind: kindConsumerMember, Group: "g", C: consumerRecord{MemberID: "m", Member: &cgMemberValue{
			RackID: "r", ClientID: "c", ClientHost: "/h", Subscribed: []string{"t"}, RebalanceTimeoutMs: 300000, Assignor: "uniform"}}},
			hexOf("0005", "000167", "00016d"),
			hexOf("0000", "00" /* instance: null */, "0272", "0263", "032f68", "02" /* 1 topic */, "0274", "00" /* regex: null */, "000493e0",
				"08756e69666f726d", "00" /* no tagged fields */)},
		{"target assignment metadata", coordRecord{Kind: kindConsumerTargetMeta, Group: "g", C: consumerRecord{TMeta: &cgTargetMetaValue{AssignmentEpoch: 5, TimestampMs: 9}}},
			"0006000167", hexOf("0000", "00000005", "01", "00", "08", "0000000000000009")},
		{"target assignment member", coordRecord{Kind: kindConsumerTarget, Group: "g", C: consumerRecord{MemberID: "m", TargetSet: true,
			Target: []cgTopicPartitions{{TopicID: tid, Partitions: []int32{0, 2}}}}},
			hexOf("0007", "000167", "00016d"), hexOf("0000", "02", tidHex, "03", "00000000", "00000002", "00", "00")},
		{"current member assignment", coordRecord{Kind: kindConsumerCurrent, Group: "g", C: consumerRecord{MemberID: "m", Current: &cgCurrentValue{
			MemberEpoch: 5, PrevEpoch: 4, State: memberStateUnrevoked,
			Assigned: []cgTopicPartitions{{TopicID: tid, Partitions: []int32{0}, Epochs: []int32{3}}},
			Revoking: []cgTopicPartitions{{TopicID: tid, Partitions: []int32{2}}}}}},
			hexOf("0008", "000167", "00016d"),
			hexOf("0000", "00000005", "00000004", "01",
				"02", tidHex, "02", "00000000", "01", "00", "05", "02", "00000003", // assignmentEpochs: tag 0, 5 bytes
				"02", tidHex, "02", "00000002", "00",
				"00")},
		{"member tombstone", coordRecord{Kind: kindConsumerCurrent, Group: "g", C: consumerRecord{MemberID: "m"}}, "0008000167" + "00016d", ""},
	} {
		k, v, _ := encodeRecord(nil, &c.r)
		if hex.EncodeToString(k) != c.key || hex.EncodeToString(v) != c.value {
			t.Errorf("%s:\n key %x value %x\nwant %s value %s", c.name, k, v, c.key, c.value)
		}
		if c.value == "" && v != nil {
			t.Errorf("%s: tombstone has a value", c.name)
		}
		got, err := decodeRecord(k, v)
		if err != nil || !reflect.DeepEqual(got, c.r) {
			t.Errorf("%s: decoded %+v %v", c.name, got, err)
		}
	}
}

// TestConsumerValueOfLaterVersion: a value of a later version (fields appended, unknown
// tagged fields) reads as its version 0 fields.
func TestConsumerValueOfLaterVersion(t *testing.T) {
	v, _ := hex.DecodeString(hexOf("0001", "00000007", "02", "05", "01", "aa", "00", "08", "0000000000000003", "ffff"))
	r, err := decodeRecord([]byte{0, 3, 0, 1, 'g'}, v)
	if err != nil || r.C.Meta == nil || *r.C.Meta != (cgMetaValue{Epoch: 7, MetadataHash: 3}) {
		t.Fatalf("%+v %v", r.C.Meta, err)
	}
	if _, err := decodeRecord([]byte{0, 3, 0, 1, 'g'}, v[:5]); err == nil {
		t.Fatal("truncated value accepted")
	}
}

func consumerSampleRecords() []coordRecord {
	return []coordRecord{
		{Kind: kindConsumerMember, Group: "g", C: consumerRecord{MemberID: "m", Member: &cgMemberValue{InstanceID: "i", ClientID: "c", ClientHost: "/h",
			Regex: "t.*", RebalanceTimeoutMs: -1}}},
		{Kind: kindConsumerGroup, Group: "g", C: consumerRecord{Meta: &cgMetaValue{Epoch: 3, MetadataHash: -5}}},
		{Kind: kindConsumerTarget, Group: "g", C: consumerRecord{MemberID: "m", TargetSet: true}},
		{Kind: kindConsumerTargetMeta, Group: "g", C: consumerRecord{TMeta: &cgTargetMetaValue{AssignmentEpoch: 3}}},
		{Kind: kindConsumerCurrent, Group: "g", C: consumerRecord{MemberID: "m", Current: &cgCurrentValue{MemberEpoch: 3, PrevEpoch: 2,
			Assigned: []cgTopicPartitions{{TopicID: tid, Partitions: []int32{1, 4}, Epochs: []int32{2, 3}}}}}},
		{Kind: kindConsumerMember, Group: "g", C: consumerRecord{MemberID: "gone"}},
		{Kind: kindConsumerGroup, Group: "gone"},
	}
}

func TestConsumerRecordsRoundTrip(t *testing.T) {
	recs := consumerSampleRecords()
	got := decodeAll(t, appendBatch(nil, recs, 1, noProducer))
	if !reflect.DeepEqual(got, recs) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, recs)
	}
}

func tps(s ...TopicPartition) []TopicPartition { return s }

// TestConsumerGroupRestoredAfterRestart: a KIP-848 group is restored when the coordinator
// reopens, at its epoch, with its members' epochs, subscriptions and assignments and its
// target assignment: a member heartbeats and commits on at its epoch; an unknown member gets
// UNKNOWN_MEMBER_ID and a wrong epoch FENCED_MEMBER_EPOCH, as in Kafka. A member that left,
// and a deleted group, stay gone. (Before, the group was lost with the process: every member
// was fenced and rejoined at epoch 1.)
func TestConsumerGroupRestoredAfterRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := openTest(t, dir, nil)
	type mstate struct {
		id    string
		epoch int32
		owned []TopicPartition
	}
	a, b := &mstate{id: "a"}, &mstate{id: "b"}
	step := func(c *Coordinator, m *mstate, req ConsumerHeartbeatRequest) ConsumerHeartbeatResult {
		t.Helper()
		req.MemberID, req.MemberEpoch, req.Owned, req.OwnedSet = m.id, m.epoch, m.owned, true
		res := hb(t, c, req)
		m.epoch = res.MemberEpoch
		if res.AssignmentSet {
			m.owned = res.Assignment
		}
		return res
	}
	step(c, a, ConsumerHeartbeatRequest{SubscribedTopics: []string{"t"}, ClientID: "ca", RebalanceTimeout: 1e9})
	step(c, b, ConsumerHeartbeatRequest{SubscribedRegex: ptr("^t$"), InstanceID: "ib", RackID: "r1"})
	for i := 0; i < 3; i++ {
		step(c, a, ConsumerHeartbeatRequest{})
		step(c, b, ConsumerHeartbeatRequest{})
	}
	before, err := c.DescribeConsumerGroup(ctx, "g")
	if err != nil || before.State != StateStable || len(before.Members) != 2 || before.Epoch < 3 || len(a.owned) == 0 {
		t.Fatalf("before: %+v %v", before, err)
	}
	commit := func(c *Coordinator, member string, epoch int32, tp TopicPartition) error {
		_, err := c.Commit(ctx, CommitRequest{Group: "g", MemberID: member, Generation: epoch,
			Offsets: map[TopicPartition]OffsetValue{tp: {Offset: 5}}})
		return err
	}
	if err := commit(c, "a", a.epoch, a.owned[0]); err != nil {
		t.Fatal(err)
	}
	c.Close()

	c = openTest(t, dir, nil)
	after, err := c.DescribeConsumerGroup(ctx, "g")
	if err != nil || !reflect.DeepEqual(after, before) {
		t.Fatalf("after a restart:\n got %+v %v\nwant %+v", after, err, before)
	}
	epoch, owned := a.epoch, a.owned
	step(c, a, ConsumerHeartbeatRequest{})
	if a.epoch != epoch || !reflect.DeepEqual(a.owned, owned) {
		t.Fatalf("heartbeat after a restart: %+v, before %d %v", a, epoch, owned)
	}
	if err := commit(c, "a", a.epoch, a.owned[0]); err != nil {
		t.Fatalf("commit after a restart: %v", err)
	}
	if f := c.FetchOffsets("g", tps(a.owned[0])); len(f) != 1 || f[0].Offset != 5 {
		t.Fatalf("offsets after a restart: %+v", f)
	}
	res := c.ConsumerHeartbeat(ctx, ConsumerHeartbeatRequest{Group: "g", MemberID: "x", MemberEpoch: a.epoch})
	if !errors.Is(res.Err, ErrUnknownMemberID) {
		t.Fatalf("unknown member: %v", res.Err)
	}
	res = c.ConsumerHeartbeat(ctx, ConsumerHeartbeatRequest{Group: "g", MemberID: "b", MemberEpoch: b.epoch + 7})
	if !errors.Is(res.Err, ErrFencedMemberEpoch) {
		t.Fatalf("wrong epoch: %v", res.Err)
	}

	// a leaves: b gets everything, and that is what the next restart finds.
	hb(t, c, ConsumerHeartbeatRequest{MemberID: "a", MemberEpoch: -1})
	for i := 0; i < 3; i++ {
		step(c, b, ConsumerHeartbeatRequest{})
	}
	before, _ = c.DescribeConsumerGroup(ctx, "g")
	if len(before.Members) != 1 || len(before.Members[0].Assigned) != 3 {
		t.Fatalf("after a left: %+v", before)
	}
	c.Close()
	c = openTest(t, dir, nil)
	if after, err := c.DescribeConsumerGroup(ctx, "g"); err != nil || !reflect.DeepEqual(after, before) {
		t.Fatalf("after a left and a restart:\n got %+v %v\nwant %+v", after, err, before)
	}

	// b leaves and the group is deleted: nothing is restored.
	hb(t, c, ConsumerHeartbeatRequest{MemberID: "b", MemberEpoch: -1})
	if err := c.DeleteGroup(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	c.Close()
	c = openTest(t, dir, nil)
	if d, err := c.DescribeConsumerGroup(ctx, "g"); !errors.Is(err, ErrGroupIDNotFound) {
		t.Fatalf("deleted group after a restart: %+v %v", d, err)
	}
	if got := c.offsets.consumerGroupNames(); len(got) != 0 {
		t.Fatalf("records left of a deleted group: %v", got)
	}
}

func ptr[T any](v T) *T { return &v }

// shardRecords decodes every record of the __consumer_offsets partition of group.
func shardRecords(t *testing.T, c *Coordinator, group string) []coordRecord {
	t.Helper()
	p := c.offsets.shard(group).p
	rr, err := p.Read(p.StartOffset(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	b, err := rr.AppendTo(nil)
	rr.Release()
	if err != nil {
		t.Fatal(err)
	}
	return decodeAll(t, b)
}

func kinds(recs []coordRecord) string {
	var b strings.Builder
	for _, r := range recs {
		k := map[recordKind]string{kindOffset: "offset", kindGroup: "group", kindConsumerGroup: "3", kindConsumerMember: "5",
			kindConsumerTargetMeta: "6", kindConsumerTarget: "7", kindConsumerCurrent: "8"}[r.Kind]
		if isConsumerKind(r.Kind) && consumerValueIsNull(&r) {
			k += "x"
		}
		b.WriteString(k + " ")
	}
	return strings.TrimSpace(b.String())
}

// TestConsumerRecordsWrittenOnChangeOnly: a heartbeat that changes nothing writes nothing; a
// member's leaving writes its tombstones in the order Kafka's replay requires (current and
// target assignment before the member's metadata) and then the group's new epoch and target.
func TestConsumerRecordsWrittenOnChangeOnly(t *testing.T) {
	t.Parallel()
	c := openTest(t, t.TempDir(), nil)
	a := hb(t, c, ConsumerHeartbeatRequest{MemberID: "a", SubscribedTopics: []string{"t"}, OwnedSet: true})
	if got := kinds(shardRecords(t, c, "g")); got != "5 3 7 6 8" {
		t.Fatalf("records of a join: %s", got)
	}
	for i := 0; i < 3; i++ {
		hb(t, c, ConsumerHeartbeatRequest{MemberID: "a", MemberEpoch: a.MemberEpoch, Owned: a.Assignment, OwnedSet: true})
	}
	if n := len(shardRecords(t, c, "g")); n != 5 {
		t.Fatalf("heartbeats that change nothing wrote %d records", n-5)
	}
	b := hb(t, c, ConsumerHeartbeatRequest{MemberID: "b", SubscribedTopics: []string{"t"}, OwnedSet: true})
	hb(t, c, ConsumerHeartbeatRequest{MemberID: "b", MemberEpoch: b.MemberEpoch, OwnedSet: true})
	before := len(shardRecords(t, c, "g"))
	hb(t, c, ConsumerHeartbeatRequest{MemberID: "b", MemberEpoch: -1})
	if got := kinds(shardRecords(t, c, "g")[before:]); !strings.HasPrefix(got, "8x 7x 5x 3 ") {
		t.Fatalf("records of a leave: %s", got)
	}
}

// TestStaticConsumerMemberAcrossRestart: a static member away for a restart (epoch -2) is
// recorded as such; after the coordinator restarts, its successor with the same instance id
// takes its place, epoch and partitions without a rebalance.
func TestStaticConsumerMemberAcrossRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := openTest(t, dir, nil)
	s := hb(t, c, ConsumerHeartbeatRequest{MemberID: "s1", InstanceID: "i", SubscribedTopics: []string{"t"}, OwnedSet: true})
	s = hb(t, c, ConsumerHeartbeatRequest{MemberID: "s1", MemberEpoch: s.MemberEpoch, Owned: s.Assignment, OwnedSet: true})
	hb(t, c, ConsumerHeartbeatRequest{MemberID: "s1", InstanceID: "i", MemberEpoch: -2})
	before, _ := c.DescribeConsumerGroup(ctx, "g")
	c.Close()
	c = openTest(t, dir, nil)
	s2 := hb(t, c, ConsumerHeartbeatRequest{MemberID: "s2", InstanceID: "i", SubscribedTopics: []string{"t"}, OwnedSet: true})
	after, _ := c.DescribeConsumerGroup(ctx, "g")
	if s2.MemberEpoch != s.MemberEpoch || after.Epoch != before.Epoch || len(after.Members) != 1 || len(after.Members[0].Assigned) != 3 {
		t.Fatalf("successor after a restart: %+v\n%+v\nbefore %+v", s2, after, before)
	}
}

// TestConsumerGroupTakesOverEmptyClassicGroup: when a KIP-848 member joins a group name whose
// classic group emptied, the classic GroupMetadata gets a tombstone before the consumer
// group's first records, as Kafka writes it.
func TestConsumerGroupTakesOverEmptyClassicGroup(t *testing.T) {
	t.Parallel()
	c := openTest(t, t.TempDir(), nil)
	j := mustJoin(t, c, joinReq("", "", time.Minute, "range"))
	mustSync(t, c, j.MemberID, j.Generation, map[string][]byte{j.MemberID: nil})
	if _, err := c.Leave(ctx, "g", []LeaveMember{{MemberID: j.MemberID}}); err != nil {
		t.Fatal(err)
	}
	before := len(shardRecords(t, c, "g"))
	hb(t, c, ConsumerHeartbeatRequest{MemberID: "a", SubscribedTopics: []string{"t"}, OwnedSet: true})
	recs := shardRecords(t, c, "g")[before:]
	if got := kinds(recs); got != "group 5 3 7 6 8" || recs[0].Meta != nil {
		t.Fatalf("records of the takeover: %s", got)
	}
	if c.offsets.groupMeta("g") != nil {
		t.Fatal("classic metadata left after the takeover")
	}
}
