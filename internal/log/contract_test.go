package log

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The contract suite runs every test against each FS in fsFactories (the real
// file system and MemFS).
func TestContract(t *testing.T) {
	tests := []struct {
		name string
		fn   func(t *testing.T, fsys FS, dir string)
	}{
		{"AppendRead", testAppendRead},
		{"ReadBounds", testReadBounds},
		{"InvalidAppend", testInvalidAppend},
		{"RollBySize", testRollBySize},
		{"RollByAge", testRollByAge},
		{"RetentionByTime", testRetentionByTime},
		{"RetentionByBytes", testRetentionByBytes},
		{"DeleteRecordsBefore", testDeleteRecordsBefore},
		{"DeleteSegmentsBefore", testDeleteSegmentsBefore},
		{"TruncateTo", testTruncateTo},
		{"IndexRebuild", testIndexRebuild},
		{"OffsetForTimestamp", testOffsetForTimestamp},
		{"Changed", testChanged},
		{"ReleaseKeepsDeletedSegment", testReleaseKeepsDeletedSegment},
		{"ReopenClean", testReopenClean},
		{"ReopenUnclean", testReopenUnclean},
		{"SetOptions", testSetOptions},
		{"ForeignFile", testForeignFile},
		{"SyncPolicies", testSyncPolicies},
		{"Delete", testDelete},
	}
	for _, f := range fsFactories {
		for _, tc := range tests {
			t.Run(f.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				fsys, dir := f.make(t)
				tc.fn(t, fsys, dir)
			})
		}
	}
}

// appendN appends n single batches of recs records and returns copies of them
// (with their assigned base offsets).
func appendN(t *testing.T, l *Log, n, recs, recBytes int, ts func(i int) int64) [][]byte {
	t.Helper()
	var out [][]byte
	for i := 0; i < n; i++ {
		b := makeBatch(recs, recBytes, ts(i), byte(i))
		mustAppend(t, l, b)
		out = append(out, b)
	}
	return out
}

func constTS(int64) func(int) int64 { return func(i int) int64 { return 1000 + int64(i) } }

func checkBatches(t *testing.T, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d batches, want %d", len(got), len(want))
	}
	for i := range got {
		if string(got[i]) != string(want[i]) {
			t.Fatalf("batch %d differs (len %d vs %d)", i, len(got[i]), len(want[i]))
		}
	}
}

func testAppendRead(t *testing.T, fsys FS, dir string) {
	l := mustOpen(t, dir, Options{FS: fsys, IndexIntervalBytes: 300})
	defer l.Close()
	var want [][]byte
	next := int64(0)
	for i := 0; i < 40; i++ {
		// Some appends carry several batches at once.
		var buf []byte
		var parts [][]byte
		for k := 0; k <= i%3; k++ {
			b := makeBatch(i%4+1, 50+i, int64(i), byte(i+k))
			parts = append(parts, b)
			buf = append(buf, b...)
		}
		res := mustAppend(t, l, buf)
		if res.BaseOffset != next || res.Batches != len(parts) || res.Bytes != len(buf) {
			t.Fatalf("append %d: result %+v, want base %d, %d batches", i, res, next, len(parts))
		}
		for _, p := range parts {
			info, _ := parseBatchPrefix(buf)
			if info.baseOffset != next {
				t.Fatalf("append %d: batch got base offset %d, want %d", i, info.baseOffset, next)
			}
			want = append(want, append([]byte(nil), buf[:len(p)]...))
			buf = buf[len(p):]
			next += info.lastDelta + 1
		}
		if res.LastOffset != next-1 {
			t.Fatalf("append %d: last offset %d, want %d", i, res.LastOffset, next-1)
		}
	}
	if l.EndOffset() != next || l.HighWatermark() != next {
		t.Fatalf("end %d hw %d, want %d", l.EndOffset(), l.HighWatermark(), next)
	}
	checkBatches(t, readAll(t, l), want)
	// Every offset reads from the batch that contains it.
	for _, w := range want {
		info, _ := parseBatchPrefix(w)
		for off := info.baseOffset; off <= info.lastOffset(); off++ {
			r, err := l.Read(off, 1)
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.AppendTo(nil)
			r.Release()
			if err != nil || string(got) != string(w) {
				t.Fatalf("read at %d: got %d bytes (err %v), want the batch at %d", off, len(got), err, info.baseOffset)
			}
		}
	}
}

