package group

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/yardmq/yard/internal/log"
)

func sampleRecords() []offsetRecord {
	return []offsetRecord{
		{Group: "g", TopicPartition: TopicPartition{"t", 0}, Value: &OffsetValue{Offset: 42, LeaderEpoch: 3, Metadata: "meta", CommitMs: 1700000000000}},
		{Group: "g", TopicPartition: TopicPartition{"t", 1}},
		{Group: "", TopicPartition: TopicPartition{"", -1}, Value: &OffsetValue{Offset: -1, LeaderEpoch: -1}},
	}
}

func TestOffsetLogRoundTrip(t *testing.T) {
	recs := sampleRecords()
	b := appendBatch(nil, recs, 1234)
	b = appendBatch(b, recs[:1], 1235)
	binary.BigEndian.PutUint64(b, 100) // the log assigns base offsets
	var got []offsetRecord
	used, next, err := decodeBatches(b, func(r offsetRecord) { got = append(got, r) })
	if err != nil || used != len(b) || next != 1 {
		t.Fatalf("decode: used %d of %d, next %d, err %v", used, len(b), next, err)
	}
	if want := append(append([]offsetRecord{}, recs...), recs[0]); !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
	}
	// A partial trailing batch is left for the next read; a flipped byte is caught by the CRC.
	if used, _, err := decodeBatches(b[:len(b)-1], func(offsetRecord) {}); err != nil || used >= len(b)-1 {
		t.Fatalf("partial: used %d err %v", used, err)
	}
	bad := bytes.Clone(b)
	bad[70] ^= 1
	if _, _, err := decodeBatches(bad, func(offsetRecord) {}); err == nil {
		t.Fatal("corrupt batch decoded")
	}
}

// FuzzDecodeBatches: the offsets-log decoder never panics or reads past its input, and
// whatever it accepts re-encodes to records that decode the same.
func FuzzDecodeBatches(f *testing.F) {
	valid := appendBatch(nil, sampleRecords(), 1)
	f.Add(valid)
	f.Add(valid[:len(valid)-3])
	f.Add(append(bytes.Clone(valid), valid...))
	f.Add([]byte{})
	f.Add(make([]byte, 61))
	f.Fuzz(func(t *testing.T, b []byte) {
		var recs []offsetRecord
		used, _, err := decodeBatches(b, func(r offsetRecord) { recs = append(recs, r) })
		if used > len(b) {
			t.Fatalf("used %d of %d", used, len(b))
		}
		if err != nil || len(recs) == 0 {
			return
		}
		var again []offsetRecord
		for _, r := range recs {
			if len(r.Group) > maxStringLen || len(r.Topic) > maxStringLen {
				return
			}
		}
		enc := appendBatch(nil, recs, 0)
		if _, _, err := decodeBatches(enc, func(r offsetRecord) { again = append(again, r) }); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !reflect.DeepEqual(recs, again) {
			t.Fatalf("round trip differs")
		}
	})
}

// clock is a settable Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func newClock() *clock               { return &clock{t: time.Unix(1_700_000_000, 0)} }
func offsets(n int) map[TopicPartition]OffsetValue {
	m := map[TopicPartition]OffsetValue{}
	for p := 0; p < n; p++ {
		m[TopicPartition{"big", int32(p)}] = OffsetValue{Offset: int64(p), LeaderEpoch: -1}
	}
	return m
}

func bigTopics(n int) *fakeTopics {
	return &fakeTopics{ends: map[string][]int64{"t": {10, 20, 30}, "big": make([]int64, n)}}
}

