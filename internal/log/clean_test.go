package log

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/yardmq/yard/internal/recordbatch"
)

// kv is one record for keyedBatch; a nil value is a tombstone, a nil key no key.
type kv struct{ key, value []byte }

func rec(k, v string) kv { return kv{[]byte(k), []byte(v)} }
func tomb(k string) kv   { return kv{[]byte(k), nil} }

// keyedBatch builds an uncompressed batch of records stamped ts, of producer pid (-1 none).
func keyedBatch(ts, pid int64, seq int32, recs ...kv) []byte {
	h := recordbatch.NewHeader(int32(len(recs)), ts)
	if pid >= 0 {
		h.ProducerID, h.ProducerEpoch, h.BaseSequence = pid, 0, seq
	}
	b := recordbatch.AppendHeader(nil, &h)
	for i, r := range recs {
		rr := recordbatch.Record{OffsetDelta: int32(i), Key: r.key, Value: r.value}
		b = rr.AppendTo(b)
	}
	return recordbatch.Finish(b, 0)
}

// logRecord is a record read back with its offset.
type logRecord struct {
	offset     int64
	key, value string
	tombstone  bool
}

// readRecords reads every record of the log from its start, checking that offsets increase.
func readRecords(t testing.TB, l *Log) ([]logRecord, []recordbatch.Header) {
	t.Helper()
	var out []logRecord
	var hs []recordbatch.Header
	last := int64(-1)
	for _, b := range readAll(t, l) {
		h, err := recordbatch.ParseHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		if h.BaseOffset <= last {
			t.Fatalf("batch at %d after offset %d", h.BaseOffset, last)
		}
		last = h.LastOffset()
		hs = append(hs, h)
		if err := forEachRecord(b, &h, func(r *recordbatch.Record) {
			out = append(out, logRecord{h.BaseOffset + int64(r.OffsetDelta), string(r.Key), string(r.Value), r.Value == nil})
		}); err != nil {
			t.Fatal(err)
		}
	}
	return out, hs
}

// latestPerKey is what compaction must leave of the records (offsets included), tombstones
// included.
func latestPerKey(rs []logRecord) map[string]logRecord {
	m := map[string]logRecord{}
	for _, r := range rs {
		m[r.key] = r
	}
	return m
}

func compactOpts(fsys FS, clock *fakeClock) Options {
	one := int64(len(keyedBatch(0, -1, 0, rec("k00", "v0000"))))
	return Options{FS: fsys, Now: clock.Now, SegmentBytesMax: 4 * one, IndexIntervalBytes: 1,
		Compact: true, NoDelete: true, MinCleanableDirtyRatio: -1}
}

func mustClean(t testing.TB, l *Log, cc CleanConfig) CleanStats {
	t.Helper()
	st, err := l.Clean(context.Background(), cc)
	if err != nil {
		t.Fatalf("clean: %v", err)
	}
	return st
}

// appendUpdates appends n single-record batches cycling over keys keys and returns what was
// appended.
func appendUpdates(t testing.TB, l *Log, clock *fakeClock, from, n, keys int) []logRecord {
	var out []logRecord
	for i := from; i < from+n; i++ {
		k, v := fmt.Sprintf("k%02d", i%keys), fmt.Sprintf("v%04d", i)
		res := mustAppend(t, l, keyedBatch(clock.Now().UnixMilli(), -1, 0, rec(k, v)))
		out = append(out, logRecord{res.BaseOffset, k, v, false})
	}
	return out
}

func TestCleanKeepsLatestPerKeyWithOffsets(t *testing.T) {
	for _, fac := range fsFactories {
		t.Run(fac.name, func(t *testing.T) {
			fsys, dir := fac.make(t)
			clock := newFakeClock()
			l := mustOpen(t, dir, compactOpts(fsys, clock))
			defer l.Close()
			all := appendUpdates(t, l, clock, 0, 40, 5)
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			before := l.Size()
			st := mustClean(t, l, CleanConfig{})
			if !st.Cleaned || st.RecordsRemoved == 0 {
				t.Fatalf("nothing cleaned: %+v", st)
			}
			if l.Size() >= before {
				t.Fatalf("size %d after cleaning, %d before", l.Size(), before)
			}
			checkCompacted(t, l, all)
			// Appends go on at the right offsets; a second cleaning keeps the result.
			all = append(all, appendUpdates(t, l, clock, 40, 20, 5)...)
			mustClean(t, l, CleanConfig{Force: true})
			checkCompacted(t, l, all)
			// And a reopen (clean, then after a crash for the mem fs) reads the same.
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			o := compactOpts(fsys, clock)
			if c, ok := fsys.(cacheFS); ok {
				o.FS = c
			}
			l2 := mustOpen(t, dir, o)
			defer l2.Close()
			checkCompacted(t, l2, all)
			if m, ok := fsys.(*MemFS); ok {
				l3, err := Open(dir, Options{FS: m.Crash(keepNone), Compact: true})
				if err != nil {
					t.Fatal(err)
				}
				defer l3.Close()
				checkCompacted(t, l3, all)
			}
		})
	}
}