func testReadBounds(t *testing.T, fsys FS, dir string) {
	l := mustOpen(t, dir, Options{FS: fsys, IndexIntervalBytes: 100})
	defer l.Close()
	want := appendN(t, l, 10, 2, 100, constTS(0))
	size := int64(len(want[0]))
	// maxBytes smaller than a batch still returns one whole batch (KIP-74).
	r, err := l.Read(0, 10)
	if err != nil || r.Bytes != size {
		t.Fatalf("read 10 bytes: %v, %d bytes, want %d", err, r.Bytes, size)
	}
	r.Release()
	// maxBytes covering 3.5 batches returns 3.
	r, err = l.Read(2, int(size*7/2))
	if err != nil || r.Bytes != 3*size || r.Ranges[0].Pos != size {
		t.Fatalf("read 3.5 batches: %v, %+v", err, r)
	}
	r.Release()
	// At the high watermark: empty; past it or before the start: out of range.
	r, err = l.Read(l.HighWatermark(), 100)
	if err != nil || r.Bytes != 0 {
		t.Fatalf("read at hw: %v %+v", err, r)
	}
	if _, err := l.Read(l.HighWatermark()+1, 100); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read past hw: %v", err)
	}
	if _, err := l.Read(-1, 100); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read at -1: %v", err)
	}
}

func testInvalidAppend(t *testing.T, fsys FS, dir string) {
	l := mustOpen(t, dir, Options{FS: fsys})
	defer l.Close()
	good := makeBatch(2, 10, 5, 1)
	badCRC := makeBatch(2, 10, 5, 1)
	badCRC[len(badCRC)-1] ^= 1
	badMagic := makeBatch(2, 10, 5, 1)
	badMagic[16] = 1
	for name, b := range map[string][]byte{
		"crc": badCRC, "magic": badMagic, "short": good[:30], "truncated": good[:len(good)-1],
		"trailing": append(append([]byte(nil), good...), 1, 2, 3), "empty": nil,
		"second bad": append(append([]byte(nil), good...), badCRC...),
	} {
		if _, err := l.Append(b); !errors.Is(err, ErrCorruptBatch) {
			t.Errorf("%s: got %v, want ErrCorruptBatch", name, err)
		}
	}
	if l.EndOffset() != 0 || l.Size() != 0 {
		t.Fatalf("log changed by invalid appends: end %d size %d", l.EndOffset(), l.Size())
	}
	mustAppend(t, l, good)
	checkBatches(t, readAll(t, l), [][]byte{good})
}

func segmentFiles(t *testing.T, fsys FS, dir string) []string {
	t.Helper()
	names, err := fsys.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var logs []string
	for _, n := range names {
		if strings.HasSuffix(n, ".log") {
			logs = append(logs, n)
		}
	}
	return logs
}

func testRollBySize(t *testing.T, fsys FS, dir string) {
	l := mustOpen(t, dir, Options{FS: fsys, SegmentBytesMax: 1000, IndexIntervalBytes: 200})
	defer l.Close()
	want := appendN(t, l, 20, 3, 100, constTS(0)) // 361-byte batches: two per segment
	logs := segmentFiles(t, fsys, dir)
	if len(logs) != 10 || logs[0] != "00000000000000000000.log" || logs[1] != "00000000000000000006.log" {
		t.Fatalf("segments %v", logs)
	}
	checkBatches(t, readAll(t, l), want)
	// A batch larger than a segment still goes in (alone).
	big := makeBatch(1, 2000, 1, 9)
	mustAppend(t, l, big)
	checkBatches(t, readAll(t, l), append(want, big))
}

func testRollByAge(t *testing.T, fsys FS, dir string) {
	clock := newFakeClock()
	l := mustOpen(t, dir, Options{FS: fsys, SegmentMaxAge: time.Hour, Now: clock.Now})
	defer l.Close()
	appendN(t, l, 3, 1, 10, constTS(0))
	clock.Advance(59 * time.Minute)
	appendN(t, l, 1, 1, 10, constTS(0))
	if n := len(segmentFiles(t, fsys, dir)); n != 1 {
		t.Fatalf("rolled too early: %d segments", n)
	}
	clock.Advance(time.Minute)
	appendN(t, l, 1, 1, 10, constTS(0))
	if logs := segmentFiles(t, fsys, dir); len(logs) != 2 || logs[1] != "00000000000000000004.log" {
		t.Fatalf("segments after an hour: %v", logs)
	}
}

