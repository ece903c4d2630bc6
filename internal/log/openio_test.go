package log

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// countingFS records how many bytes are read from each file.
type countingFS struct {
	*MemFS
	mu    sync.Mutex
	reads map[string]int
}

type countingFile struct {
	File
	fs *countingFS
}

func (c *countingFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := c.MemFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return countingFile{f, c}, nil
}

func (f countingFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.File.ReadAt(p, off)
	f.fs.mu.Lock()
	f.fs.reads[filepath.Base(f.Name())] += n
	f.fs.mu.Unlock()
	return n, err
}

func (c *countingFS) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.reads
	c.reads = map[string]int{}
	return r
}

// TestOpenReadsOnlyTheTail: opening touches no data or index of rolled segments,
// after a clean close and after a crash; what it reads is bounded by the tail.
func TestOpenReadsOnlyTheTail(t *testing.T) {
	t.Parallel()
	c := &countingFS{MemFS: NewMemFS(), reads: map[string]int{}}
	dir := "/d/log"
	opts := Options{FS: c, SegmentBytesMax: 10_000, IndexIntervalBytes: 500}
	l := mustOpen(t, dir, opts)
	appendN(t, l, 200, 2, 200, constTS(0)) // 461-byte batches, ~10 segments
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	segs := segmentFiles(t, c, dir)
	active := segs[len(segs)-1]
	activeBase := active[:20]
	rolledRead := func(reads map[string]int) int {
		n := 0
		for name, bytes := range reads {
			if len(name) > 20 && name[:20] != activeBase && (filepath.Ext(name) == ".log" || filepath.Ext(name) == ".index" || filepath.Ext(name) == ".timeindex") {
				n += bytes
			}
		}
		return n
	}
	c.take()
	l = mustOpen(t, dir, opts)
	reads := c.take()
	if n := rolledRead(reads); n != 0 {
		t.Fatalf("clean open read %d bytes of rolled segments: %v", n, reads)
	}
	if reads[active] > batchPrefixReadSize {
		t.Fatalf("clean open read %d bytes of the active segment", reads[active])
	}
	appendN(t, l, 5, 2, 200, constTS(0))
	segs = segmentFiles(t, c, dir) // the appends may have rolled (by age: their timestamps are from 1970)
	active = segs[len(segs)-1]
	activeBase = active[:20]
	l.closeUnclean()
	c.take()
	l = mustOpen(t, dir, opts)
	defer l.Close()
	reads = c.take()
	if n := rolledRead(reads); n != 0 {
		t.Fatalf("unclean open read %d bytes of rolled segments: %v", n, reads)
	}
	if reads[active] == 0 {
		t.Fatalf("unclean open did not scan the active segment's tail: %v", reads)
	}
	if len(readAll(t, l)) != 205 {
		t.Fatal("batches missing")
	}
}