// TestOffsetsSurviveReopenAndCompaction: committed offsets are replayed on open, deletions
// too, and a compaction (snapshot + drop of the older log) keeps the same state.
func TestOffsetsSurviveReopenAndCompaction(t *testing.T) {
	dir := t.TempDir()
	topics := bigTopics(500)
	open := func() *Coordinator {
		c, err := Open(Config{Dir: dir, Topics: topics, InitialRebalanceDelay: -1})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := open()
	for round := 0; round < 25; round++ {
		offs := offsets(500)
		for tp, v := range offs {
			v.Offset += int64(round)
			v.Metadata = fmt.Sprint(round)
			offs[tp] = v
		}
		if _, err := c.Commit(ctx, CommitRequest{Group: "big-group", Generation: -1, Offsets: offs}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Commit(ctx, CommitRequest{Group: "doomed", Generation: -1, Offsets: offsets(3)}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteGroup(ctx, "doomed"); err != nil {
		t.Fatal(err)
	}
	want := c.FetchOffsets("big-group", nil)
	if len(want) != 500 || want[7].Offset != 7+24 || want[7].Metadata != "24" {
		t.Fatalf("before reopen: %d offsets, %+v", len(want), want[7])
	}
	c.Close()

	c = open()
	if got := c.FetchOffsets("big-group", nil); !reflect.DeepEqual(got, want) {
		t.Fatal("offsets differ after reopen")
	}
	if got := c.FetchOffsets("doomed", nil); len(got) != 0 {
		t.Fatalf("deleted group came back: %v", got)
	}
	// 12,506 records for 500 live offsets: Open compacted (snapshot, then drop what precedes).
	if start := c.offsets.log.StartOffset(); start != 12506 {
		c.Close()
		t.Fatalf("log start after compaction on open: %d, want 12506", start)
	}
	c.maintain(ctx) // nothing more to compact
	c.Close()

	c = open()
	defer c.Close()
	if got := c.FetchOffsets("big-group", nil); !reflect.DeepEqual(got, want) {
		t.Fatal("offsets differ after compaction and reopen")
	}
	if names := c.offsets.groupNames(); !reflect.DeepEqual(names, []string{"big-group"}) {
		t.Fatalf("groups after compaction: %v", names)
	}
}

// TestOffsetsExpire: offsets of an empty group expire after the retention; a group with
// members keeps its offsets however old they are.
func TestOffsetsExpire(t *testing.T) {
	clk := newClock()
	c := openTest(t, t.TempDir(), func(cfg *Config) {
		cfg.Now, cfg.OffsetsRetention, cfg.MaxSessionTimeout = clk.now, time.Hour, 48*time.Hour
	})
	tp := TopicPartition{"t", 0}
	if _, err := c.Commit(ctx, CommitRequest{Group: "simple", Generation: -1, Offsets: map[TopicPartition]OffsetValue{tp: {Offset: 5}}}); err != nil {
		t.Fatal(err)
	}
	a := mustJoin(t, c, joinReq("", "", 24*time.Hour, "range"))
	mustSync(t, c, a.MemberID, 1, nil)
	if _, err := c.Commit(ctx, CommitRequest{Group: "g", MemberID: a.MemberID, Generation: 1, Offsets: map[TopicPartition]OffsetValue{tp: {Offset: 7}}}); err != nil {
		t.Fatal(err)
	}
	clk.add(30 * time.Minute)
	c.maintain(ctx)
	if got := c.FetchOffsets("simple", []TopicPartition{tp}); got[0].Offset != 5 {
		t.Fatalf("expired early: %+v", got)
	}
	clk.add(31 * time.Minute)
	if err := c.Heartbeat(ctx, HeartbeatRequest{Group: "g", MemberID: a.MemberID, Generation: 1}); err != nil {
		t.Fatal(err)
	}
	c.maintain(ctx)
	if got := c.FetchOffsets("simple", []TopicPartition{tp}); got[0].Offset != -1 {
		t.Fatalf("not expired: %+v", got)
	}
	if got := c.FetchOffsets("g", []TopicPartition{tp}); got[0].Offset != 7 {
		t.Fatalf("active group's offsets expired: %+v", got)
	}
	// Once the group is empty, the retention counts from then.
	if _, err := c.Leave(ctx, "g", []LeaveMember{{MemberID: a.MemberID}}); err != nil {
		t.Fatal(err)
	}
	clk.add(59 * time.Minute)
	c.maintain(ctx)
	if got := c.FetchOffsets("g", []TopicPartition{tp}); got[0].Offset != 7 {
		t.Fatalf("expired before the retention since empty: %+v", got)
	}
	clk.add(2 * time.Minute)
	c.maintain(ctx)
	if got := c.FetchOffsets("g", []TopicPartition{tp}); got[0].Offset != -1 {
		t.Fatalf("not expired after the retention since empty: %+v", got)
	}
	if l := c.List(ctx); len(l) != 0 {
		t.Fatalf("groups left after expiry: %+v", l)
	}
}

// BenchmarkCommitParallel: durable OffsetCommits (one partition each) from many goroutines,
// sharing fsyncs (SyncAlways). Compare with BenchmarkLogAppendParallel, the bare log engine
// doing the same appends, in the same run.
func BenchmarkCommitParallel(b *testing.B) {
	c, err := Open(Config{Dir: b.TempDir(), Topics: bigTopics(64), InitialRebalanceDelay: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ReportAllocs()
	b.SetParallelism(16)
	var n atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := n.Add(1)
		g := fmt.Sprintf("group-%d", i)
		for pb.Next() {
			req := CommitRequest{Group: g, Generation: -1, Offsets: map[TopicPartition]OffsetValue{{"big", int32(i % 64)}: {Offset: i}}}
			if _, err := c.Commit(ctx, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkLogAppendParallel is the baseline: the same one-record batches appended to a bare
// internal/log.Log with AppendNoWait + WaitDurable.
func BenchmarkLogAppendParallel(b *testing.B) {
	l, err := log.Open(b.TempDir(), log.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.ReportAllocs()
	b.SetParallelism(16)
	var n atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := n.Add(1)
		for pb.Next() {
			v := OffsetValue{Offset: i}
			batch := appendBatch(nil, []offsetRecord{{Group: fmt.Sprintf("group-%d", i), TopicPartition: TopicPartition{"big", int32(i % 64)}, Value: &v}}, 0)
			res, err := l.AppendNoWait(batch)
			if err == nil {
				err = l.WaitDurable(ctx, res.LastOffset)
			}
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// TestAcknowledgedCommitsSurviveCrash: whatever a crash keeps of unsynced bytes, every
// acknowledged commit is there after reopening, and the log replays cleanly.
func TestAcknowledgedCommitsSurviveCrash(t *testing.T) {
	for seed := 0; seed < 20; seed++ {
		fs := log.NewMemFS()
		cfg := Config{Dir: "/data/__consumer_offsets", FS: fs, Topics: bigTopics(8), InitialRebalanceDelay: -1}
		c, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		acked := map[TopicPartition]int64{}
		var wg sync.WaitGroup
		var mu sync.Mutex
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 25; i++ {
					tp := TopicPartition{"big", int32((w*25 + i) % 8)}
					mu.Lock()
					off := acked[tp] + 1 // offsets only grow per partition within this test
					acked[tp] = off
					if _, err := c.Commit(ctx, CommitRequest{Group: "g", Generation: -1, Offsets: map[TopicPartition]OffsetValue{tp: {Offset: off}}}); err != nil {
						t.Error(err)
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		n := seed
		crashed := fs.Crash(func(k int) int { n = (n*7 + 3) % (k + 1); return n })
		c.Close()
		cfg.FS = crashed
		c2, err := Open(cfg)
		if err != nil {
			t.Fatalf("seed %d: reopen after crash: %v", seed, err)
		}
		for _, f := range c2.FetchOffsets("g", nil) {
			if f.Offset != acked[f.TopicPartition] {
				t.Errorf("seed %d: %v at %d, acknowledged %d", seed, f.TopicPartition, f.Offset, acked[f.TopicPartition])
			}
		}
		if got := len(c2.FetchOffsets("g", nil)); got != len(acked) {
			t.Errorf("seed %d: %d partitions after crash, acknowledged %d", seed, got, len(acked))
		}
		c2.Close()
	}
}

// TestCommitFsyncFailure: a commit whose fsync fails is not acknowledged; the client gets a
// retriable COORDINATOR_NOT_AVAILABLE.
func TestCommitFsyncFailure(t *testing.T) {
	fs := log.NewMemFS()
	c, err := Open(Config{Dir: "/data/offsets", FS: fs, Topics: bigTopics(2), InitialRebalanceDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tp := TopicPartition{"big", 1}
	fs.FailNextSync(errors.New("injected EIO"))
	per, err := c.Commit(ctx, CommitRequest{Group: "g", Generation: -1, Offsets: map[TopicPartition]OffsetValue{tp: {Offset: 9}}})
	if err != nil || !errors.Is(per[tp], ErrCoordinatorNotAvailable) {
		t.Fatalf("commit with a failing fsync: %v %v", per, err)
	}
}