// checkCompacted checks that the log holds, for every key of all, the latest record at its
// offset, every record of the active segment, and nothing a later record of its key replaced
// in a cleaned segment.
func checkCompacted(t *testing.T, l *Log, all []logRecord) {
	t.Helper()
	got, _ := readRecords(t, l)
	byOffset := map[int64]logRecord{}
	for _, r := range got {
		byOffset[r.offset] = r
	}
	for k, want := range latestPerKey(all) {
		if g, ok := byOffset[want.offset]; !ok || g != want {
			t.Fatalf("latest of key %s (%+v) missing: got %+v", k, want, g)
		}
	}
	cleanedTo := l.cleanedToForTest()
	cleanedRange := slices.DeleteFunc(slices.Clone(all), func(a logRecord) bool { return a.offset >= cleanedTo })
	latest := latestPerKey(cleanedRange)
	for _, r := range got {
		if i := slices.IndexFunc(all, func(a logRecord) bool { return a.offset == r.offset }); i < 0 || all[i] != r {
			t.Fatalf("record %+v was never appended there", r)
		}
		if r.offset < cleanedTo && latest[r.key].offset != r.offset {
			t.Fatalf("superseded record %+v survived cleaning (latest below %d: %+v)", r, cleanedTo, latest[r.key])
		}
	}
}

func (l *Log) cleanedToForTest() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cleanedTo
}

func TestCleanReadsAcrossGapsAndEmptySegments(t *testing.T) {
	fsys, clock := NewMemFS(), newFakeClock()
	l := mustOpen(t, "/d/log", compactOpts(fsys, clock))
	defer l.Close()
	// Every record of the first segments is replaced later: they clean away to nothing.
	all := appendUpdates(t, l, clock, 0, 12, 1)
	mustClean(t, l, CleanConfig{})
	for off := int64(0); off < l.HighWatermark(); off++ {
		r, err := l.Read(off, 1<<20)
		if err != nil {
			t.Fatalf("read %d: %v", off, err)
		}
		data, _ := r.AppendTo(nil)
		r.Release()
		if len(data) == 0 {
			t.Fatalf("read at %d (below the high watermark %d) returned nothing", off, l.HighWatermark())
		}
		h, _ := recordbatch.ParseHeader(data)
		if h.LastOffset() < off {
			t.Fatalf("read at %d returned a batch ending at %d", off, h.LastOffset())
		}
	}
	checkCompacted(t, l, all)
}

func TestCleanTombstonesAfterDeleteRetention(t *testing.T) {
	fsys, clock := NewMemFS(), newFakeClock()
	o := compactOpts(fsys, clock)
	o.DeleteRetentionMs = time.Hour.Milliseconds()
	l := mustOpen(t, "/d/log", o)
	defer l.Close()
	mustAppend(t, l, keyedBatch(clock.Now().UnixMilli(), -1, 0, rec("a", "1"), rec("b", "1")))
	mustAppend(t, l, keyedBatch(clock.Now().UnixMilli(), -1, 0, tomb("a")))
	appendUpdates(t, l, clock, 0, 12, 3) // keys k00..k02: rolls past the tombstone
	mustClean(t, l, CleanConfig{})
	got, _ := readRecords(t, l)
	m := latestPerKey(got)
	if r, ok := m["a"]; !ok || !r.tombstone {
		t.Fatalf("tombstone of a gone before delete.retention.ms: %+v", got)
	}
	if got[0].key == "a" && !got[0].tombstone {
		t.Fatalf("value of a survived its tombstone: %+v", got)
	}
	clock.Advance(2 * time.Hour)
	appendUpdates(t, l, clock, 12, 4, 3)
	mustClean(t, l, CleanConfig{Force: true})
	got, _ = readRecords(t, l)
	if _, ok := latestPerKey(got)["a"]; ok {
		t.Fatalf("tombstone of a kept after delete.retention.ms: %+v", got)
	}
	if r := latestPerKey(got)["b"]; r.value != "1" {
		t.Fatalf("b lost: %+v", got)
	}
}