func testRetentionByTime(t *testing.T, fsys FS, dir string) {
	clock := newFakeClock()
	now := clock.Now().UnixMilli()
	l := mustOpen(t, dir, Options{FS: fsys, SegmentBytesMax: 500, RetentionMs: 10_000, Now: clock.Now})
	defer l.Close()
	// Segments of two batches; timestamps one second apart, ending now.
	want := appendN(t, l, 20, 1, 150, func(i int) int64 { return now - int64(20-i)*1000 })
	if err := l.EnforceRetention(); err != nil {
		t.Fatal(err)
	}
	// Segments whose newest batch is more than 10 s old are gone: batches 0..9
	// (timestamps now-20s .. now-11s) in segments [0,1] .. [8,9].
	if l.StartOffset() != 10 {
		t.Fatalf("start offset %d, want 10", l.StartOffset())
	}
	checkBatches(t, readAll(t, l), want[10:])
	if _, err := l.Read(9, 100); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below start: %v", err)
	}
	// Far in the future everything but the active segment goes.
	clock.Advance(time.Hour)
	if err := l.EnforceRetention(); err != nil {
		t.Fatal(err)
	}
	if logs := segmentFiles(t, fsys, dir); len(logs) != 1 || l.StartOffset() != 18 {
		t.Fatalf("after an hour: segments %v, start %d", logs, l.StartOffset())
	}
}

func testRetentionByBytes(t *testing.T, fsys FS, dir string) {
	l := mustOpen(t, dir, Options{FS: fsys, SegmentBytesMax: 500, RetentionBytes: 1000, RetentionMs: -1})
	defer l.Close()
	want := appendN(t, l, 20, 1, 139, constTS(0)) // 200-byte batches, 400-byte segments
	if l.Size() != 4000 {
		t.Fatalf("size %d", l.Size())
	}
	if err := l.EnforceRetention(); err != nil {
		t.Fatal(err)
	}
	// Delete while size - oldest >= 1000: 4000 -> 1200 (three segments).
	if l.Size() != 1200 || l.StartOffset() != 14 {
		t.Fatalf("size %d start %d, want 1200 and 14", l.Size(), l.StartOffset())
	}
	checkBatches(t, readAll(t, l), want[14:])
}

func testDeleteSegmentsBefore(t *testing.T, fsys FS, dir string) {
	l := mustOpen(t, dir, Options{FS: fsys, SegmentBytesMax: 500})
	defer l.Close()
	appendN(t, l, 20, 2, 100, constTS(0)) // 2 offsets per batch, 1 batch per segment
	if moved, err := l.DeleteSegmentsBefore(1); moved || err != nil || l.StartOffset() != 0 {
		t.Fatalf("within the first segment: moved %v, %v, start %d", moved, err, l.StartOffset())
	}
	if moved, err := l.DeleteSegmentsBefore(11); !moved || err != nil || l.StartOffset() != 10 {
		t.Fatalf("to offset 11: moved %v, %v, start %d; want the segment base 10", moved, err, l.StartOffset())
	}
	if logs := segmentFiles(t, fsys, dir); len(logs) != 15 || logs[0] != "00000000000000000010.log" {
		t.Fatalf("segments %v", logs)
	}
	if moved, err := l.DeleteSegmentsBefore(11); moved || err != nil || l.StartOffset() != 10 {
		t.Fatalf("again: moved %v, %v, start %d", moved, err, l.StartOffset())
	}
}

func testDeleteRecordsBefore(t *testing.T, fsys FS, dir string) {
	opts := Options{FS: fsys, SegmentBytesMax: 500}
	l := mustOpen(t, dir, opts)
	want := appendN(t, l, 20, 2, 100, constTS(0)) // 2 offsets per batch, 1 batch per segment
	if err := l.DeleteRecordsBefore(l.HighWatermark() + 1); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("delete past hw: %v", err)
	}
	if err := l.DeleteRecordsBefore(11); err != nil {
		t.Fatal(err)
	}
	if l.StartOffset() != 11 {
		t.Fatalf("start %d", l.StartOffset())
	}
	if logs := segmentFiles(t, fsys, dir); len(logs) != 15 || logs[0] != "00000000000000000010.log" {
		t.Fatalf("segments %v", logs)
	}
	// The batch holding offset 11 (offsets 10-11) is still returned from 11.
	r, err := l.Read(11, 1)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := r.AppendTo(nil)
	r.Release()
	if string(got) != string(want[5]) {
		t.Fatal("read at the new start does not return its batch")
	}
	if _, err := l.Read(10, 1); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below start: %v", err)
	}
	if err := l.DeleteRecordsBefore(3); err != nil || l.StartOffset() != 11 {
		t.Fatalf("lowering the start: %v, start %d", err, l.StartOffset())
	}
	// Durable across a clean reopen and a crash.
	l.Close()
	l = mustOpen(t, dir, opts)
	if l.StartOffset() != 11 {
		t.Fatalf("start after reopen %d", l.StartOffset())
	}
	l.closeUnclean()
	l = mustOpen(t, dir, opts)
	defer l.Close()
	if l.StartOffset() != 11 || l.EndOffset() != 40 {
		t.Fatalf("start/end after unclean reopen %d/%d", l.StartOffset(), l.EndOffset())
	}
}

