package stream

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
)

// TestReplicaInternalAppendAndBarrier: on a replicated partition the coordinator's batches
// (AppendInternal) go through the partition's group as internal commands and land stamped
// with its term; a barrier appends nothing; a follower, a transactional batch and a marker are
// refused.
func TestReplicaInternalAppendAndBarrier(t *testing.T) {
	t.Parallel()
	m := openReplicaManager(t, t.TempDir())
	defer m.Close()
	tp, err := m.EnsureInternalTopic("__consumer_offsets", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := tp.Partition(0)
	r := &fakeReplica{p: p, leader: 1}
	p.SetReplica(r)
	last, err := p.AppendInternal(batch(-1, -1, -1, 2, 10))
	if err != nil || last != 1 {
		t.Fatalf("append: last %d, %v; want 1", last, err)
	}
	if len(r.entries) != 1 || r.entries[0][0] != internalCmdVersion {
		t.Fatalf("proposed %d entries, want one internal command", len(r.entries))
	}
	if b, _, err := p.readBatchAt(0); err != nil || int32(binary.BigEndian.Uint32(b[12:])) != 3 {
		t.Fatalf("leader epoch of the batch: %v, want the term 3", err)
	}
	term, err := p.ReplicaBarrier(context.Background())
	if err != nil || term != 3 || len(r.entries) != 2 || p.EndOffset() != 2 {
		t.Fatalf("barrier: term %d, %v, %d entries, end %d; want term 3, 2 entries, end 2", term, err, len(r.entries), p.EndOffset())
	}
	// Replayed after a restart, the entries give the same log.
	if _, err := p.ApplyReplicated(9, 3, r.entries[1]); err != nil || p.EndOffset() != 2 {
		t.Fatalf("barrier applied again: %v, end %d", err, p.EndOffset())
	}
	if _, err := p.AppendInternal(batch(7, 0, 0, 1, 10)); err != nil {
		t.Fatal(err) // not transactional: an idempotent producer's batch is fine
	}
	var marked []int64
	p.SetMarkerObserver(func(pid int64, commit bool, offset int64) { marked = append(marked, pid, offset) })
	if _, err := p.AppendInternal(txnBatch(7, 0, 1, 1)); err != nil {
		t.Fatalf("transactional batch: %v", err)
	}
	if got := txnState(p); got != "lso=3 ongoing=map[7:3] aborted=[]" {
		t.Fatalf("after a transactional internal batch: %s", got)
	}
	if err := p.WriteMarker(context.Background(), 7, 0, 0, true); err != nil {
		t.Fatalf("marker: %v (markers are replicated: replica_txn_test.go)", err)
	}
	if len(marked) != 2 || marked[0] != 7 || marked[1] != 4 {
		t.Fatalf("marker observer told %v, want producer 7 at 4", marked)
	}
	p.SetReplica(&fakeReplica{p: p, leader: 2})
	if _, err := p.AppendInternal(batch(-1, -1, -1, 1, 10)); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("on a follower: %v, want ErrNotLeader", err)
	}
}
