package log

import (
	"bytes"
	"context"
	"fmt"
	"syscall"
	"testing"
)

// TestFaultAtEveryStepLosesNothingAcknowledged fails, in turn, every fsync, every write and
// every directory fsync of a fixed workload (appends with group commits of one and of
// several batches, segment rolls with their recovery-point checkpoints and index flushes,
// a log-start checkpoint, a clean close), then cuts the power: every file loses what was
// not fsynced and every directory what was not made durable. Whatever the failed step, the
// log reopens and holds every batch it acknowledged, byte for byte, at its offset, and a
// start offset it acknowledged.
func TestFaultAtEveryStepLosesNothingAcknowledged(t *testing.T) {
	t.Parallel()
	kinds := []struct {
		name string
		arm  func(m *MemFS, n int)
	}{
		{"fsync-EIO", func(m *MemFS, n int) { m.FailSyncAt(n, syscall.EIO) }},
		{"write-EIO", func(m *MemFS, n int) { m.FailWriteAt(n, syscall.EIO) }},
		{"write-ENOSPC", func(m *MemFS, n int) { m.FailWriteAt(n, syscall.ENOSPC) }},
		{"dirsync-EIO", func(m *MemFS, n int) { m.FailSyncDirAt(n, syscall.EIO) }},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			steps := 0
			for n := 0; ; n++ {
				if n > 5000 {
					t.Fatal("the workload never ran out of steps")
				}
				if !faultRun(t, func(m *MemFS) { k.arm(m, n) }, fmt.Sprintf("%s at step %d", k.name, n)) {
					break
				}
				steps++
			}
			t.Logf("failed each of %d steps in turn", steps)
			if steps < 10 {
				t.Fatalf("only %d steps failed in turn: the workload is too small to mean much", steps)
			}
		})
	}
}

// faultRun runs the workload with one armed fault, then checks what a power loss leaves. It
// reports whether the fault fired.
func faultRun(t *testing.T, arm func(*MemFS), what string) bool {
	t.Helper()
	fsys, dir := NewMemFS(), "/d/log"
	one := int64(len(makeBatch(2, 100, 0, 0)))
	l, err := Open(dir, Options{FS: fsys, SegmentBytesMax: 3 * one, IndexIntervalBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	arm(fsys)
	acked := map[int64][]byte{} // base offset -> batch
	ackedStart := int64(0)
	seed := byte(0)
	next := func() []byte { seed++; return makeBatch(2, 100, int64(seed), seed) }
	for round := range 6 {
		// One batch, acknowledged by its own group commit.
		b := next()
		if res, err := l.Append(b); err == nil {
			acked[res.BaseOffset] = b
		}
		// Three batches sharing one group commit.
		var group [][]byte
		var bases []int64
		last := int64(-1)
		for range 3 {
			b := next()
			res, err := l.AppendNoWait(b)
			if err != nil {
				continue
			}
			group, bases, last = append(group, b), append(bases, res.BaseOffset), res.LastOffset
		}
		if last >= 0 && l.WaitDurable(context.Background(), last) == nil {
			for i, b := range group {
				acked[bases[i]] = b
			}
		}
		if round == 3 {
			start := l.HighWatermark() - 4
			if l.DeleteRecordsBefore(start) == nil {
				ackedStart = start
			}
		}
	}
	_ = l.Close()
	fired := fsys.Faults() > 0
	for _, keep := range []struct {
		name string
		fn   func(int) int
	}{{"power loss", keepNone}, {"process crash", keepAll}} {
		after := fsys.Crash(keep.fn)
		l2, err := Open(dir, Options{FS: after})
		if err != nil {
			t.Fatalf("%s, %s: reopen: %v", what, keep.name, err)
		}
		start := l2.StartOffset()
		if start < ackedStart {
			t.Fatalf("%s, %s: log starts at %d, but a start of %d was acknowledged", what, keep.name, start, ackedStart)
		}
		got := map[int64][]byte{}
		for _, b := range readAll(t, l2) {
			info, err := parseBatchPrefix(b)
			if err != nil {
				t.Fatal(err)
			}
			got[info.baseOffset] = b
		}
		for base, b := range acked {
			if base < start {
				continue
			}
			if !bytes.Equal(got[base], b) {
				t.Fatalf("%s, %s: acknowledged batch at offset %d lost (log %d..%d)", what, keep.name, base, start, l2.EndOffset())
			}
		}
		l2.Close()
	}
	return fired
}
