package log

import (
	"bytes"
	"path/filepath"
	"testing"
)

func validSegmentBytes(n int) []byte {
	var out []byte
	off := int64(0)
	for i := 0; i < n; i++ {
		b := makeBatch(i%3+1, 40, int64(i*10), byte(i))
		putInt64(b, off)
		off += int64(i%3 + 1)
		out = append(out, b...)
	}
	return out
}

// FuzzOpenCorruptSegment writes arbitrary bytes as a log's only segment (and
// arbitrary index files, optionally behind a clean-shutdown marker) and opens it:
// Open must fail with an error or recover a valid prefix; it must never panic.
func FuzzOpenCorruptSegment(f *testing.F) {
	valid := validSegmentBytes(6)
	f.Add(valid, []byte{}, []byte{}, false)
	f.Add(valid[:len(valid)-7], []byte{}, []byte{}, false)
	f.Add(append(append([]byte{}, valid...), make([]byte, 100)...), []byte{}, []byte{}, false)
	f.Add(valid, appendOffsetEntries(nil, []offsetEntry{{1, 101}, {4, 300}}), appendTimeEntries(nil, []timeEntry{{0, 1}, {20, 4}}), true)
	f.Add([]byte("hello, not a log"), []byte{1, 2, 3}, []byte{}, true)
	f.Fuzz(fuzzOpenBody)
}

func fuzzOpenBody(t *testing.T, seg, idx, tidx []byte, clean bool) {
	{
		fsys := NewMemFS()
		dir := "/fuzz/log"
		if err := fsys.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		write := func(name string, b []byte) {
			if err := fsys.WriteFile(filepath.Join(dir, name), b); err != nil {
				t.Fatal(err)
			}
		}
		write(segmentName(0, ".log"), seg)
		write(segmentName(0, ".index"), idx)
		write(segmentName(0, ".timeindex"), tidx)
		if clean {
			end := int64(len(seg) / 50) // arbitrary: the marker is trusted only if it matches the files
			write(cleanShutdownFile, encodeCleanShutdown(cleanShutdown{segSize: int64(len(seg)), end: end, segMaxTS: -1, maxTS: -1, maxTSOf: -1}))
		}
		l, err := Open(dir, Options{FS: fsys, IndexIntervalBytes: 64})
		if err != nil {
			return
		}
		defer l.Close()
		if l.Size() > int64(len(seg)) {
			t.Fatalf("size %d grew beyond the %d bytes given", l.Size(), len(seg))
		}
		for off := l.StartOffset(); off <= l.HighWatermark() && off < l.StartOffset()+50; off++ {
			r, err := l.Read(off, 100)
			if err != nil {
				continue
			}
			data, err := r.AppendTo(nil)
			r.Release()
			if err == nil && !clean {
				// Without a marker everything was CRC-checked: whole valid batches.
				if _, err := validateBatches(data); len(data) > 0 && err != nil {
					t.Fatalf("read at %d returned invalid batches: %v", off, err)
				}
			}
		}
		if !clean && !bytes.Equal(seg[:l.Size()], mustRead(t, fsys, filepath.Join(dir, segmentName(0, ".log")))) {
			t.Fatal("recovered segment is not a prefix of the given bytes")
		}
		_, _ = l.OffsetForTimestamp(5)
		if _, err := l.Append(makeBatch(1, 3, 1, 1)); err != nil {
			t.Fatalf("append after recovery: %v", err)
		}
	}
}

func mustRead(t *testing.T, fsys *MemFS, name string) []byte {
	b, err := fsys.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzDecoders feeds arbitrary bytes to every on-disk decoder: no panics, and
// whatever decodes re-encodes to the same bytes.
func FuzzDecoders(f *testing.F) {
	f.Add(validSegmentBytes(2))
	f.Add(appendOffsetEntries(nil, []offsetEntry{{1, 10}, {5, 90}}))
	f.Add(appendTimeEntries(nil, []timeEntry{{-1, 2}, {7, 9}}))
	f.Add(encodeStartOffset(42))
	f.Add(encodeCleanShutdown(cleanShutdown{1, 2, 3, 4, 5, 6}))
	f.Add(encodeRecoveryPoint(durablePoint{seg: &segment{base: 7}, pos: 100, offset: 9, nIdx: 1, nTidx: 1, segMaxTS: 3, maxTS: 3, maxTSOf: 8}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if es, err := decodeOffsetIndex(b, 1<<31); err == nil && !bytes.Equal(appendOffsetEntries(nil, es), b) {
			t.Fatal("offset index does not round-trip")
		}
		if es, err := decodeTimeIndex(b); err == nil && !bytes.Equal(appendTimeEntries(nil, es), b) {
			t.Fatal("time index does not round-trip")
		}
		if v, err := decodeStartOffset(b); err == nil && !bytes.Equal(encodeStartOffset(v), b) {
			t.Fatal("start offset does not round-trip")
		}
		if c, err := decodeCleanShutdown(b); err == nil && !bytes.Equal(encodeCleanShutdown(c), b) {
			t.Fatal("clean-shutdown marker does not round-trip")
		}
		if rp, err := decodeRecoveryPoint(b); err == nil {
			dp := durablePoint{seg: &segment{base: rp.segBase}, pos: rp.pos, offset: rp.offset, nIdx: rp.nIdx, nTidx: rp.nTidx,
				segMaxTS: rp.segMaxTS, maxTS: rp.maxTS, maxTSOf: rp.maxTSOf}
			if !bytes.Equal(encodeRecoveryPoint(dp), b) {
				t.Fatal("recovery point does not round-trip")
			}
		}
		if n, err := validateBatches(b); err == nil {
			total := 0
			for p := 0; p < len(b); n-- {
				info, err := parseBatchPrefix(b[p:])
				if err != nil {
					t.Fatalf("validated batch does not parse: %v", err)
				}
				p += int(info.size)
				total = p
			}
			if n != 0 || total != len(b) {
				t.Fatal("batch count or length mismatch")
			}
		}
	})
}
