package log

import (
	"context"
	"errors"
	"path/filepath"
	"syscall"
	"testing"
)

// keepAll / keepNone are Crash choices.
func keepAll(n int) int  { return n }
func keepNone(n int) int { return 0 }

func TestFailedWriteLeavesLogConsistent(t *testing.T) {
	t.Parallel()
	fsys := NewMemFS()
	dir := "/d/log"
	l := mustOpen(t, dir, Options{FS: fsys})
	want := appendN(t, l, 3, 2, 100, constTS(0))
	sizeBefore := l.Size()
	fsys.FailNextWrite(syscall.ENOSPC)
	if _, err := l.Append(makeBatch(2, 100, 1, 9)); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("append with a failing write: %v", err)
	}
	// The half-written bytes were cut off again.
	data, err := fsys.ReadFile(filepath.Join(dir, segmentName(0, ".log")))
	if err != nil || int64(len(data)) != sizeBefore || l.Size() != sizeBefore || l.EndOffset() != 6 {
		t.Fatalf("after failed write: file %d bytes, size %d, end %d; want %d bytes, end 6",
			len(data), l.Size(), l.EndOffset(), sizeBefore)
	}
	// A full disk is not fatal: the next append works and gets the next offsets.
	more := appendN(t, l, 2, 2, 100, constTS(0))
	if info, _ := parseBatchPrefix(more[0]); info.baseOffset != 6 {
		t.Fatalf("next append got base %d", info.baseOffset)
	}
	all := append(want, more...)
	checkBatches(t, readAll(t, l), all)
	l2 := mustOpen(t, dir, Options{FS: fsys.Crash(keepAll)})
	defer l2.Close()
	checkBatches(t, readAll(t, l2), all)
	l.Close()
}

func TestFailedSyncFailsTheLog(t *testing.T) {
	t.Parallel()
	for _, keep := range []func(int) int{keepAll, keepNone} {
		fsys := NewMemFS()
		dir := "/d/log"
		l := mustOpen(t, dir, Options{FS: fsys})
		acked := appendN(t, l, 3, 2, 100, constTS(0))
		fsys.FailNextSync(syscall.EIO)
		if _, err := l.Append(makeBatch(2, 100, 1, 9)); !errors.Is(err, syscall.EIO) {
			t.Fatalf("append with a failing fsync: %v", err)
		}
		// The log refuses everything that would need a new fsync until reopened.
		if _, err := l.Append(makeBatch(2, 100, 1, 9)); !errors.Is(err, syscall.EIO) {
			t.Fatalf("append after a failed fsync: %v", err)
		}
		if err := l.WaitDurable(context.Background(), 7); !errors.Is(err, syscall.EIO) {
			t.Fatalf("wait after a failed fsync: %v", err)
		}
		if err := l.Sync(); !errors.Is(err, syscall.EIO) {
			t.Fatalf("sync after a failed fsync: %v", err)
		}
		// Readers still see exactly the acknowledged data.
		if l.HighWatermark() != 6 {
			t.Fatalf("hw %d after failed fsync, want 6", l.HighWatermark())
		}
		checkBatches(t, readAll(t, l), acked)
		crashed := fsys.Crash(keep)
		if err := l.Close(); !errors.Is(err, syscall.EIO) {
			t.Fatalf("close after failed fsync: %v", err)
		}
		l2 := mustOpen(t, dir, Options{FS: crashed})
		got := readAll(t, l2)
		if len(got) < 3 || len(got) > 4 {
			t.Fatalf("after reopen %d batches, want the 3 acknowledged (and maybe the failed one)", len(got))
		}
		checkBatches(t, got[:3], acked)
		mustAppend(t, l2, makeBatch(1, 10, 1, 1))
		l2.Close()
	}
}

func TestFailedSyncOfRolledSegment(t *testing.T) {
	t.Parallel()
	fsys := NewMemFS()
	dir := "/d/log"
	l := mustOpen(t, dir, Options{FS: fsys, SyncPolicy: SyncNever, SegmentBytesMax: 500})
	want := appendN(t, l, 2, 1, 200, constTS(0))
	fsys.FailNextSync(syscall.EIO)
	// This append rolls; the syncer's fsync of the rolled segment fails.
	want = append(want, appendN(t, l, 1, 1, 200, constTS(0))...)
	if err := l.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("sync after the rolled segment's fsync failed: %v", err)
	}
	if _, err := l.Append(makeBatch(1, 10, 1, 1)); !errors.Is(err, syscall.EIO) {
		t.Fatalf("append after failed fsync: %v", err)
	}
	crashed := fsys.Crash(keepNone)
	l.Close()
	l2 := mustOpen(t, dir, Options{FS: crashed})
	defer l2.Close()
	got := readAll(t, l2)
	if len(got) > 3 {
		t.Fatalf("%d batches after crash", len(got))
	}
	checkBatches(t, got, want[:len(got)])
}

// TestStartBeyondRecoveredEnd: records deleted under SyncNever, then a crash
// loses the data below the new start: the log restarts empty at the start offset.
func TestStartBeyondRecoveredEnd(t *testing.T) {
	t.Parallel()
	fsys := NewMemFS()
	dir := "/d/log"
	l := mustOpen(t, dir, Options{FS: fsys, SyncPolicy: SyncNever})
	appendN(t, l, 10, 1, 10, constTS(0))
	if err := l.DeleteRecordsBefore(8); err != nil {
		t.Fatal(err)
	}
	crashed := fsys.Crash(keepNone) // the segment data was never fsynced
	l.Close()
	l2 := mustOpen(t, dir, Options{FS: crashed})
	defer l2.Close()
	if l2.StartOffset() != 8 || l2.EndOffset() != 8 || len(readAll(t, l2)) != 0 {
		t.Fatalf("start %d end %d", l2.StartOffset(), l2.EndOffset())
	}
	res := mustAppend(t, l2, makeBatch(1, 10, 1, 1))
	if res.BaseOffset != 8 {
		t.Fatalf("append got offset %d", res.BaseOffset)
	}
}

// TestRecoveredTailUnsyncedUnderNever: under SyncNever an unclean open does not
// fsync the tail it scanned; a second (OS) crash before the syncer gets to it
// still reopens to a prefix, and the tail becomes durable on Sync.
func TestRecoveredTailUnsyncedUnderNever(t *testing.T) {
	t.Parallel()
	fsys := NewMemFS()
	dir := "/d/log"
	opts := Options{FS: fsys, SyncPolicy: SyncNever, SegmentBytesMax: 1000}
	l := mustOpen(t, dir, opts)
	want := appendN(t, l, 12, 1, 150, constTS(0))
	l.closeUnclean() // a process crash: the page cache (MemFS content) survives
	l2 := mustOpen(t, dir, opts)
	checkBatches(t, readAll(t, l2), want)
	if l2.HighWatermark() != l2.EndOffset() {
		t.Fatalf("hw %d end %d under never", l2.HighWatermark(), l2.EndOffset())
	}
	crashed := fsys.Crash(keepNone) // then the OS crashes too
	if err := l2.Sync(); err != nil {
		t.Fatal(err)
	}
	l2.closeUnclean()
	l3 := mustOpen(t, dir, Options{FS: crashed, SyncPolicy: SyncNever})
	got := readAll(t, l3)
	checkBatches(t, got, want[:len(got)])
	l3.Close()
	// After Sync the whole tail survives any crash.
	l4 := mustOpen(t, dir, Options{FS: fsys.Crash(keepNone), SyncPolicy: SyncNever})
	defer l4.Close()
	checkBatches(t, readAll(t, l4), want)
}