func testTruncateTo(t *testing.T, fsys FS, dir string) {
	opts := Options{FS: fsys, SegmentBytesMax: 700, IndexIntervalBytes: 100}
	l := mustOpen(t, dir, opts)
	want := appendN(t, l, 20, 3, 100, constTS(0)) // 3 offsets per batch
	// Truncating inside the batch 33..35 drops it: the end becomes 33.
	if err := l.TruncateTo(34); err != nil {
		t.Fatal(err)
	}
	if l.EndOffset() != 33 || l.HighWatermark() != 33 {
		t.Fatalf("end %d hw %d, want 33", l.EndOffset(), l.HighWatermark())
	}
	checkBatches(t, readAll(t, l), want[:11])
	if ts, off := l.MaxTimestamp(); ts != 1010 || off != 32 {
		t.Fatalf("max timestamp after truncation %d at %d, want 1010 at 32", ts, off)
	}
	// Truncating into an older segment drops the later segments.
	if err := l.TruncateTo(9); err != nil {
		t.Fatal(err)
	}
	checkBatches(t, readAll(t, l), want[:3])
	more := appendN(t, l, 5, 3, 100, constTS(0))
	if info, _ := parseBatchPrefix(more[0]); info.baseOffset != 9 {
		t.Fatalf("append after truncate got base %d", info.baseOffset)
	}
	all := append(append([][]byte(nil), want[:3]...), more...)
	checkBatches(t, readAll(t, l), all)
	l.closeUnclean()
	l = mustOpen(t, dir, opts)
	checkBatches(t, readAll(t, l), all)
	if err := l.TruncateTo(-5); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("truncate below start: %v", err)
	}
	if err := l.TruncateTo(0); err != nil || l.EndOffset() != 0 {
		t.Fatalf("truncate to 0: %v, end %d", err, l.EndOffset())
	}
	l.Close()
	l = mustOpen(t, dir, opts)
	defer l.Close()
	if l.EndOffset() != 0 || len(readAll(t, l)) != 0 {
		t.Fatal("log not empty after truncating to 0 and reopening")
	}
}

func testIndexRebuild(t *testing.T, fsys FS, dir string) {
	logger, records := newRecorder()
	opts := Options{FS: fsys, SegmentBytesMax: 2000, IndexIntervalBytes: 150, Logger: logger}
	l := mustOpen(t, dir, opts)
	want := appendN(t, l, 30, 1, 200, func(i int) int64 { return 5000 + int64(i)*10 })
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Remove one index, damage another's time index, truncate a third.
	seg := func(base int64, ext string) string { return filepath.Join(dir, segmentName(base, ext)) }
	if err := fsys.Remove(seg(0, ".index")); err != nil {
		t.Fatal(err)
	}
	damage(t, fsys, seg(7, ".timeindex"), func(b []byte) []byte { b[3] ^= 0x40; return b })
	damage(t, fsys, seg(14, ".index"), func(b []byte) []byte { return b[:len(b)-3] })
	l = mustOpen(t, dir, opts)
	defer l.Close()
	checkBatches(t, readAll(t, l), want)
	for i := range want {
		if off, err := l.OffsetForTimestamp(5000 + int64(i)*10); err != nil || off != int64(i) {
			t.Fatalf("offset for timestamp of batch %d: %d, %v", i, off, err)
		}
	}
	rebuilt := map[string]bool{}
	for _, r := range records() {
		if r.Message == "rebuilding index from its segment" {
			rebuilt[filepath.Base(recordAttrs(r)["file"])] = true
		}
	}
	for _, name := range []string{segmentName(0, ".index"), segmentName(7, ".index"), segmentName(14, ".index")} {
		if !rebuilt[name] {
			t.Errorf("no rebuild logged for %s (logged: %v)", name, rebuilt)
		}
	}
	// The rebuilt files are good: reopening again logs no rebuild.
	l.Close()
	logger2, records2 := newRecorder()
	opts.Logger = logger2
	l = mustOpen(t, dir, opts)
	checkBatches(t, readAll(t, l), want)
	for _, r := range records2() {
		if r.Message == "rebuilding index from its segment" {
			t.Errorf("rebuilt again: %v", recordAttrs(r))
		}
	}
}

