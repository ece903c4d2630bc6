package stream

import "testing"

// TestEndOffsetForEpoch: batches of epochs 2, 2, 5, 5, 5, 7 (2 records each) in a log whose
// leader is in epoch 9; each answer is Kafka's leader's for the same epoch history.
func TestEndOffsetForEpoch(t *testing.T) {
	t.Parallel()
	m := openReplicaManager(t, t.TempDir())
	defer m.Close()
	tp, err := m.CreateTopic("e", 1, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	p := tp.Partition(0)
	r := &fakeReplica{p: p, leader: 1}
	p.SetReplica(r)
	for _, term := range []uint64{2, 2, 5, 5, 5, 7} {
		r.term = term
		if _, err := p.Append(batch(-1, -1, -1, 2, 10)); err != nil {
			t.Fatal(err)
		}
	}
	r.term = 9
	if err := p.Sync(); err != nil { // readers see durable batches only
		t.Fatal(err)
	}
	for _, c := range []struct {
		epoch, wantEpoch int32
		wantEnd          int64
	}{
		{-1, -1, -1}, // UNDEFINED_EPOCH
		{10, -1, -1}, // newer than the leader's
		{9, 9, 12},   // the current epoch: the log's end
		{8, 7, 12},   // no data in 8: its end is where 9 starts, the end
		{7, 7, 12},
		{6, 5, 10}, // 6 has no data: the floor is 5, and 7 starts at 10
		{5, 5, 10},
		{4, 2, 4},
		{2, 2, 4},
		{1, 1, 0}, // older than the log: the log's first epoch starts at 0
		{0, 0, 0},
	} {
		e, end, err := p.EndOffsetForEpoch(c.epoch)
		if err != nil || e != c.wantEpoch || end != c.wantEnd {
			t.Errorf("epoch %d: (%d, %d, %v), want (%d, %d)", c.epoch, e, end, err, c.wantEpoch, c.wantEnd)
		}
	}
	// Retention moved the log start into epoch 5: epoch 2 ends where 5 starts, now the start.
	if _, err := p.DeleteRecords(6); err != nil {
		t.Fatal(err)
	}
	if e, end, err := p.EndOffsetForEpoch(2); err != nil || e != 2 || end != 6 {
		t.Errorf("epoch 2 after DeleteRecords(6): (%d, %d, %v), want (2, 6)", e, end, err)
	}
	if e, end, err := p.EndOffsetForEpoch(5); err != nil || e != 5 || end != 10 {
		t.Errorf("epoch 5 after DeleteRecords(6): (%d, %d, %v), want (5, 10)", e, end, err)
	}
}
