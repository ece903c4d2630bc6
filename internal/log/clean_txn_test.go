package log

import (
	"fmt"
	"testing"
	"time"

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

// marker is a commit (or abort) marker batch of producer pid, epoch 0.
func marker(ts, pid int64, commit bool) []byte {
	typ := byte(0)
	if commit {
		typ = 1
	}
	b := keyedBatch(ts, pid, -1, kv{[]byte{0, 0, 0, typ}, []byte{0, 0, 0, 0, 0, 0}})
	b[recordbatch.OffAttributes+1] |= recordbatch.AttrControl | recordbatch.AttrTransactional
	return recordbatch.Finish(b, 0)
}

// cleanAgain appends a few updates (a cleaning needs dirty segments) and cleans.
func cleanAgain(t *testing.T, l *Log, clock *fakeClock, cc CleanConfig) {
	t.Helper()
	appendUpdates(t, l, clock, 100, 8, 1)
	mustClean(t, l, cc)
}

// markersOf returns the headers of the log's control batches with records, by base offset.
func markersOf(t *testing.T, l *Log) map[int64]recordbatch.Header {
	t.Helper()
	_, hs := readRecords(t, l)
	out := map[int64]recordbatch.Header{}
	for _, h := range hs {
		if h.Control() {
			out[h.BaseOffset] = h
		}
	}
	return out
}

// TestCleanRemovesMarkersAfterHorizon follows Kafka's marker life: a commit marker stays
// while a batch of its transaction is in the log (even one the same cleaning removes); the
// first cleaning that finds none left writes the delete horizon (now + delete.retention.ms)
// into the marker; cleanings before the horizon keep it; the first one after removes it.
// The same holds for an abort marker. Markers whose transaction's batch remains (the
// producer's last) stay.
func TestCleanRemovesMarkersAfterHorizon(t *testing.T) {
	fsys, clock := NewMemFS(), newFakeClock()
	o := compactOpts(fsys, clock)
	o.DeleteRetentionMs = time.Hour.Milliseconds()
	l := mustOpen(t, "/d/log", o)
	defer l.Close()
	ts := clock.Now().UnixMilli()
	mustAppend(t, l, txnBatch(ts, 7, 0, rec("x", "committed"))) // 0: committed, superseded
	mustAppend(t, l, marker(ts, 7, true))                       // 1
	mustAppend(t, l, txnBatch(ts, 8, 0, rec("y", "aborted")))   // 2: aborted
	mustAppend(t, l, marker(ts, 8, false))                      // 3
	mustAppend(t, l, txnBatch(ts, 7, 1, rec("z", "last")))      // 4: producer 7's last batch
	mustAppend(t, l, marker(ts, 7, true))                       // 5
	mustAppend(t, l, txnBatch(ts, 8, 1, rec("w", "last")))      // 6: producer 8's last batch
	mustAppend(t, l, marker(ts, 8, true))                       // 7
	appendUpdates(t, l, clock, 0, 12, 1)                        // k00 ...
	mustAppend(t, l, keyedBatch(ts, -1, 0, rec("x", "new")))
	appendUpdates(t, l, clock, 12, 12, 1)
	aborted := func(pid, off int64) bool { return pid == 8 && off == 2 }
	cc := CleanConfig{Force: true, Aborted: aborted}

	mustClean(t, l, cc)
	ms := markersOf(t, l)
	for _, off := range []int64{1, 3, 5, 7} {
		h, ok := ms[off]
		if !ok {
			t.Fatalf("first cleaning: marker at %d removed while its transaction's batch was in the log: %v", off, ms)
		}
		if _, set := h.DeleteHorizon(); set {
			t.Fatalf("first cleaning: marker at %d got a delete horizon while its batch was in the log", off)
		}
	}
	clock.Advance(time.Minute)
	now := clock.Now().UnixMilli()
	cleanAgain(t, l, clock, cc)
	ms = markersOf(t, l)
	for _, off := range []int64{1, 3} {
		h, ok := ms[off]
		if !ok {
			t.Fatalf("second cleaning: marker at %d removed before its delete horizon", off)
		}
		if hz, set := h.DeleteHorizon(); !set || hz != now+time.Hour.Milliseconds() {
			t.Fatalf("second cleaning: marker at %d: horizon %d %v, want %d", off, hz, set, now+time.Hour.Milliseconds())
		}
		if h.MaxTimestamp != ts {
			t.Fatalf("marker at %d: max timestamp %d, want %d", off, h.MaxTimestamp, ts)
		}
	}
	for _, off := range []int64{5, 7} {
		if h, ok := ms[off]; !ok {
			t.Fatalf("marker at %d removed while its producer's last batch stays", off)
		} else if _, set := h.DeleteHorizon(); set {
			t.Fatalf("marker at %d got a delete horizon while its batch stays", off)
		}
	}
	clock.Advance(time.Hour - time.Millisecond)
	mustClean(t, l, cc)
	if ms = markersOf(t, l); len(ms) != 4 {
		t.Fatalf("a marker went before its horizon: %v", ms)
	}
	clock.Advance(time.Millisecond)
	cleanAgain(t, l, clock, cc)
	ms = markersOf(t, l)
	if _, ok := ms[1]; ok {
		t.Fatalf("commit marker kept after its horizon: %v", ms)
	}
	if _, ok := ms[3]; ok {
		t.Fatalf("abort marker kept after its horizon: %v", ms)
	}
	if len(ms) != 2 {
		t.Fatalf("markers left: %v, want those at 5 and 7", ms)
	}
	rs, _ := readRecords(t, l)
	got := latestPerKey(rs)
	if got["z"].value != "last" || got["w"].value != "last" || got["x"].value != "new" || got["y"].key != "" {
		t.Fatalf("records after cleaning: %+v", rs)
	}
}

// TestCleanMarkersOfLastBatchStay: a marker stays past its horizon while its transaction's
// batch stays as its producer's last (empty for an aborted one); a producer that is no longer
// active (CleanConfig.Producers) keeps nothing, and then its markers go; a producer whose
// only entries are markers keeps the one of its current epoch, emptied, for its epoch.
func TestCleanMarkersOfLastBatchStay(t *testing.T) {
	fsys, clock := NewMemFS(), newFakeClock()
	o := compactOpts(fsys, clock)
	o.DeleteRetentionMs = 1
	l := mustOpen(t, "/d/log", o)
	defer l.Close()
	ts := clock.Now().UnixMilli()
	mustAppend(t, l, txnBatch(ts, 9, 0, rec("x", "aborted"))) // 0
	mustAppend(t, l, marker(ts, 9, false))                    // 1
	mustAppend(t, l, marker(ts, 5, true))                     // 2: producer 5, markers only
	appendUpdates(t, l, clock, 0, 12, 1)
	aborted := func(pid, off int64) bool { return pid == 9 && off == 0 }
	producers := map[int64]ProducerLast{9: {LastDataOffset: 0}, 5: {LastDataOffset: -1}}
	cc := CleanConfig{Force: true, Aborted: aborted, Producers: func() map[int64]ProducerLast { return producers }}
	for range 3 {
		cleanAgain(t, l, clock, cc)
		clock.Advance(time.Second)
	}
	ms := markersOf(t, l)
	if _, ok := ms[1]; !ok {
		t.Fatalf("abort marker removed while its producer's last batch (empty) stays: %v", ms)
	}
	_, hs := readRecords(t, l)
	var b0, b2 *recordbatch.Header
	for i := range hs {
		switch hs[i].BaseOffset {
		case 0:
			b0 = &hs[i]
		case 2:
			b2 = &hs[i]
		}
	}
	if b0 == nil || b0.RecordCount != 0 || b0.ProducerID != 9 {
		t.Fatalf("producer 9's last batch: %+v", b0)
	}
	if b2 == nil || b2.RecordCount != 0 || !b2.Control() || b2.ProducerID != 5 {
		t.Fatalf("producer 5's marker should stay, empty, for its epoch: %+v", b2)
	}
	delete(producers, 9) // expired
	delete(producers, 5)
	for range 3 {
		cleanAgain(t, l, clock, cc)
		clock.Advance(time.Second)
	}
	_, hs = readRecords(t, l)
	for _, h := range hs {
		if h.ProducerID == 9 || h.ProducerID == 5 {
			t.Fatalf("a batch of an expired producer stays: %+v", hs)
		}
	}
}

// TestCleanMarkersBelowBound: with LimitMarkers, a removable marker at or past MarkersBelow
// stays whatever its horizon; below it, it goes.
func TestCleanMarkersBelowBound(t *testing.T) {
	fsys, clock := NewMemFS(), newFakeClock()
	o := compactOpts(fsys, clock)
	o.DeleteRetentionMs = 1
	l := mustOpen(t, "/d/log", o)
	defer l.Close()
	ts := clock.Now().UnixMilli()
	mustAppend(t, l, marker(ts, 7, true)) // 0
	mustAppend(t, l, marker(ts, 7, true)) // 1
	appendUpdates(t, l, clock, 0, 12, 1)
	cc := CleanConfig{Force: true, Producers: func() map[int64]ProducerLast { return nil }, LimitMarkers: true, MarkersBelow: 1}
	for range 3 {
		cleanAgain(t, l, clock, cc)
		clock.Advance(time.Second)
	}
	ms := markersOf(t, l)
	if _, ok := ms[0]; ok || len(ms) != 1 {
		t.Fatalf("markers left %v, want the one at 1 only", ms)
	}
	cc.MarkersBelow = 2
	cleanAgain(t, l, clock, cc)
	if ms := markersOf(t, l); len(ms) != 0 {
		t.Fatalf("markers left %v", ms)
	}
}

// TestCleanKeepsEmptyBatchAsIs: a batch an earlier cleaning emptied (its producer's last)
// is kept as it is, not rewritten: a cleaning that changes nothing else leaves its segment be.
func TestCleanKeepsEmptyBatchAsIs(t *testing.T) {
	h := recordbatch.NewHeader(0, 1000)
	h.LastOffsetDelta = 2
	h.ProducerID, h.ProducerEpoch, h.BaseSequence = 9, 0, 4
	empty := recordbatch.Finish(recordbatch.AppendHeader(nil, &h), 0)
	h, _ = recordbatch.ParseHeader(empty)
	cr := &cleanRound{cc: &CleanConfig{}, m: &offsetMap{keys: map[[16]byte]int64{}}, now: 5000,
		producers: map[int64]ProducerLast{9: {LastDataOffset: 2}}, committed: map[int64]bool{}, aborted: map[int64]bool{}}
	out, keep, rewritten, err := cr.filter(empty, &h)
	if err != nil || keep != 0 || rewritten || &out[0] != &empty[0] {
		t.Fatalf("empty last batch: keep %d, rewritten %v, err %v", keep, rewritten, err)
	}
	cr.producers = nil
	if out, _, _, _ := cr.filter(empty, &h); out != nil {
		t.Fatal("an empty batch of a producer no longer active stayed")
	}
}
