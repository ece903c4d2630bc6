package log

import (
	"testing"
)

// A log opens on a full disk, after a crash (recovery wants to write a recovery point) and
// new (its first one): reads are served, appends fail with ENOSPC until space is back, then
// work.
func TestOpenOnFullDisk(t *testing.T) {
	t.Parallel()
	mem := NewMemFS()
	dir := "/d/log"
	l := mustOpen(t, dir, Options{FS: mem, SyncPolicy: SyncAlways})
	defer l.Close()
	want := appendN(t, l, 3, 2, 100, constTS(0))
	full := NewFullFS(mem.Crash(keepAll))
	full.SetFull(true)
	l2 := mustOpen(t, dir, Options{FS: full, SyncPolicy: SyncAlways})
	defer l2.Close()
	checkBatches(t, readAll(t, l2), want)
	if _, err := l2.Append(makeBatch(2, 100, 1, 9)); !IsNoSpace(err) {
		t.Fatalf("append on a full disk: %v, want ENOSPC", err)
	}
	l3 := mustOpen(t, "/d/new", Options{FS: full, SyncPolicy: SyncAlways})
	defer l3.Close()
	full.SetFull(false)
	more := appendN(t, l2, 1, 2, 100, constTS(0))
	checkBatches(t, readAll(t, l2), append(want, more...))
	appendN(t, l3, 1, 2, 100, constTS(0))
}

// A segment roll on a full disk (its index files and the recovery point cannot be written)
// does not fail the log as a failed fsync does: appends work again once space is back.
func TestRollOnFullDiskIsNotFatal(t *testing.T) {
	t.Parallel()
	full := NewFullFS(NewMemFS())
	l := mustOpen(t, "/d/log", Options{FS: full, SyncPolicy: SyncAlways, SegmentBytesMax: 1000, IndexIntervalBytes: 1})
	defer l.Close()
	want := appendN(t, l, 3, 2, 100, constTS(0)) // 3 batches of ~300 bytes: the next one rolls
	full.SetFull(true)
	if _, err := l.Append(makeBatch(2, 100, 1, 9)); !IsNoSpace(err) {
		t.Fatalf("append on a full disk: %v, want ENOSPC", err)
	}
	if err := l.Sync(); err != nil { // the round that syncs the rolled segment
		t.Fatalf("sync after a roll on a full disk: %v", err)
	}
	full.SetFull(false)
	more := appendN(t, l, 2, 2, 100, constTS(0))
	checkBatches(t, readAll(t, l), append(want, more...))
}

// A log closes on a full disk without error (it cannot write its clean-shutdown marker; the
// next open recovers) and loses nothing.
func TestCloseOnFullDisk(t *testing.T) {
	t.Parallel()
	full := NewFullFS(NewMemFS())
	l := mustOpen(t, "/d/log", Options{FS: full, SyncPolicy: SyncAlways})
	want := appendN(t, l, 3, 2, 100, constTS(0))
	full.SetFull(true)
	if err := l.Close(); err != nil {
		t.Fatalf("close on a full disk: %v", err)
	}
	l2 := mustOpen(t, "/d/log", Options{FS: full, SyncPolicy: SyncAlways})
	defer l2.Close()
	checkBatches(t, readAll(t, l2), want)
}
