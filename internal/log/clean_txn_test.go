package log

import (
	"fmt"
	"testing"

	"github.com/yardmq/yard/internal/recordbatch"
)

// txnBatch is keyedBatch with the transactional attribute.
func txnBatch(ts, pid int64, seq int32, recs ...kv) []byte {
	b := keyedBatch(ts, pid, seq, recs...)
	b[recordbatch.OffAttributes+1] |= recordbatch.AttrTransactional
	return recordbatch.Finish(b, 0)
}

// TestCleanRemovesAbortedRecords: an aborted transaction's record does not supersede the
// committed value of its key and is removed itself; nothing at or past the stable offset is
// cleaned.
func TestCleanRemovesAbortedRecords(t *testing.T) {
	fsys, clock := NewMemFS(), newFakeClock()
	l := mustOpen(t, "/d/log", compactOpts(fsys, clock))
	defer l.Close()
	ts := clock.Now().UnixMilli()
	mustAppend(t, l, keyedBatch(ts, -1, 0, rec("x", "committed")))                 // 0
	mustAppend(t, l, txnBatch(ts, 9, 0, rec("x", "aborted")))                      // 1
	ctl := keyedBatch(ts, 9, -1, kv{[]byte{0, 0, 0, 0}, []byte{0, 0, 0, 0, 0, 0}}) // 2: abort marker
	ctl[recordbatch.OffAttributes+1] |= recordbatch.AttrControl | recordbatch.AttrTransactional
	mustAppend(t, l, recordbatch.Finish(ctl, 0))
	appendUpdates(t, l, clock, 0, 12, 1) // k00 x12, 3..14
	aborted := func(pid, off int64) bool { return pid == 9 && off == 1 }
	// Bounded below offset 1 (a transaction open from 1): no segment is wholly stable.
	mustClean(t, l, CleanConfig{Force: true, StableOffset: 1, Aborted: aborted})
	if rs, _ := readRecords(t, l); len(rs) != 15 {
		t.Fatalf("cleaned beyond the stable offset: %d records left", len(rs))
	}
	mustClean(t, l, CleanConfig{Force: true, Aborted: aborted})
	rs, hs := readRecords(t, l)
	var xs []string
	for _, r := range rs {
		if r.key == "x" {
			xs = append(xs, r.value)
		}
	}
	if fmt.Sprint(xs) != "[committed]" {
		t.Fatalf("values of x after cleaning: %v, want [committed]", xs)
	}
	control := 0
	for _, h := range hs {
		if h.Control() {
			control++
		}
	}
	if control != 1 {
		t.Fatalf("%d markers after cleaning, want 1", control)
	}
}

// TestCleanAbortedLastBatchStaysEmpty: an aborted batch that is its producer's last data batch
// stays, as Kafka keeps it, for the producer's sequence, but empty: its records go like any
// aborted record. A marker after it does not count as the producer's last batch.
func TestCleanAbortedLastBatchStaysEmpty(t *testing.T) {
	fsys, clock := NewMemFS(), newFakeClock()
	l := mustOpen(t, "/d/log", compactOpts(fsys, clock))
	defer l.Close()
	ts := clock.Now().UnixMilli()
	mustAppend(t, l, keyedBatch(ts, -1, 0, rec("x", "committed")))                 // 0
	mustAppend(t, l, txnBatch(ts, 9, 4, rec("x", "aborted"), rec("y", "aborted"))) // 1-2
	ctl := keyedBatch(ts, 9, -1, kv{[]byte{0, 0, 0, 0}, []byte{0, 0, 0, 0, 0, 0}}) // 3: abort marker
	ctl[recordbatch.OffAttributes+1] |= recordbatch.AttrControl | recordbatch.AttrTransactional
	mustAppend(t, l, recordbatch.Finish(ctl, 0))
	appendUpdates(t, l, clock, 0, 12, 1)
	mustClean(t, l, CleanConfig{Force: true, Aborted: func(pid, off int64) bool { return pid == 9 && off == 1 }})
	rs, hs := readRecords(t, l)
	for _, r := range rs {
		if r.value == "aborted" {
			t.Fatalf("an aborted record survived: %+v", rs)
		}
	}
	var last *recordbatch.Header
	for i := range hs {
		if hs[i].ProducerID == 9 && !hs[i].Control() {
			last = &hs[i]
		}
	}
	if last == nil || last.RecordCount != 0 || last.BaseSequence != 4 || last.BaseOffset != 1 || last.LastOffset() != 2 {
		t.Fatalf("producer 9's last batch should stay empty with its offsets and sequence: %+v", hs)
	}
}
