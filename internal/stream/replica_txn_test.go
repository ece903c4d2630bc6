package stream

import (
	"errors"
	"testing"

	rb "github.com/yardmq/yard/internal/recordbatch"
)

// TestReplicaTransactions: on a replicated partition transactional batches and markers are
// entries of the partition's group, so a member applying the same entries has the same last
// stable offset and aborted-transaction index as the leader (a follower that becomes leader
// serves read_committed alike), and a marker proposed on a follower is accepted (the
// coordinator need not lead the partition).
func TestReplicaTransactions(t *testing.T) {
	t.Parallel()
	m := openReplicaManager(t, t.TempDir())
	defer m.Close()
	tp, err := m.CreateTopic("r", 1, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	p := tp.Partition(0)
	r := &fakeReplica{p: p, leader: 1}
	p.SetReplica(r)
	ctx := t.Context()
	if _, err := p.Append(txnBatch(1, 0, 0, 2)); err != nil { // 0-1
		t.Fatal(err)
	}
	if _, err := p.Append(txnBatch(2, 0, 0, 1)); err != nil { // 2
		t.Fatal(err)
	}
	if got := p.LastStableOffset(); got != 0 {
		t.Fatalf("LSO with two open transactions: %d, want 0", got)
	}
	if err := p.WriteMarker(ctx, 1, 0, 7, true); err != nil { // 3
		t.Fatal(err)
	}
	r.leader = 2                                               // a follower proposes (the group forwards it to the leader)
	if err := p.WriteMarker(ctx, 2, 0, 7, false); err != nil { // 4
		t.Fatal(err)
	}
	r.leader = 1
	if _, err := p.Append(txnBatch(1, 0, 2, 1)); err != nil { // 5, open
		t.Fatal(err)
	}
	want := txnState(p)
	if want != "lso=5 ongoing=map[1:5] aborted=[{2 2 4}]" {
		t.Fatalf("leader: %s", want)
	}
	b, _, err := p.readBatchAt(3)
	if h, herr := rb.ParseHeader(b); err != nil || herr != nil || !h.Control() || h.LeaderEpoch != 3 {
		t.Fatalf("marker batch: %+v %v %v", h, err, herr)
	}

	// Another member applies the same entries.
	m2 := openReplicaManager(t, t.TempDir())
	defer m2.Close()
	tp2, err := m2.CreateTopic("r", 1, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	q := tp2.Partition(0)
	q.SetReplica(&fakeReplica{p: q, leader: 1})
	for i, e := range r.entries {
		if _, err := q.ApplyReplicated(uint64(i+2), 3, e); err != nil {
			t.Fatal(err)
		}
	}
	if got := txnState(q); got != want {
		t.Fatalf("follower: %s, leader: %s", got, want)
	}
	if err := p.WaitDurable(ctx, 5); err != nil {
		t.Fatal(err)
	}
	if err := q.WaitDurable(ctx, 5); err != nil {
		t.Fatal(err)
	}
	for off := int64(0); off < 6; off++ {
		a, _, _ := p.readBatchAt(off)
		c, _, _ := q.readBatchAt(off)
		if string(a) != string(c) {
			t.Fatalf("batch at %d differs between members:\n%x\n%x", off, a, c)
		}
	}
	_, lso, aborted, err := q.ReadCommitted(0, 1<<20)
	if err != nil || lso != 5 || len(aborted) != 1 || aborted[0] != (AbortedTxn{2, 2, 4}) {
		t.Fatalf("read_committed on the follower: lso %d aborted %v %v", lso, aborted, err)
	}

	// An internal write proposed in an earlier term than it commits in is refused.
	r.term = 4
	if _, err := p.AppendInternalInTerm(batch(-1, -1, -1, 1, 10), 3); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("append proposed in term 3, committed in 4: %v", err)
	}
	if _, err := p.AppendInternalInTerm(batch(-1, -1, -1, 1, 10), 4); err != nil {
		t.Fatal(err)
	}
}