func TestCleanLagAndRatio(t *testing.T) {
	fsys, clock := NewMemFS(), newFakeClock()
	o := compactOpts(fsys, clock)
	o.MinCompactionLagMs = time.Hour.Milliseconds()
	o.MinCleanableDirtyRatio = 0.5
	l := mustOpen(t, "/d/log", o)
	defer l.Close()
	appendUpdates(t, l, clock, 0, 40, 20)
	if st := mustClean(t, l, CleanConfig{}); st.Cleaned {
		t.Fatalf("cleaned records younger than min.compaction.lag.ms: %+v", st)
	}
	clock.Advance(2 * time.Hour)
	if st := mustClean(t, l, CleanConfig{}); !st.Cleaned {
		t.Fatalf("not cleaned past min.compaction.lag.ms: %+v", st)
	}
	// A little dirt under the ratio waits...
	appendUpdates(t, l, clock, 40, 5, 20)
	clock.Advance(2 * time.Hour)
	if st := mustClean(t, l, CleanConfig{}); st.Cleaned {
		t.Fatalf("cleaned under min.cleanable.dirty.ratio: %+v", st)
	}
	// ... until max.compaction.lag.ms forces it.
	o.MaxCompactionLagMs = time.Hour.Milliseconds()
	l.SetOptions(o)
	if st := mustClean(t, l, CleanConfig{}); !st.Cleaned {
		t.Fatalf("not cleaned past max.compaction.lag.ms: %+v", st)
	}
}

func TestCleanRollsOldActiveSegment(t *testing.T) {
	fsys, clock := NewMemFS(), newFakeClock()
	o := compactOpts(fsys, clock)
	o.SegmentBytesMax = 1 << 20
	o.SegmentMaxAge = time.Minute
	l := mustOpen(t, "/d/log", o)
	defer l.Close()
	all := appendUpdates(t, l, clock, 0, 10, 2)
	mustClean(t, l, CleanConfig{}) // nothing rolled yet: rolls the active segment
	clock.Advance(2 * time.Minute)
	mustClean(t, l, CleanConfig{}) // rolls
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if st := mustClean(t, l, CleanConfig{}); !st.Cleaned {
		t.Fatalf("the old active segment was not rolled and cleaned: %+v", st)
	}
	got, _ := readRecords(t, l)
	if len(got) != 2 {
		t.Fatalf("got %+v", got)
	}
	checkCompacted(t, l, all)
}

func TestCleanKeepsProducerStateAndControlBatches(t *testing.T) {
	fsys, clock := NewMemFS(), newFakeClock()
	l := mustOpen(t, "/d/log", compactOpts(fsys, clock))
	defer l.Close()
	ts := clock.Now().UnixMilli()
	mustAppend(t, l, keyedBatch(ts, 7, 0, rec("x", "1"), rec("y", "1")))
	mustAppend(t, l, keyedBatch(ts, 7, 2, rec("x", "2")))
	ctl := keyedBatch(ts, 7, -1, kv{[]byte{0, 0, 0, 1}, []byte{0, 0, 0, 0, 0, 0}})
	ctl[recordbatch.OffAttributes+1] |= recordbatch.AttrControl | recordbatch.AttrTransactional
	ctl = recordbatch.Finish(ctl, 0)
	mustAppend(t, l, ctl)
	mustAppend(t, l, keyedBatch(ts, 7, 3, rec("y", "2")))
	appendUpdates(t, l, clock, 0, 12, 1)
	mustClean(t, l, CleanConfig{})
	_, hs := readRecords(t, l)
	var last *recordbatch.Header
	control := 0
	for i := range hs {
		if hs[i].ProducerID == 7 && !hs[i].Control() {
			last = &hs[i]
		}
		if hs[i].Control() {
			control++
		}
	}
	if control != 1 {
		t.Fatalf("%d control batches after cleaning, want 1", control)
	}
	if last == nil || last.BaseSequence != 3 || last.BaseOffset != 4 {
		t.Fatalf("last batch of producer 7: %+v", last)
	}
	// The producer's first batch lost x=1 and was rewritten with y... no: y=1 went too (y=2
	// later), so it went; its second batch (x=2) stays whole.
	for _, h := range hs {
		if h.ProducerID == 7 && h.BaseSequence == 0 {
			t.Fatalf("a batch with nothing left that is not its producer's last survived: %+v", h)
		}
	}
}

