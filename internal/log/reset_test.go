package log

import (
	"testing"
)

// ResetTo empties the log at an offset beyond, inside or before what it held, durably, and
// appends go on from there, before and after a reopen.
func TestResetTo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	o := Options{SegmentBytesMax: 2000, SyncPolicy: SyncAlways}
	l := mustOpen(t, dir, o)
	for range 20 {
		mustAppend(t, l, makeBatch(2, 100, 1, 1))
	}
	for _, to := range []int64{100, 100, 7, 0, 50} {
		if err := l.ResetTo(to); err != nil {
			t.Fatal(err)
		}
		if s, e, hw := l.StartOffset(), l.EndOffset(), l.HighWatermark(); s != to || e != to || hw != to {
			t.Fatalf("after ResetTo(%d): start %d, end %d, high watermark %d", to, s, e, hw)
		}
		if r := mustAppend(t, l, makeBatch(3, 100, 2, 2)); r.BaseOffset != to || r.LastOffset != to+2 {
			t.Fatalf("append after ResetTo(%d) at %d-%d", to, r.BaseOffset, r.LastOffset)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l = mustOpen(t, dir, o)
		if s, e := l.StartOffset(), l.EndOffset(); s != to || e != to+3 {
			t.Fatalf("reopened after ResetTo(%d): start %d, end %d", to, s, e)
		}
		rr, err := l.Read(to, 1<<20)
		if err != nil || rr.Bytes == 0 {
			t.Fatalf("read at %d after ResetTo: %v", to, err)
		}
		rr.Release()
	}
	l.Close()
}
