package group

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/yardmq/yard/internal/log"
	"github.com/yardmq/yard/internal/stream"
)

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

// TestOffsetsSurviveReopen: committed offsets are replayed on open, deletions too; each
// group's records are in its own partition of __consumer_offsets.
func TestOffsetsSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	topics := bigTopics(500)
	open := func() (*Coordinator, *stream.Manager, func()) {
		m, closeM := openTopicManager(t, dir, nil)
		parts, err := StreamOffsetsPartitions(m, 50)
		if err != nil {
			t.Fatal(err)
		}
		c, err := Open(Config{OffsetsPartitions: parts, Topics: topics, InitialRebalanceDelay: -1})
		if err != nil {
			t.Fatal(err)
		}
		return c, m, closeM
	}
	c, m, closeM := open()
	for round := 0; round < 5; round++ {
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
	if len(want) != 500 || want[7].Offset != 7+4 || want[7].Metadata != "4" {
		t.Fatalf("before reopen: %d offsets, %+v", len(want), want[7])
	}
	ot, _ := m.Topic(OffsetsTopic)
	for i, p := range ot.Partitions() {
		wantRecords := int64(0)
		switch int32(i) {
		case PartitionFor("big-group", 50):
			wantRecords = 5 * 500
		case PartitionFor("doomed", 50):
			wantRecords = 3 + 3
		}
		if p.EndOffset() != wantRecords {
			t.Errorf("partition %d holds %d records, want %d", i, p.EndOffset(), wantRecords)
		}
	}
	c.Close()
	closeM()

	c, _, _ = open()
	defer c.Close()
	if got := c.FetchOffsets("big-group", nil); !reflect.DeepEqual(got, want) {
		t.Fatal("offsets differ after reopen")
	}
	if got := c.FetchOffsets("doomed", nil); len(got) != 0 {
		t.Fatalf("deleted group came back: %v", got)
	}
	if names := c.offsets.groupNames(); !reflect.DeepEqual(names, []string{"big-group"}) {
		t.Fatalf("groups after reopen: %v", names)
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
	dir := b.TempDir()
	c, err := Open(Config{OffsetsPartitions: openOffsetsTopic(b, dir, nil, 50), JournalDir: filepath.Join(dir, "offsets-journal"),
		Topics: bigTopics(64), InitialRebalanceDelay: -1})
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
			batch := appendBatch(nil, []coordRecord{{Kind: kindOffset, Group: fmt.Sprintf("group-%d", i), TopicPartition: TopicPartition{"big", int32(i % 64)}, Offset: &v}}, 0, noProducer)
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
		root := t.TempDir()
		cfg := Config{OffsetsPartitions: openOffsetsTopic(t, root, fs, 3), JournalDir: filepath.Join(root, "offsets-journal"), FS: fs,
			Topics: bigTopics(8), InitialRebalanceDelay: -1}
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
		cfg.OffsetsPartitions, cfg.FS = openOffsetsTopic(t, root, crashed, 3), crashed
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
	c, err := Open(Config{OffsetsPartitions: openOffsetsTopic(t, t.TempDir(), fs, 1), Topics: bigTopics(2), InitialRebalanceDelay: -1})
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