func TestCleanEmptyBatchKeepsLastSequence(t *testing.T) {
	fsys, clock := NewMemFS(), newFakeClock()
	l := mustOpen(t, "/d/log", compactOpts(fsys, clock))
	defer l.Close()
	ts := clock.Now().UnixMilli()
	mustAppend(t, l, keyedBatch(ts, 9, 0, rec("p", "1"), rec("q", "1")))
	appendUpdates(t, l, clock, 0, 3, 1)
	mustAppend(t, l, keyedBatch(ts, -1, 0, rec("p", "2"), rec("q", "2")))
	appendUpdates(t, l, clock, 3, 12, 1)
	mustClean(t, l, CleanConfig{})
	_, hs := readRecords(t, l)
	i := slices.IndexFunc(hs, func(h recordbatch.Header) bool { return h.ProducerID == 9 })
	if i < 0 || hs[i].RecordCount != 0 || hs[i].BaseSequence != 0 || hs[i].LastOffset() != 1 {
		t.Fatalf("producer 9's last batch should stay empty, with its offsets and sequence: %+v", hs)
	}
}

func TestCleanCompressedBatchIsRewritten(t *testing.T) {
	// A batch that loses some of its records is rewritten with the rest, offsets kept.
	fsys, clock := NewMemFS(), newFakeClock()
	l := mustOpen(t, "/d/log", compactOpts(fsys, clock))
	defer l.Close()
	ts := clock.Now().UnixMilli()
	mustAppend(t, l, keyedBatch(ts, -1, 0, rec("a", "1"), rec("b", "1"), rec("c", "1")))
	mustAppend(t, l, keyedBatch(ts, -1, 0, rec("b", "2")))
	appendUpdates(t, l, clock, 0, 12, 1)
	mustClean(t, l, CleanConfig{})
	got, _ := readRecords(t, l)
	want := []logRecord{{0, "a", "1", false}, {2, "c", "1", false}, {3, "b", "2", false}}
	if !slices.Equal(got[:3], want) {
		t.Fatalf("got %+v, want %+v first", got, want)
	}
}

func TestCleanNotCompactedDoesNothing(t *testing.T) {
	fsys, clock := NewMemFS(), newFakeClock()
	o := compactOpts(fsys, clock)
	o.Compact = false
	l := mustOpen(t, "/d/log", o)
	defer l.Close()
	appendUpdates(t, l, clock, 0, 20, 2)
	if st := mustClean(t, l, CleanConfig{}); st.Cleaned {
		t.Fatal("cleaned a log whose policy is delete")
	}
}

func TestRetentionSparesCompactOnlyLogs(t *testing.T) {
	fsys, clock := NewMemFS(), newFakeClock()
	o := compactOpts(fsys, clock)
	o.RetentionMs = 1
	l := mustOpen(t, "/d/log", o)
	defer l.Close()
	appendUpdates(t, l, clock, 0, 20, 20)
	clock.Advance(time.Hour)
	if err := l.EnforceRetention(); err != nil {
		t.Fatal(err)
	}
	if l.StartOffset() != 0 {
		t.Fatalf("retention deleted from a cleanup.policy=compact log: start %d", l.StartOffset())
	}
}

// TestCleanCrashAtEveryStep crashes (power loss and process crash) after every file-system
// step of a cleaning, and fails each step in turn: the log always reopens with every key's
// latest record at its offset, and a cleaning after the reopen completes.
func TestCleanCrashAtEveryStep(t *testing.T) {
	kinds := []struct {
		name string
		arm  func(m *MemFS, n int)
	}{
		{"fsync-EIO", func(m *MemFS, n int) { m.FailSyncAt(n, syscall.EIO) }},
		{"write-EIO", func(m *MemFS, n int) { m.FailWriteAt(n, syscall.EIO) }},
		{"dirsync-EIO", func(m *MemFS, n int) { m.FailSyncDirAt(n, syscall.EIO) }},
		{"none", nil},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			steps := 0
			for n := 0; n < 200; n++ {
				fired := cleanFaultRun(t, k.arm, n, fmt.Sprintf("%s at step %d", k.name, n))
				if k.arm == nil || !fired {
					break
				}
				steps++
			}
			if k.arm != nil && steps < 3 {
				t.Fatalf("only %d steps failed in turn", steps)
			}
		})
	}
}