// damage rewrites a file through the FS.
func damage(t *testing.T, fsys FS, name string, fn func([]byte) []byte) {
	t.Helper()
	b, err := readFileAll(fsys, name)
	if err != nil {
		t.Fatal(err)
	}
	b = fn(b)
	f, err := fsys.OpenFile(name, os.O_RDWR|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(b, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func testOffsetForTimestamp(t *testing.T, fsys FS, dir string) {
	l := mustOpen(t, dir, Options{FS: fsys, SegmentBytesMax: 1500, IndexIntervalBytes: 120})
	defer l.Close()
	if off, err := l.OffsetForTimestamp(0); err != nil || off != -1 {
		t.Fatalf("empty log: %d %v", off, err)
	}
	if ts, off := l.MaxTimestamp(); ts != -1 || off != -1 {
		t.Fatalf("empty log max timestamp %d %d", ts, off)
	}
	// Timestamps out of order, with 2 offsets per batch.
	tsOf := func(i int) int64 { return int64((i * 37) % 50 * 100) }
	want := appendN(t, l, 50, 2, 80, tsOf)
	brute := func(ts int64) int64 {
		for i := range want {
			if tsOf(i) >= ts {
				return int64(2 * i)
			}
		}
		return -1
	}
	for ts := int64(-5); ts <= 5100; ts += 50 {
		got, err := l.OffsetForTimestamp(ts)
		if err != nil || got != brute(ts) {
			t.Fatalf("OffsetForTimestamp(%d) = %d, %v; want %d", ts, got, err, brute(ts))
		}
	}
	maxI := 0
	for i := range want {
		if tsOf(i) > tsOf(maxI) {
			maxI = i
		}
	}
	if ts, off := l.MaxTimestamp(); ts != tsOf(maxI) || off != int64(2*maxI+1) {
		t.Fatalf("max timestamp %d at %d, want %d at %d", ts, off, tsOf(maxI), 2*maxI+1)
	}
	// After deleting records the answer is never below the start offset.
	if err := l.DeleteRecordsBefore(31); err != nil {
		t.Fatal(err)
	}
	if got, _ := l.OffsetForTimestamp(0); got != 31 {
		t.Fatalf("after delete: %d, want 31", got)
	}
}

func testChanged(t *testing.T, fsys FS, dir string) {
	for _, p := range []SyncPolicy{SyncAlways, SyncNever} {
		l := mustOpen(t, filepath.Join(dir, p.String()), Options{FS: fsys, SyncPolicy: p})
		ch := l.Changed()
		select {
		case <-ch:
			t.Fatal("changed before any append")
		default:
		}
		done := make(chan error)
		go func() {
			_, err := l.AppendNoWait(makeBatch(1, 10, 1, 1))
			done <- err
		}()
		<-ch // the high watermark moved (after the fsync under SyncAlways)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if l.HighWatermark() != 1 {
			t.Fatalf("%v: hw %d after wakeup", p, l.HighWatermark())
		}
		ch = l.Changed()
		l.Close()
		<-ch // Close wakes long polls
	}
}

func testReleaseKeepsDeletedSegment(t *testing.T, fsys FS, dir string) {
	l := mustOpen(t, dir, Options{FS: fsys, SegmentBytesMax: 500, RetentionBytes: 1, RetentionMs: -1})
	defer l.Close()
	want := appendN(t, l, 6, 1, 150, constTS(0))
	r, err := l.Read(0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.EnforceRetention(); err != nil {
		t.Fatal(err)
	}
	if l.StartOffset() != 4 {
		t.Fatalf("start %d", l.StartOffset())
	}
	if _, err := fsys.Stat(filepath.Join(dir, segmentName(0, ".log"))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("segment file still there: %v", err)
	}
	got, err := r.AppendTo(nil)
	if err != nil || string(got) != string(want[0]) {
		t.Fatalf("deleted segment unreadable before release: %v", err)
	}
	r.Release()
	r.Release() // harmless
}

func testReopenClean(t *testing.T, fsys FS, dir string) {
	opts := Options{FS: fsys, SegmentBytesMax: 1000, IndexIntervalBytes: 100}
	l := mustOpen(t, dir, opts)
	want := appendN(t, l, 17, 2, 120, func(i int) int64 { return int64(100 * i) })
	maxTS, maxOff := l.MaxTimestamp()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(makeBatch(1, 1, 1, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if _, err := l.Read(0, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	logger, records := newRecorder()
	opts.Logger = logger
	l = mustOpen(t, dir, opts)
	defer l.Close()
	for _, r := range records() {
		if r.Level >= 0 { // no info about scanning, no warnings
			t.Errorf("clean reopen logged %q %v", r.Message, recordAttrs(r))
		}
	}
	if l.EndOffset() != 34 || l.StartOffset() != 0 {
		t.Fatalf("start %d end %d", l.StartOffset(), l.EndOffset())
	}
	if ts, off := l.MaxTimestamp(); ts != maxTS || off != maxOff {
		t.Fatalf("max timestamp %d/%d, want %d/%d", ts, off, maxTS, maxOff)
	}
	checkBatches(t, readAll(t, l), want)
	more := appendN(t, l, 3, 1, 10, constTS(0))
	checkBatches(t, readAll(t, l), append(want, more...))
}

func testReopenUnclean(t *testing.T, fsys FS, dir string) {
	opts := Options{FS: fsys, SegmentBytesMax: 1000, IndexIntervalBytes: 100}
	l := mustOpen(t, dir, opts)
	want := appendN(t, l, 17, 2, 120, func(i int) int64 { return int64(100 * i) })
	l.closeUnclean()
	l = mustOpen(t, dir, opts)
	defer l.Close()
	checkBatches(t, readAll(t, l), want)
	if ts, off := l.MaxTimestamp(); ts != 1600 || off != 33 {
		t.Fatalf("max timestamp %d/%d", ts, off)
	}
	more := appendN(t, l, 3, 1, 10, constTS(0))
	checkBatches(t, readAll(t, l), append(want, more...))
}

func testSetOptions(t *testing.T, fsys FS, dir string) {
	l := mustOpen(t, dir, Options{FS: fsys})
	defer l.Close()
	appendN(t, l, 4, 1, 200, constTS(0))
	if n := len(segmentFiles(t, fsys, dir)); n != 1 {
		t.Fatalf("%d segments", n)
	}
	l.SetOptions(Options{SegmentBytesMax: 300, RetentionBytes: 300, RetentionMs: -1})
	appendN(t, l, 4, 1, 200, constTS(0))
	if n := len(segmentFiles(t, fsys, dir)); n != 5 {
		t.Fatalf("%d segments after lowering SegmentBytesMax", n)
	}
	if err := l.EnforceRetention(); err != nil {
		t.Fatal(err)
	}
	if n := len(segmentFiles(t, fsys, dir)); n != 2 || l.StartOffset() != 6 {
		t.Fatalf("%d segments, start %d after retention", n, l.StartOffset())
	}
}

func testForeignFile(t *testing.T, fsys FS, dir string) {
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := fsys.OpenFile(filepath.Join(dir, "notes.txt"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, err = Open(dir, Options{FS: fsys})
	if !errors.Is(err, ErrForeignFile) || !strings.Contains(err.Error(), "notes.txt") {
		t.Fatalf("open of a directory with a foreign file: %v", err)
	}
}

func testSyncPolicies(t *testing.T, fsys FS, dir string) {
	for _, p := range []SyncPolicy{SyncAlways, SyncInterval, SyncNever} {
		l := mustOpen(t, filepath.Join(dir, p.String()), Options{FS: fsys, SyncPolicy: p, SyncInterval: time.Millisecond})
		want := appendN(t, l, 5, 1, 100, constTS(0))
		if l.HighWatermark() != 5 {
			t.Fatalf("%v: hw %d", p, l.HighWatermark())
		}
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		checkBatches(t, readAll(t, l), want)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []string{"always", "interval", "never"} {
		if p, err := ParseSyncPolicy(s); err != nil || p.String() != s {
			t.Fatalf("parse %q: %v %v", s, p, err)
		}
	}
	if _, err := ParseSyncPolicy("sometimes"); err == nil {
		t.Fatal("parsed a bad policy")
	}
}

func testDelete(t *testing.T, fsys FS, dir string) {
	l := mustOpen(t, dir, Options{FS: fsys})
	appendN(t, l, 3, 1, 10, constTS(0))
	if err := l.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("directory still there: %v", err)
	}
}
