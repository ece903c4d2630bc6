package log

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// cleanLogWithSegments writes n batches of 2 records each (segments of perSeg batches, the
// last one active) and closes the log cleanly, so that reopening reads no segment data.
func cleanLogWithSegments(t *testing.T, fsys FS, dir string, n, perSeg int) (want [][]byte, size int64) {
	t.Helper()
	one := int64(len(makeBatch(2, 100, 0, 0)))
	l := mustOpen(t, dir, Options{FS: fsys, SegmentBytesMax: one * int64(perSeg), IndexIntervalBytes: 1})
	want = appendN(t, l, n, 2, 100, constTS(0))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return want, one
}

// TestReadRefusesCorruptBatchLength: after a clean shutdown a batch's length field is
// damaged (the log does not read data at open). Every read that would frame bytes with it
// fails with ErrCorruptBatch (Kafka: CORRUPT_MESSAGE) and the log says so once, instead of
// handing out misframed bytes that consumers reject or skip as a partial batch, fetching the
// same offset again forever. Reads before the damage still return the batches before it.
func TestReadRefusesCorruptBatchLength(t *testing.T) {
	t.Parallel()
	for _, seg := range []string{"rolled", "active"} {
		for _, delta := range []int32{-1, -60, +1, +300, -1 << 30} {
			t.Run(fmt.Sprintf("%s/%+d", seg, delta), func(t *testing.T) {
				t.Parallel()
				fsys, dir := NewMemFS(), "/d/log"
				const perSeg, bad = 6, 2 // batch 2 of its segment is damaged
				want, one := cleanLogWithSegments(t, fsys, dir, 10, perSeg)
				segBase, first := int64(0), 0
				if seg == "active" {
					segBase, first = 2*perSeg, perSeg
				}
				name := filepath.Join(dir, segmentName(segBase, ".log"))
				damage(t, fsys, name, func(b []byte) []byte {
					at := bad*one + 8
					binary.BigEndian.PutUint32(b[at:], uint32(int32(binary.BigEndian.Uint32(b[at:]))+delta))
					return b
				})
				logger, records := newRecorder()
				l := mustOpen(t, dir, Options{FS: fsys, Logger: logger})
				defer l.Close()
				badOffset := segBase + 2*bad
				for _, off := range []int64{badOffset, badOffset + 1} {
					for _, maxBytes := range []int{1, 1 << 20} {
						for range 3 {
							r, err := l.Read(off, maxBytes)
							if !errors.Is(err, ErrCorruptBatch) {
								got := 0
								if r != nil {
									got = int(r.Bytes)
									r.Release()
								}
								t.Fatalf("read at %d (max %d): %d bytes, err %v; want ErrCorruptBatch", off, maxBytes, got, err)
							}
						}
					}
				}
				n := 0
				for _, r := range records() {
					if r.Message == "corrupt record batch in segment" {
						n++
					}
				}
				if n != 1 {
					t.Fatalf("%d log lines for the corrupt batch, want 1 (rate-limited)", n)
				}
				// A consumer reading on from the segment start gets every batch before the damage
				// (each read's first batch is framed by a checked length), then the error.
				off := segBase
				for i := first; i < first+bad; i++ {
					r, err := l.Read(off, 1<<20)
					if err != nil {
						t.Fatalf("read at %d, before the damage: %v", off, err)
					}
					got, err := r.AppendTo(nil)
					r.Release()
					if err != nil || len(got) < len(want[i]) || !bytes.Equal(got[:len(want[i])], want[i]) {
						t.Fatalf("read at %d: first batch differs from batch %d (err %v)", off, i, err)
					}
					off += 2
				}
				if _, err := l.Read(off, 1<<20); !errors.Is(err, ErrCorruptBatch) {
					t.Fatalf("read at %d, the damaged batch: %v", off, err)
				}
			})
		}
	}
}