func cleanFaultRun(t *testing.T, arm func(*MemFS, int), n int, what string) bool {
	fsys, clock := NewMemFS(), newFakeClock()
	dir := "/d/log"
	o := compactOpts(fsys, clock)
	o.DeleteRetentionMs = -1 // horizons are past at the next cleaning
	l := mustOpen(t, dir, o)
	// Keys written once, among updates of others: their only record is in the segments
	// cleaned, so losing any part of the cleaned copy loses some of them.
	var all []logRecord
	for i := range 12 {
		k := fmt.Sprintf("once-%d", i)
		res := mustAppend(t, l, keyedBatch(clock.Now().UnixMilli(), -1, 0, rec(k, "v")))
		all = append(all, logRecord{res.BaseOffset, k, "v", false})
		all = append(all, appendUpdates(t, l, clock, 3*i, 3, 4)...)
	}
	// Batches the faulted cleaning rewrites in each way it can: a committed transaction whose
	// batch the first cleaning removes (the second writes its marker's horizon), a tombstone
	// whose horizon the first cleaning writes (the second removes it), and a compressed batch
	// that loses a record in the second (recompressed).
	ts := clock.Now().UnixMilli() - 10
	mustAppend(t, l, txnBatch(ts, 7, 0, rec("t", "1")))
	mkr := mustAppend(t, l, marker(ts, 7, true)).BaseOffset
	res := mustAppend(t, l, keyedBatch(ts, 7, 1, rec("p7", "last")))
	all = append(all, logRecord{res.BaseOffset, "p7", "last", false})
	mustAppend(t, l, keyedBatch(ts, -1, 0, rec("gone", "1")))
	mustAppend(t, l, keyedBatch(ts, -1, 0, tomb("gone")))
	res = mustAppend(t, l, keyedBatch(ts, -1, 0, rec("t", "2")))
	all = append(all, logRecord{res.BaseOffset, "t", "2", false})
	all = append(all, appendUpdates(t, l, clock, 100, 4, 4)...)
	// A first cleaning leaves small segments, which the second one (the one faulted) merges:
	// its swap replaces several segments by one.
	mustClean(t, l, CleanConfig{})
	res = mustAppend(t, l, compressedBatch(t, recordbatch.CodecZstd, ts, rec("z1", "1"), rec("z2", "1"), rec("z3", "1")))
	all = append(all, logRecord{res.BaseOffset, "z1", "1", false}, logRecord{res.BaseOffset + 2, "z3", "1", false})
	res = mustAppend(t, l, keyedBatch(ts, -1, 0, rec("z2", "2")))
	all = append(all, logRecord{res.BaseOffset, "z2", "2", false})
	all = append(all, appendUpdates(t, l, clock, 36, 16, 4)...)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	// Snapshots of the file system at every step: a crash is taken after each.
	if arm != nil {
		arm(fsys, n)
	}
	segsBefore := l.segmentCountForTest()
	st, cerr := l.Clean(context.Background(), CleanConfig{Force: true})
	fired := fsys.Faults() > 0
	if arm == nil && l.segmentCountForTest() >= segsBefore-1 {
		t.Fatalf("the cleaning merged no segments: %d segments before, %d after (%+v)", segsBefore, l.segmentCountForTest(), st)
	}
	if arm == nil { // the cleaning wrote each kind of batch it can
		got, hs := readRecords(t, l)
		if _, ok := latestPerKey(got)["gone"]; ok {
			t.Fatalf("the tombstone was not removed: %+v", got)
		}
		kinds := 0
		for _, h := range hs {
			if _, set := h.DeleteHorizon(); set && h.BaseOffset == mkr {
				kinds++
			}
			if h.Codec() == recordbatch.CodecZstd && h.RecordCount == 2 {
				kinds++
			}
		}
		if kinds != 2 {
			t.Fatalf("the cleaning did not write a marker's horizon and a recompressed batch: %+v", hs)
		}
	}
	if arm != nil && !fired && cerr != nil {
		t.Fatalf("%s: clean failed with no fault: %v", what, cerr)
	}
	check := func(after *MemFS, how string) {
		l2, err := Open(dir, Options{FS: after, Now: clock.Now, Compact: true, MinCleanableDirtyRatio: -1})
		if err != nil {
			t.Fatalf("%s, %s: reopen: %v", what, how, err)
		}
		defer l2.Close()
		got, hs := readRecords(t, l2)
		byOffset := map[int64]logRecord{}
		for _, r := range got {
			byOffset[r.offset] = r
		}
		for k, want := range latestPerKey(all) {
			if byOffset[want.offset] != want {
				t.Fatalf("%s, %s: latest of %s (%+v) lost; log holds %+v", what, how, k, want, got)
			}
		}
		if r, ok := latestPerKey(got)["gone"]; ok && !r.tombstone {
			t.Fatalf("%s, %s: a deleted key came back: %+v", what, how, r)
		}
		for _, h := range hs {
			if h.BaseOffset == mkr && !h.Control() {
				t.Fatalf("%s, %s: the marker's offset holds %+v", what, how, h)
			}
		}
		if _, err := l2.Clean(context.Background(), CleanConfig{Force: true}); err != nil {
			t.Fatalf("%s, %s: clean after reopen: %v", what, how, err)
		}
		got, _ = readRecords(t, l2)
		if len(got) == 0 {
			t.Fatalf("%s, %s: empty after a second cleaning", what, how)
		}
		names, _ := after.ReadDir(dir)
		for _, name := range names {
			if strings.HasSuffix(name, cleanedExt) || strings.HasSuffix(name, swapExt) || strings.HasSuffix(name, deletedExt) {
				t.Fatalf("%s, %s: %s left after reopen", what, how, name)
			}
		}
	}
	check(fsys.Crash(keepNone), "power loss")
	check(fsys.Crash(func(n int) int { return n / 2 }), "half written")
	check(fsys.Crash(keepAll), "process crash")
	_ = l.Close()
	return fired
}

