package txn

import (
	"errors"
	"math"
	"sync/atomic"
	"testing"

	"github.com/yardmq/yard/internal/log"
)

func openVersion(t *testing.T, dir string, parts *fakePartitions, offs *fakeOffsets, next *atomic.Int64, version int16) *Coordinator {
	t.Helper()
	c, err := Open(Config{
		Dir: dir, LogOptions: log.Options{SyncPolicy: log.SyncAlways},
		Partitions: parts, Offsets: offs,
		AllocateProducerID: func() (int64, error) { return next.Add(1), nil },
		TransactionVersion: version,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func noAppend() error { return nil }

// TestTransactionVersion2: under KIP-890 part 2 a produce adds its partition and an offset
// commit its group without AddPartitionsToTxn/AddOffsetsToTxn, beginning the transaction;
// every EndTxn bumps the epoch, its markers carry the new epoch, and the old epoch is fenced;
// a retried EndTxn gets the same answer; an abort with nothing open bumps too.
func TestTransactionVersion2(t *testing.T) {
	var next atomic.Int64
	parts, offs := &fakePartitions{}, &fakeOffsets{}
	c := openVersion(t, t.TempDir(), parts, offs, &next, 2)
	pid, e0, err := c.InitProducerID("x", 60000, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	tp := TopicPartition{"t", 0}
	appended := 0
	if err := c.Produce(pid, e0, tp, true, func() error { appended++; return nil }); err != nil || appended != 1 {
		t.Fatalf("implicit add: %v (appended %d)", err, appended)
	}
	if d, _ := c.Describe("x"); d.State != Ongoing || len(d.Partitions) != 1 {
		t.Fatalf("after the first produce: %+v", d)
	}
	if _, err := c.CommitOffsets("x", pid, e0, "g", map[TopicPartition]Offset{{"in", 0}: {Offset: 5, LeaderEpoch: -1}}, true); err != nil {
		t.Fatalf("implicit group: %v", err)
	}
	pid1, e1, err := c.End("x", pid, e0, true, true)
	if err != nil || pid1 != pid || e1 != e0+1 {
		t.Fatalf("End v2: %d/%d %v, want %d/%d", pid1, e1, err, pid, e0+1)
	}
	if len(parts.markers) != 1 || parts.markers[0] != (marker{tp, pid, e1, true}) {
		t.Fatalf("markers %+v, want a commit at the bumped epoch %d", parts.markers, e1)
	}
	if offs.committed["g"][TopicPartition{"in", 0}].Offset != 5 {
		t.Fatalf("offsets not committed: %+v", offs.committed)
	}
	// A retry of that EndTxn (the old epoch): the same answer; the other outcome is refused.
	if p, e, err := c.End("x", pid, e0, true, true); err != nil || p != pid || e != e1 {
		t.Fatalf("retried End: %d/%d %v", p, e, err)
	}
	if _, _, err := c.End("x", pid, e0, false, true); !errors.Is(err, ErrInvalidTxnState) {
		t.Fatalf("abort after commit at the old epoch: %v", err)
	}
	// The old epoch cannot produce any more.
	if err := c.Produce(pid, e0, tp, true, noAppend); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("produce at the old epoch: %v", err)
	}
	// The next transaction, at the new epoch, aborted.
	if err := c.Produce(pid, e1, TopicPartition{"t", 1}, true, noAppend); err != nil {
		t.Fatal(err)
	}
	_, e2, err := c.End("x", pid, e1, false, true)
	if err != nil || e2 != e1+1 {
		t.Fatalf("abort: %d %v", e2, err)
	}
	if m := parts.markers[len(parts.markers)-1]; m != (marker{TopicPartition{"t", 1}, pid, e2, false}) {
		t.Fatalf("abort marker %+v", m)
	}
	// An abort with nothing open bumps the epoch and writes nothing; a commit is refused.
	n := len(parts.markers)
	_, e3, err := c.End("x", pid, e2, false, true)
	if err != nil || e3 != e2+1 || len(parts.markers) != n {
		t.Fatalf("empty abort: %d %v (%d markers)", e3, err, len(parts.markers)-n)
	}
	if _, _, err := c.End("x", pid, e3, true, true); !errors.Is(err, ErrInvalidTxnState) {
		t.Fatalf("commit with nothing open after an abort: %v", err)
	}
	// A zombie at an epoch two behind is fenced.
	if _, _, err := c.End("x", pid, e1, true, true); !errors.Is(err, ErrProducerFenced) {
		t.Fatalf("End at an old epoch: %v", err)
	}
	// Requests of version 1 beside it keep version 1's rules: no implicit add, no bump.
	if err := c.Produce(pid, e3, TopicPartition{"t", 2}, false, noAppend); !errors.Is(err, ErrInvalidTxnState) {
		t.Fatalf("v1 produce without AddPartitions: %v", err)
	}
}

// TestTransactionVersion1Finalized: with the feature at level 1 the version-2 request
// versions get version 1's rules (a client that asked for them anyway is refused as before).
func TestTransactionVersion1Finalized(t *testing.T) {
	var next atomic.Int64
	parts := &fakePartitions{}
	c := openVersion(t, t.TempDir(), parts, &fakeOffsets{}, &next, 1)
	pid, e0, err := c.InitProducerID("x", 60000, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Produce(pid, e0, TopicPartition{"t", 0}, true, noAppend); !errors.Is(err, ErrInvalidTxnState) {
		t.Fatalf("produce without AddPartitions at level 1: %v", err)
	}
	if _, err := c.AddPartitions("x", pid, e0, []TopicPartition{{"t", 0}}, false); err != nil {
		t.Fatal(err)
	}
	if p, e, err := c.End("x", pid, e0, true, true); err != nil || p != -1 || e != -1 {
		t.Fatalf("End at level 1: %d/%d %v, want -1/-1", p, e, err)
	}
	if parts.markers[0].epoch != e0 {
		t.Fatalf("marker epoch %d, want the producer's %d", parts.markers[0].epoch, e0)
	}
	if _, err := Open(Config{Dir: t.TempDir(), Partitions: parts, AllocateProducerID: func() (int64, error) { return next.Add(1), nil }, TransactionVersion: 3}); err == nil {
		t.Fatal("transaction.version 3 accepted")
	}
}

// TestEpochExhaustionMarkers: when the bump at the end of a transaction has to allocate a new
// producer ID (the epoch is one short of the maximum), the markers still name the producer ID
// that wrote the records, at the epoch past its last, also when they are written only after a
// restart; the producer continues with the new ID.
func TestEpochExhaustionMarkers(t *testing.T) {
	for _, v2 := range []bool{true, false} {
		name := "end-v2"
		if !v2 {
			name = "timeout-v1"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			var next atomic.Int64
			parts := &fakePartitions{}
			c := openVersion(t, dir, parts, &fakeOffsets{}, &next, 2)
			pid, _, err := c.InitProducerID("x", 60000, -1, -1)
			if err != nil {
				t.Fatal(err)
			}
			m := c.lockMeta("x", false)
			m.epoch = math.MaxInt16 - 1
			m.mu.Unlock()
			tp := TopicPartition{"t", 0}
			if err := c.Produce(pid, math.MaxInt16-1, tp, true, noAppend); err != nil {
				t.Fatal(err)
			}
			parts.fail = true // the markers wait for the restart
			if v2 {
				p, e, err := c.End("x", pid, math.MaxInt16-1, true, true)
				if err != nil || p == pid || e != 0 {
					t.Fatalf("End: %d/%d %v, want a new producer ID at epoch 0", p, e, err)
				}
			} else {
				m := c.lockMeta("x", false)
				if err := c.abort(m, true); err == nil {
					t.Fatal("abort wrote markers that fail")
				}
				m.mu.Unlock()
			}
			c.Close()
			parts.fail = false
			c = openVersion(t, dir, parts, &fakeOffsets{}, &next, 2)
			want := marker{tp, pid, math.MaxInt16, v2}
			if len(parts.markers) != 1 || parts.markers[0] != want {
				t.Fatalf("markers %+v, want %+v", parts.markers, want)
			}
			d, err := c.Describe("x")
			if err != nil || d.PID == pid || d.Epoch != 0 {
				t.Fatalf("after restart: %+v %v", d, err)
			}
		})
	}
}