// TestReadRebuildsIndexPointingMidBatch: an index entry that points inside a batch (a
// damaged .index file that still decodes) is detected on read; the index is rebuilt from
// the segment, with a log line, and reads return the right batches.
func TestReadRebuildsIndexPointingMidBatch(t *testing.T) {
	t.Parallel()
	for _, seg := range []string{"rolled", "active"} {
		t.Run(seg, func(t *testing.T) {
			t.Parallel()
			fsys, dir := NewMemFS(), "/d/log"
			const perSeg = 6
			want, _ := cleanLogWithSegments(t, fsys, dir, 10, perSeg)
			segBase := int64(0)
			if seg == "active" {
				segBase = 2 * perSeg
			}
			damage(t, fsys, filepath.Join(dir, segmentName(segBase, ".index")), func(b []byte) []byte {
				for i := 1; i < len(b)/offsetEntryLen; i++ { // every entry but the first moves 5 bytes on
					at := i*offsetEntryLen + 4
					binary.BigEndian.PutUint32(b[at:], binary.BigEndian.Uint32(b[at:])+5)
				}
				return b
			})
			logger, records := newRecorder()
			l := mustOpen(t, dir, Options{FS: fsys, Logger: logger})
			defer l.Close()
			for i := range want {
				r, err := l.Read(int64(2*i), 1)
				if err != nil {
					t.Fatalf("read batch %d: %v", i, err)
				}
				got, err := r.AppendTo(nil)
				r.Release()
				if err != nil || !bytes.Equal(got, want[i]) {
					t.Fatalf("read batch %d: %d bytes (err %v), want the batch's %d", i, len(got), err, len(want[i]))
				}
			}
			checkBatches(t, readAll(t, l), want)
			found := false
			for _, r := range records() {
				found = found || strings.HasPrefix(r.Message, "index entry does not point at a batch")
			}
			if !found {
				t.Fatal("no log line about the bad index entry")
			}
		})
	}
}

// TestTruncateIntoSegmentWithMissingIndex: truncating into a rolled segment whose index
// files are gone rebuilds them on the way (TruncateTo holds the log's lock meanwhile).
func TestTruncateIntoSegmentWithMissingIndex(t *testing.T) {
	t.Parallel()
	fsys, dir := NewMemFS(), "/d/log"
	want, _ := cleanLogWithSegments(t, fsys, dir, 10, 6)
	for _, ext := range []string{".index", ".timeindex"} {
		if err := fsys.Remove(filepath.Join(dir, segmentName(0, ext))); err != nil {
			t.Fatal(err)
		}
	}
	l := mustOpen(t, dir, Options{FS: fsys})
	defer l.Close()
	if err := l.TruncateTo(5); err != nil { // inside batch 2 of the rolled segment 0
		t.Fatal(err)
	}
	checkBatches(t, readAll(t, l), want[:2])
}

// TestReadAtTheDurableEdgeIsNoBadIndex: the active segment's index already holds entries for
// batches written but not yet durable (at or past the readable end); a read up to that end
// must not take them for bad entries.
func TestReadAtTheDurableEdgeIsNoBadIndex(t *testing.T) {
	t.Parallel()
	logger, records := newRecorder()
	l := mustOpen(t, "/d/log", Options{FS: NewMemFS(), IndexIntervalBytes: 1, Logger: logger})
	defer l.Close()
	want := appendN(t, l, 3, 2, 100, constTS(0))
	l.syncMu.Lock() // no group commit until the read is done
	if _, err := l.AppendNoWait(makeBatch(2, 100, 0, 9)); err != nil {
		l.syncMu.Unlock()
		t.Fatal(err)
	}
	r, err := l.Read(0, 1<<20)
	l.syncMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.AppendTo(nil)
	r.Release()
	if err != nil || !bytes.Equal(got, bytes.Join(want, nil)) {
		t.Fatalf("read %d bytes (err %v), want the %d durable ones", len(got), err, len(bytes.Join(want, nil)))
	}
	for _, rec := range records() {
		if strings.HasPrefix(rec.Message, "index entry does not point at a batch") {
			t.Fatalf("false alarm: %s", rec.Message)
		}
	}
}
