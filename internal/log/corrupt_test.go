package log

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCorruption(t *testing.T) {
	tests := []struct {
		name string
		fn   func(t *testing.T, fsys FS, dir string)
	}{
		{"TornTailTruncatedAndLogged", testTornTail},
		{"GarbageTailTruncated", testGarbageTail},
		{"MiddleCorruptionRefused", testMiddleCorruption},
		{"DamagedRecoveryPoint", testDamagedRecoveryPoint},
		{"DamagedStartOffset", testDamagedStartOffset},
		{"DamagedCleanMarker", testDamagedCleanMarker},
		{"UnreadableIndex", testUnreadableIndex},
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

// crashedLog writes n batches and stops without a clean shutdown; the recovery
// point stays at the start of the only segment, so reopening scans every batch.
func crashedLog(t *testing.T, fsys FS, dir string, n int) ([][]byte, []int64) {
	t.Helper()
	l := mustOpen(t, dir, Options{FS: fsys})
	want := appendN(t, l, n, 2, 100, constTS(0))
	l.closeUnclean()
	pos := make([]int64, n)
	for i := 1; i < n; i++ {
		pos[i] = pos[i-1] + int64(len(want[i-1]))
	}
	return want, pos
}

func findRecord(records []slogRecord, msg string) (map[string]string, bool) {
	for _, r := range records {
		if r.msg == msg {
			return r.attrs, true
		}
	}
	return nil, false
}

type slogRecord struct {
	msg   string
	attrs map[string]string
}

func openRecorded(t *testing.T, fsys FS, dir string) (*Log, []slogRecord, error) {
	t.Helper()
	logger, records := newRecorder()
	l, err := Open(dir, withCache(Options{FS: fsys, Logger: logger}))
	var out []slogRecord
	for _, r := range records() {
		out = append(out, slogRecord{r.Message, recordAttrs(r)})
	}
	return l, out, err
}

func testTornTail(t *testing.T, fsys FS, dir string) {
	want, pos := crashedLog(t, fsys, dir, 5)
	seg := filepath.Join(dir, segmentName(0, ".log"))
	damage(t, fsys, seg, func(b []byte) []byte { return b[:len(b)-10] })
	l, records, err := openRecorded(t, fsys, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	checkBatches(t, readAll(t, l), want[:4])
	attrs, ok := findRecord(records, "truncating torn tail")
	if !ok {
		t.Fatalf("no warning logged; records %v", records)
	}
	if attrs["file"] != seg || attrs["position"] != fmt.Sprint(pos[4]) || attrs["bytes_dropped"] != fmt.Sprint(len(want[4])-10) {
		t.Fatalf("warning attributes %v; want file %s position %d bytes_dropped %d", attrs, seg, pos[4], len(want[4])-10)
	}
	if l.EndOffset() != 8 {
		t.Fatalf("end %d", l.EndOffset())
	}
	mustAppend(t, l, makeBatch(1, 1, 1, 1))
}

func testGarbageTail(t *testing.T, fsys FS, dir string) {
	want, _ := crashedLog(t, fsys, dir, 3)
	seg := filepath.Join(dir, segmentName(0, ".log"))
	damage(t, fsys, seg, func(b []byte) []byte { return append(b, make([]byte, 5000)...) })
	l, records, err := openRecorded(t, fsys, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	checkBatches(t, readAll(t, l), want)
	if attrs, ok := findRecord(records, "truncating torn tail"); !ok || attrs["bytes_dropped"] != "5000" {
		t.Fatalf("warning %v %v", attrs, ok)
	}
}

func testMiddleCorruption(t *testing.T, fsys FS, dir string) {
	_, pos := crashedLog(t, fsys, dir, 5)
	seg := filepath.Join(dir, segmentName(0, ".log"))
	damage(t, fsys, seg, func(b []byte) []byte { b[pos[1]+100] ^= 0xff; return b })
	before, _ := readFileAll(fsys, seg)
	_, _, err := openRecorded(t, fsys, dir)
	if !errors.Is(err, ErrCorruptBatch) {
		t.Fatalf("open of a log damaged in the middle: %v", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, seg) || !strings.Contains(msg, fmt.Sprintf("position %d", pos[1])) {
		t.Fatalf("error does not name the file and position %d: %v", pos[1], err)
	}
	after, _ := readFileAll(fsys, seg)
	if len(after) != len(before) {
		t.Fatalf("the damaged segment was truncated from %d to %d bytes", len(before), len(after))
	}
}

func testDamagedRecoveryPoint(t *testing.T, fsys FS, dir string) {
	want, _ := crashedLog(t, fsys, dir, 4)
	damage(t, fsys, filepath.Join(dir, recoveryPointFile), func(b []byte) []byte { b[7] ^= 1; return b })
	l, records, err := openRecorded(t, fsys, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	checkBatches(t, readAll(t, l), want)
	if _, ok := findRecord(records, "ignoring damaged recovery point; scanning every segment"); !ok {
		t.Fatalf("not logged: %v", records)
	}
}

func testDamagedStartOffset(t *testing.T, fsys FS, dir string) {
	l := mustOpen(t, dir, Options{FS: fsys})
	appendN(t, l, 4, 1, 10, constTS(0))
	if err := l.DeleteRecordsBefore(2); err != nil {
		t.Fatal(err)
	}
	l.Close()
	name := filepath.Join(dir, startOffsetFile)
	damage(t, fsys, name, func(b []byte) []byte { b[10] ^= 1; return b })
	_, err := Open(dir, Options{FS: fsys})
	if err == nil || !strings.Contains(err.Error(), name) {
		t.Fatalf("open with a damaged start offset: %v", err)
	}
}

func testDamagedCleanMarker(t *testing.T, fsys FS, dir string) {
	l := mustOpen(t, dir, Options{FS: fsys})
	want := appendN(t, l, 4, 1, 10, constTS(0))
	l.Close()
	damage(t, fsys, filepath.Join(dir, cleanShutdownFile), func(b []byte) []byte { b[20] ^= 1; return b })
	l, records, err := openRecorded(t, fsys, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	checkBatches(t, readAll(t, l), want)
	if _, ok := findRecord(records, "ignoring clean-shutdown marker; recovering"); !ok {
		t.Fatalf("not logged: %v", records)
	}
}

func testUnreadableIndex(t *testing.T, fsys FS, dir string) {
	opts := Options{FS: fsys, SegmentBytesMax: 300}
	l := mustOpen(t, dir, opts)
	appendN(t, l, 4, 1, 200, constTS(0))
	l.Close()
	// A directory where the index should be cannot be read: a clear error, not a rebuild.
	name := filepath.Join(dir, segmentName(0, ".index"))
	if err := fsys.Remove(name); err != nil {
		t.Fatal(err)
	}
	if err := fsys.MkdirAll(name, 0o755); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, dir, opts)
	defer l.Close()
	if _, err := l.Read(0, 100); err == nil || !strings.Contains(err.Error(), name) {
		t.Fatalf("read with an unreadable index: %v", err)
	}
	if _, err := l.Read(2, 100); err != nil {
		t.Fatalf("other segments stay readable: %v", err)
	}
}

var _ = os.O_RDONLY
