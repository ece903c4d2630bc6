package group

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/yardmq/yard/internal/log"
	rb "github.com/yardmq/yard/internal/recordbatch"
	"github.com/yardmq/yard/internal/stream"
)

// partitionRecords decodes every record of partition p of __consumer_offsets; control
// batches are returned as records of kind kindUnknown with the producer in Partition.
func partitionRecords(t *testing.T, m *stream.Manager, p int32) []coordRecord {
	t.Helper()
	ot, _ := m.Topic(OffsetsTopic)
	part := ot.Partition(p)
	rr, err := part.Read(part.StartOffset(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	b, err := rr.AppendTo(nil)
	rr.Release()
	if err != nil {
		t.Fatal(err)
	}
	var out []coordRecord
	if _, _, err := walkBatches(b, func(h *rb.Header, batch []byte) error {
		if h.Control() {
			typ, _ := controlType(h, batch)
			out = append(out, coordRecord{Kind: kindUnknown, Group: map[int16]string{controlAbort: "ABORT", controlCommit: "COMMIT"}[typ],
				TopicPartition: TopicPartition{Partition: int32(h.ProducerID)}})
			return nil
		}
		_, err := forEachRecord(h, batch, func(r coordRecord) { out = append(out, r) })
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGroupMetadataRecords: a classic group's completed generation is recorded as Kafka's
// GroupMetadata (members, assignment, subscription), its end as an empty generation, and
// DeleteGroups writes tombstones for its offsets and its metadata.
func TestGroupMetadataRecords(t *testing.T) {
	dir := t.TempDir()
	m, _ := openTopicManager(t, dir, nil)
	parts, err := StreamOffsetsPartitions(m, 5)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(Config{OffsetsPartitions: parts, Topics: &fakeTopics{ends: map[string][]int64{"t": {10}}},
		MinSessionTimeout: time.Millisecond, InitialRebalanceDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a := mustJoin(t, c, joinReq("", "", time.Minute, "range"))
	mustSync(t, c, a.MemberID, a.Generation, map[string][]byte{a.MemberID: []byte("assigned")})
	if _, err := c.Commit(ctx, CommitRequest{Group: "g", MemberID: a.MemberID, Generation: a.Generation,
		Offsets: map[TopicPartition]OffsetValue{{"t", 0}: {Offset: 3, LeaderEpoch: -1}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Leave(ctx, "g", []LeaveMember{{MemberID: a.MemberID}}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "empty generation recorded", func() bool {
		meta := c.offsets.groupMeta("g")
		return meta != nil && len(meta.Members) == 0
	})
	if err := c.DeleteGroup(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	recs := partitionRecords(t, m, PartitionFor("g", 5))
	if len(recs) != 5 {
		t.Fatalf("records: %+v", recs)
	}
	full := recs[0].Meta
	if recs[0].Kind != kindGroup || full == nil || full.ProtocolType != "consumer" || full.Protocol != "range" ||
		full.Generation != 1 || full.Leader != a.MemberID || len(full.Members) != 1 {
		t.Fatalf("generation record: %+v", recs[0])
	}
	want := MemberMetadata{MemberID: a.MemberID, ClientID: "c", ClientHost: "/127.0.0.1", RebalanceTimeoutMs: 60000,
		SessionTimeoutMs: 60000, Subscription: []byte("range"), Assignment: []byte("assigned")}
	if !reflect.DeepEqual(full.Members[0], want) {
		t.Fatalf("member: %+v", full.Members[0])
	}
	if r := recs[1]; r.Kind != kindOffset || r.Offset == nil || r.Offset.Offset != 3 {
		t.Fatalf("offset record: %+v", r)
	}
	if r := recs[2]; r.Kind != kindGroup || r.Meta == nil || r.Meta.Generation != 2 || len(r.Meta.Members) != 0 || r.Meta.Protocol != "" {
		t.Fatalf("empty generation record: %+v", r)
	}
	if r := recs[3]; r.Kind != kindOffset || r.Offset != nil || r.Topic != "t" {
		t.Fatalf("offset tombstone: %+v", r)
	}
	if r := recs[4]; r.Kind != kindGroup || r.Meta != nil || r.Group != "g" {
		t.Fatalf("group tombstone: %+v", r)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTxnOffsetsBecomeVisibleOnCommit: transactional offsets are written to the group's
// partition as the producer's records, invisible until its commit marker; an aborted or
// unfinished transaction's offsets are never visible, after a restart either.
func TestTxnOffsetsBecomeVisibleOnCommit(t *testing.T) {
	for _, journal := range []bool{false, true} {
		t.Run(map[bool]string{false: "direct", true: "journal"}[journal], func(t *testing.T) { testTxnOffsets(t, journal) })
	}
}

func testTxnOffsets(t *testing.T, journal bool) {
	dir := t.TempDir()
	topics := &fakeTopics{ends: map[string][]int64{"t": {10, 20, 30}}}
	open := func() (*Coordinator, *stream.Manager, func()) {
		m, closeM := openTopicManager(t, dir, nil)
		parts, err := StreamOffsetsPartitions(m, 5)
		if err != nil {
			t.Fatal(err)
		}
		cfg := Config{OffsetsPartitions: parts, Topics: topics, InitialRebalanceDelay: -1}
		if journal {
			cfg.JournalDir = filepath.Join(dir, "offsets-journal")
		}
		c, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return c, m, func() { c.Close(); closeM() }
	}
	tp := func(p int32) TopicPartition { return TopicPartition{"t", p} }
	off := func(o int64) OffsetValue { return OffsetValue{Offset: o, LeaderEpoch: -1} }
	committed := func(c *Coordinator) []int64 {
		var out []int64
		for _, f := range c.FetchOffsets("g", []TopicPartition{tp(0), tp(1), tp(2)}) {
			out = append(out, f.Offset)
		}
		return out
	}
	c, m, closeAll := open()
	if err := c.WriteTxnOffsets(ctx, "g", 7, 0, map[TopicPartition]OffsetValue{tp(0): off(10)}); err != nil {
		t.Fatal(err)
	}
	if got := committed(c); !reflect.DeepEqual(got, []int64{-1, -1, -1}) {
		t.Fatalf("pending offsets visible: %v", got)
	}
	if err := c.CompleteTxnOffsets(ctx, "g", 7, 0, 0, true, map[TopicPartition]OffsetValue{tp(0): off(10)}); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteTxnOffsets(ctx, "g", 8, 0, map[TopicPartition]OffsetValue{tp(1): off(20)}); err != nil {
		t.Fatal(err)
	}
	if err := c.CompleteTxnOffsets(ctx, "g", 8, 0, 0, false, map[TopicPartition]OffsetValue{tp(1): off(20)}); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteTxnOffsets(ctx, "g", 9, 0, map[TopicPartition]OffsetValue{tp(2): off(30)}); err != nil {
		t.Fatal(err)
	}
	if got := committed(c); !reflect.DeepEqual(got, []int64{10, -1, -1}) {
		t.Fatalf("after commit, abort and an open transaction: %v", got)
	}
	if journal {
		if err := c.offsets.flush(); err != nil { // the queued batches go to the partition
			t.Fatal(err)
		}
	}
	p := PartitionFor("g", 5)
	ot, _ := m.Topic(OffsetsTopic)
	if lso, end := ot.Partition(p).LastStableOffset(), ot.Partition(p).EndOffset(); lso != end-1 {
		t.Fatalf("last stable offset %d, end %d: the open transaction should hold it", lso, end)
	}
	var shape []string
	for _, r := range partitionRecords(t, m, p) {
		shape = append(shape, map[recordKind]string{kindUnknown: r.Group, kindOffset: "offset"}[r.Kind])
	}
	if want := []string{"offset", "COMMIT", "offset", "ABORT", "offset"}; !reflect.DeepEqual(shape, want) {
		t.Fatalf("partition holds %v, want %v", shape, want)
	}
	closeAll()

	c, _, closeAll = open()
	if got := committed(c); !reflect.DeepEqual(got, []int64{10, -1, -1}) {
		t.Fatalf("after reopen: %v", got)
	}
	// The transaction coordinator completes the open transaction after the restart.
	if err := c.CompleteTxnOffsets(ctx, "g", 9, 0, 0, true, map[TopicPartition]OffsetValue{tp(2): off(30)}); err != nil {
		t.Fatal(err)
	}
	closeAll()
	c, _, closeAll = open()
	defer closeAll()
	if got := committed(c); !reflect.DeepEqual(got, []int64{10, -1, 30}) {
		t.Fatalf("after the completion and a reopen: %v", got)
	}
}

// writeOldOffsetsLog writes a data directory's offsets log as yard wrote it before
// __consumer_offsets had partitions (legacy.go), with an overwrite and a tombstone.
func writeOldOffsetsLog(t *testing.T, dir string) map[string][]FetchedOffset {
	t.Helper()
	l, err := log.Open(dir, log.Options{})
	if err != nil {
		t.Fatal(err)
	}
	v := func(o int64) *OffsetValue {
		return &OffsetValue{Offset: o, LeaderEpoch: 2, Metadata: "md", CommitMs: 1700000000000}
	}
	batches := [][]coordRecord{
		{{Group: "g1", TopicPartition: TopicPartition{"t", 0}, Offset: v(1)}, {Group: "g1", TopicPartition: TopicPartition{"t", 1}, Offset: v(2)}},
		{{Group: "g2", TopicPartition: TopicPartition{"t", 0}, Offset: v(5)}},
		{{Group: "g1", TopicPartition: TopicPartition{"t", 0}, Offset: v(3)}, {Group: "g1", TopicPartition: TopicPartition{"t", 1}}},
	}
	for _, b := range batches {
		res, err := l.AppendNoWait(appendLegacyBatch(nil, b, 1700000000000))
		if err != nil {
			t.Fatal(err)
		}
		if err := l.WaitDurable(ctx, res.LastOffset); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return map[string][]FetchedOffset{
		"g1": {{TopicPartition{"t", 0}, *v(3)}},
		"g2": {{TopicPartition{"t", 0}, *v(5)}},
	}
}

// TestMigrateOldOffsetsLog: a data directory written by the old code (one-partition log in
// the old value format) is converted on open, once; a conversion interrupted before the old
// log was removed is done again with the same result.
func TestMigrateOldOffsetsLog(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "__consumer_offsets")
	want := writeOldOffsetsLog(t, old)
	topics := &fakeTopics{ends: map[string][]int64{"t": {10, 20}}}
	open := func() (*Coordinator, *stream.Manager, func()) {
		m, closeM := openTopicManager(t, dir, nil)
		parts, err := StreamOffsetsPartitions(m, 50)
		if err != nil {
			t.Fatal(err)
		}
		c, err := Open(Config{OffsetsPartitions: parts, LegacyOffsetsDir: old, JournalDir: filepath.Join(dir, "offsets-journal"),
			Topics: topics, InitialRebalanceDelay: -1})
		if err != nil {
			t.Fatal(err)
		}
		return c, m, func() { c.Close(); closeM() }
	}
	check := func(c *Coordinator, when string) {
		t.Helper()
		for g, w := range want {
			if got := c.FetchOffsets(g, nil); !reflect.DeepEqual(got, w) {
				t.Fatalf("%s: group %s: %+v, want %+v", when, g, got, w)
			}
		}
		if _, err := os.Lstat(old); !os.IsNotExist(err) {
			t.Fatalf("%s: the old log is still there: %v", when, err)
		}
	}
	c, m, closeAll := open()
	check(c, "after migration")
	recs := partitionRecords(t, m, PartitionFor("g1", 50))
	if len(recs) != 1 || recs[0].Offset == nil || recs[0].Offset.Offset != 3 {
		t.Fatalf("g1's partition holds %+v", recs)
	}
	closeAll()

	// A crash after the new records were written but before the old log was removed: the
	// old log is found again and migrated again.
	writeOldOffsetsLog(t, old)
	c, _, closeAll = open()
	check(c, "after a repeated migration")
	closeAll()
	c, _, closeAll = open()
	defer closeAll()
	check(c, "after a plain reopen")
}