func (l *Log) segmentCountForTest() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.segs)
}

// TestCleanReaderKeepsReplacedSegment: a read handed out before a cleaning (a sendfile in
// flight) reads the replaced segment's bytes afterwards, even with a file cache of one file
// that other reads churn.
func TestCleanReaderKeepsReplacedSegment(t *testing.T) {
	for _, fac := range fsFactories {
		t.Run(fac.name, func(t *testing.T) {
			fsys, dir := fac.make(t)
			clock := newFakeClock()
			l := mustOpen(t, dir, compactOpts(fsys, clock))
			defer l.Close()
			appendUpdates(t, l, clock, 0, 30, 3)
			rr, err := l.Read(0, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			defer rr.Release()
			want, err := rr.AppendTo(nil)
			if err != nil || len(want) == 0 {
				t.Fatalf("read: %v", err)
			}
			if st := mustClean(t, l, CleanConfig{}); !st.Cleaned {
				t.Fatalf("not cleaned: %+v", st)
			}
			readAll(t, l) // other segment files go through the cache
			got, err := rr.AppendTo(nil)
			if err != nil {
				t.Fatalf("read of a replaced segment after the cleaning: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatal("a read handed out before the cleaning returns other bytes after it")
			}
		})
	}
}

// TestCleanCutShortStaysDirty: a cleaning that fails (or is killed) before its swap leaves its
// range dirty, so the next round cleans it again whatever new data arrived since: whichever
// write fails, after a reopen and a cleaning the rolled segments hold each key once.
func TestCleanCutShortStaysDirty(t *testing.T) {
	for n := 0; ; n++ {
		fsys, clock := NewMemFS(), newFakeClock()
		o := compactOpts(fsys, clock)
		o.MinCleanableDirtyRatio = 0.9
		l := mustOpen(t, "/d/log", o)
		appendUpdates(t, l, clock, 0, 30, 3)
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		fsys.FailWriteAt(n, syscall.EIO)
		_, err := l.Clean(context.Background(), CleanConfig{})
		_ = l.Close()
		if err == nil {
			if n < 2 {
				t.Fatalf("only %d writes in a cleaning", n)
			}
			return
		}
		l2 := mustOpen(t, "/d/log", Options{FS: fsys.Crash(keepAll), Now: clock.Now, Compact: true, MinCleanableDirtyRatio: 0.9})
		mustClean(t, l2, CleanConfig{})
		got, _ := readRecords(t, l2)
		active := l2.SegmentBase(l2.EndOffset())
		seen := map[string]int64{}
		for _, r := range got {
			if r.offset >= active {
				break
			}
			if prev, dup := seen[r.key]; dup {
				t.Fatalf("write %d failed: key %s at %d and %d in rolled segments after a second cleaning", n, r.key, prev, r.offset)
			}
			seen[r.key] = r.offset
		}
		l2.Close()
	}
}
