package stream

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/yardmq/yard/internal/datadir"
	rb "github.com/yardmq/yard/internal/recordbatch"
)

// keyedTxn is a batch of producer pid (epoch 0) starting at sequence seq, one record per key
// (value "v"), transactional or not.
func keyedTxn(pid int64, seq int32, txn bool, keys ...string) []byte {
	h := rb.NewHeader(int32(len(keys)), 1000)
	h.ProducerID, h.ProducerEpoch, h.BaseSequence = pid, 0, seq
	if pid < 0 {
		h.ProducerEpoch, h.BaseSequence = -1, -1
	}
	if txn {
		h.Attributes |= rb.AttrTransactional
	}
	b := rb.AppendHeader(nil, &h)
	for i, k := range keys {
		r := rb.Record{OffsetDelta: int32(i), Key: []byte(k), Value: []byte("v")}
		b = r.AppendTo(b)
	}
	return rb.Finish(b, 0)
}

// copyDir copies a data directory as a crash would leave it (every file durable: SyncAlways).
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestCleanerRemovesMarkersKeepsTxnState: on a compacted topic with delete.retention.ms=0 the
// cleaner removes the markers whose transactions left nothing in the log, and keeps those
// whose batches stay (each producer's last, empty if aborted). Afterwards, and after a
// restart from the producer snapshot, from the log alone, or from a snapshot older than the
// marker removal (a crash), the last stable offset is the high watermark, read_committed
// reads find no aborted record, and each producer's sequence continues where it was.
func TestCleanerRemovesMarkersKeepsTxnState(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	m := openManager(t, dir)
	tp, err := m.CreateTopic("c", 1, map[string]string{"cleanup.policy": "compact", "segment.bytes": "300",
		"delete.retention.ms": "0", "min.cleanable.dirty.ratio": "0.01"}, false)
	if err != nil {
		t.Fatal(err)
	}
	p := tp.Partition(0)
	ctx := t.Context()
	app := func(b []byte) int64 {
		t.Helper()
		r, err := p.Append(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.WaitDurable(ctx, r.LastOffset); err != nil {
			t.Fatal(err)
		}
		return r.BaseOffset
	}
	mark := func(pid int64, commit bool) int64 {
		t.Helper()
		if err := p.WriteMarker(ctx, pid, 0, 0, commit); err != nil {
			t.Fatal(err)
		}
		return p.log.EndOffset() - 1
	}
	app(keyedTxn(1, 0, true, "x")) // committed, superseded below
	m1 := mark(1, true)            // goes
	app(keyedTxn(1, 1, true, "y")) // producer 1's last batch
	m2 := mark(1, true)            // stays
	app(keyedTxn(2, 0, true, "x")) // aborted
	m3 := mark(2, false)           // goes
	app(keyedTxn(2, 1, true, "z")) // producer 2's last batch, aborted: stays empty
	m4 := mark(2, false)           // stays
	app(keyedTxn(3, 0, true, "q")) // committed, superseded; its marker after the snapshot
	m.writeSnapshots()
	m5 := mark(3, true)             // stays: past the snapshot on disk
	app(keyedTxn(3, 1, false, "r")) // producer 3's last batch
	for i := range 30 {
		app(keyedTxn(-1, 0, false, "x", "q", fmt.Sprint("k", i%3)))
		if i%10 == 9 {
			m.cleanPartition(ctx, p, nil)
		}
	}
	crashed := copyDir(t, dir) // the snapshot on disk ends before m5
	markers := func(p *Partition) map[int64]bool {
		out := map[int64]bool{}
		for off := p.log.StartOffset(); off < p.log.HighWatermark(); {
			rr, err := p.log.Read(off, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := rr.AppendTo(nil)
			rr.Release()
			for len(b) > 0 {
				_, rest, h, err := rb.Split(b)
				if err != nil {
					t.Fatal(err)
				}
				if h.Control() {
					out[h.BaseOffset] = true
				}
				if h.ProducerID == 2 && h.RecordCount > 0 && !h.Control() {
					t.Fatalf("an aborted batch kept records: %+v", h)
				}
				off, b = h.LastOffset()+1, rest
			}
		}
		return out
	}
	got := markers(p)
	if got[m1] || got[m3] || !got[m2] || !got[m4] || !got[m5] {
		t.Fatalf("markers after cleaning: %v; want %d and %d gone, %d, %d and %d kept", got, m1, m3, m2, m4, m5)
	}
	check := func(p *Partition, how string) {
		t.Helper()
		if lso, hw := p.LastStableOffset(), p.log.HighWatermark(); lso != hw {
			t.Fatalf("%s: last stable offset %d, high watermark %d (%s)", how, lso, hw, txnState(p))
		}
		rr, _, aborted, err := p.ReadCommitted(0, 1<<20)
		if err != nil || rr == nil {
			t.Fatalf("%s: read_committed: %v", how, err)
		}
		rr.Release()
		for _, a := range aborted {
			if a.ProducerID != 2 {
				t.Fatalf("%s: aborted transactions %v", how, aborted)
			}
		}
		// Sequences continue: producer 1 at 2, producer 3 at 2; a gap is refused.
		if _, err := p.Append(keyedTxn(1, 5, false, "s")); !errors.Is(err, ErrOutOfOrderSequence) {
			t.Fatalf("%s: producer 1 skipped sequences: %v", how, err)
		}
		app := func(b []byte) {
			if _, err := p.Append(b); err != nil {
				t.Fatalf("%s: %v", how, err)
			}
		}
		app(keyedTxn(1, 2, false, "s"))
		app(keyedTxn(3, 2, false, "s"))
	}
	check(p, "after cleaning")
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"snapshot", "no snapshot", "crash"} {
		d := copyDir(t, dir)
		if mode == "no snapshot" {
			os.Remove(filepath.Join(datadir.New(d).ProducerSnapshots(), "c-0.json"))
		}
		if mode == "crash" {
			d = crashed
		}
		m := openManager(t, d)
		tp, _ := m.Topic("c")
		p := tp.Partition(0)
		if mode == "crash" {
			check(p, mode)
		} else {
			// After Close both producers already moved on to sequence 3.
			if lso, hw := p.LastStableOffset(), p.log.HighWatermark(); lso != hw {
				t.Fatalf("%s: last stable offset %d, high watermark %d (%s)", mode, lso, hw, txnState(p))
			}
			if _, err := p.Append(keyedTxn(1, 3, false, "s")); err != nil {
				t.Fatalf("%s: producer 1's sequence lost: %v", mode, err)
			}
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRebuildEpochFromEmptiedMarker: a marker the cleaner emptied (kept as its producer's
// last entry) still gives the producer its epoch when the state is rebuilt from the log, so
// the fenced epoch stays fenced.
func TestRebuildEpochFromEmptiedMarker(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	m := openManager(t, dir)
	tp, err := m.CreateTopic("e", 1, map[string]string{"cleanup.policy": "compact"}, false)
	if err != nil {
		t.Fatal(err)
	}
	p := tp.Partition(0)
	h := rb.NewHeader(0, 1000)
	h.Attributes = rb.AttrTransactional | rb.AttrControl
	h.ProducerID, h.ProducerEpoch, h.LastOffsetDelta = 4, 3, 0
	if _, err := p.log.Append(rb.Finish(rb.AppendHeader(nil, &h), 0)); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(datadir.New(dir).ProducerSnapshots(), "e-0.json"))
	m = openManager(t, dir)
	defer m.Close()
	tp, _ = m.Topic("e")
	p = tp.Partition(0)
	if _, err := p.Append(keyedTxn(4, 0, false, "k")); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("epoch 0 after an emptied marker of epoch 3: %v", err)
	}
}
