package txn

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/yardmq/yard/internal/log"
)

type marker struct {
	tp     TopicPartition
	pid    int64
	epoch  int16
	commit bool
}

// fakePartitions records markers; fail makes WriteMarker fail.
type fakePartitions struct {
	mu      sync.Mutex
	markers []marker
	fail    bool
}

func (f *fakePartitions) Exists(tp TopicPartition) bool { return tp.Topic != "missing" }

func (f *fakePartitions) WriteMarker(_ context.Context, tp TopicPartition, pid int64, epoch int16, _ int32, commit bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return errors.New("disk on fire")
	}
	f.markers = append(f.markers, marker{tp, pid, epoch, commit})
	return nil
}

type fakeOffsets struct {
	mu        sync.Mutex
	committed map[string]map[TopicPartition]Offset
}

func (f *fakeOffsets) CommitTxnOffsets(_ context.Context, g string, offs map[TopicPartition]Offset) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.committed == nil {
		f.committed = map[string]map[TopicPartition]Offset{}
	}
	f.committed[g] = offs
	return nil
}

func open(t *testing.T, dir string, parts *fakePartitions, offs *fakeOffsets, next *atomic.Int64) *Coordinator {
	t.Helper()
	c, err := Open(Config{
		Dir: dir, LogOptions: log.Options{SyncPolicy: log.SyncAlways},
		Partitions: parts, Offsets: offs,
		AllocateProducerID: func() (int64, error) { return next.Add(1), nil },
		AbortCheckInterval: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRecoveryCompletesPreparedTransaction: a transaction whose commit was recorded but whose
// markers could not be written before the coordinator went away is completed when the
// coordinator is opened again (markers written, offsets committed); an ongoing transaction
// continues; state, producer IDs and epochs survive.
func TestRecoveryCompletesPreparedTransaction(t *testing.T) {
	dir := t.TempDir()
	var next atomic.Int64
	parts, offs := &fakePartitions{}, &fakeOffsets{}
	c := open(t, dir, parts, offs, &next)
	pid, epoch, err := c.InitProducerID("a", 60000, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	tp := TopicPartition{"t", 0}
	if _, err := c.AddPartitions("a", pid, epoch, []TopicPartition{tp}, false); err != nil {
		t.Fatal(err)
	}
	if err := c.AddOffsets("a", pid, epoch, "g"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CommitOffsets("a", pid, epoch, "g", map[TopicPartition]Offset{{"in", 0}: {Offset: 42, LeaderEpoch: -1}}, false); err != nil {
		t.Fatal(err)
	}
	pidB, epochB, _ := c.InitProducerID("b", 60000, -1, -1)
	if _, err := c.AddPartitions("b", pidB, epochB, []TopicPartition{{"t", 1}}, false); err != nil {
		t.Fatal(err)
	}
	parts.fail = true
	if err := endV1(c, "a", pid, epoch, true); err != nil {
		t.Fatal(err) // the outcome is durable: the client is told it committed
	}
	if d, _ := c.Describe("a"); d.State != PrepareCommit {
		t.Fatalf("state %s, want PrepareCommit while markers fail", d.State)
	}
	// As after kill -9: the coordinator is gone without completing anything.
	c.cancel()
	<-c.done
	c.sl.close()

	parts.fail = false
	c = open(t, dir, parts, offs, &next)
	defer c.Close()
	if d, _ := c.Describe("a"); d.State != CompleteCommit || d.PID != pid || d.Epoch != epoch {
		t.Fatalf("after recovery: %+v", d)
	}
	if fmt.Sprint(parts.markers) != fmt.Sprint([]marker{{tp, pid, epoch, true}}) {
		t.Fatalf("markers %v", parts.markers)
	}
	if o := offs.committed["g"][TopicPartition{"in", 0}]; o.Offset != 42 {
		t.Fatalf("offsets committed %v", offs.committed)
	}
	if d, _ := c.Describe("b"); d.State != Ongoing || len(d.Partitions) != 1 {
		t.Fatalf("ongoing transaction after recovery: %+v", d)
	}
	// The ongoing one can still commit.
	if err := endV1(c, "b", pidB, epochB, true); err != nil {
		t.Fatal(err)
	}
}

// TestFencingAndRetries: a new instance fences the old (its open transaction aborted with a
// bumped epoch), KIP-360 re-initialisation keeps the producer ID, and EndTxn retries succeed.
func TestFencingAndRetries(t *testing.T) {
	var next atomic.Int64
	parts := &fakePartitions{}
	c := open(t, t.TempDir(), parts, &fakeOffsets{}, &next)
	defer c.Close()
	pid, e0, _ := c.InitProducerID("x", 60000, -1, -1)
	tp := TopicPartition{"t", 0}
	if _, err := c.AddPartitions("x", pid, e0, []TopicPartition{tp}, false); err != nil {
		t.Fatal(err)
	}
	if err := c.Produce(pid, e0, TopicPartition{"t", 9}, false, func() error { return nil }); !errors.Is(err, ErrInvalidTxnState) {
		t.Fatalf("produce to a partition not added: %v", err)
	}
	pid2, e1, err := c.InitProducerID("x", 60000, -1, -1)
	if err != nil || pid2 != pid || e1 != e0+2 {
		t.Fatalf("new instance: %d/%d %v", pid2, e1, err)
	}
	if fmt.Sprint(parts.markers) != fmt.Sprint([]marker{{tp, pid, e0 + 1, false}}) {
		t.Fatalf("fencing markers %v", parts.markers)
	}
	if err := c.Produce(pid, e0, tp, false, func() error { return nil }); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("zombie produce: %v", err)
	}
	if err := endV1(c, "x", pid, e0, true); !errors.Is(err, ErrProducerFenced) {
		t.Fatalf("zombie commit: %v", err)
	}
	if _, err := c.AddPartitions("x", pid, e0, []TopicPartition{tp}, false); !errors.Is(err, ErrProducerFenced) {
		t.Fatalf("zombie add: %v", err)
	}
	// KIP-360: the current producer re-initialises with its ID and epoch.
	_, e2, err := c.InitProducerID("x", 60000, pid, e1)
	if err != nil || e2 != e1+1 {
		t.Fatalf("KIP-360 bump: %d %v", e2, err)
	}
	if _, e, err := c.InitProducerID("x", 60000, pid, e1); err != nil || e != e2 {
		t.Fatalf("retried KIP-360 bump: %d %v", e, err)
	}
	if _, _, err := c.InitProducerID("x", 60000, pid, e0); !errors.Is(err, ErrProducerFenced) {
		t.Fatalf("stale KIP-360: %v", err)
	}
	if _, err := c.AddPartitions("x", pid, e2, []TopicPartition{tp}, false); err != nil {
		t.Fatal(err)
	}
	if err := endV1(c, "x", pid, e2, false); err != nil {
		t.Fatal(err)
	}
	if err := endV1(c, "x", pid, e2, false); err != nil {
		t.Fatalf("retried abort: %v", err)
	}
	if err := endV1(c, "x", pid, e2, true); !errors.Is(err, ErrInvalidTxnState) {
		t.Fatalf("commit after abort: %v", err)
	}
	if _, _, err := c.InitProducerID("x", int32((DefaultMaxTimeout + time.Second).Milliseconds()), -1, -1); !errors.Is(err, ErrInvalidTimeout) {
		t.Fatalf("timeout beyond the max: %v", err)
	}
}

// TestStateLogCompaction: the state log keeps the live states only once it has grown.
func TestStateLogCompaction(t *testing.T) {
	dir := t.TempDir()
	var next atomic.Int64
	parts := &fakePartitions{}
	c := open(t, dir, parts, &fakeOffsets{}, &next)
	pid, e, _ := c.InitProducerID("x", 60000, -1, -1)
	for i := 0; i < compactMinRecords/2; i++ {
		if _, err := c.AddPartitions("x", pid, e, []TopicPartition{{"t", int32(i % 3)}}, false); err != nil {
			t.Fatal(err)
		}
		if err := endV1(c, "x", pid, e, i%2 == 0); err != nil {
			t.Fatal(err)
		}
	}
	c.Maintain()
	if sl := c.sl.(*stateLog); sl.log.HighWatermark()-sl.log.StartOffset() != 1 {
		n := sl.log.HighWatermark() - sl.log.StartOffset()
		t.Fatalf("%d records after compaction, want 1", n)
	}
	c.Close()
	c = open(t, dir, parts, &fakeOffsets{}, &next)
	defer c.Close()
	if d, err := c.Describe("x"); err != nil || d.State != CompleteAbort || d.PID != pid {
		t.Fatalf("after compaction and reopen: %+v %v", d, err)
	}
}

func FuzzDecodeState(f *testing.F) {
	m := newMeta("x")
	m.pid, m.epoch, m.state = 3, 1, Ongoing
	m.partitions[TopicPartition{"t", 1}] = struct{}{}
	m.addOffset("g", TopicPartition{"t", 0}, Offset{Offset: 5, Metadata: "m"})
	good, _ := encodeState(m)
	f.Add(good)
	f.Add([]byte(`{"v":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeState("x", b)
		if err != nil {
			return
		}
		again, err := encodeState(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeState("x", again); err != nil {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// endV1 is End as EndTxn v0-4 calls it.
func endV1(c *Coordinator, id string, pid int64, epoch int16, commit bool) error {
	_, _, err := c.End(id, pid, epoch, commit, false)
	return err
}
