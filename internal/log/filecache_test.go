package log

import (
	"fmt"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

// TestFileCacheManyLogs: many logs of several segments each, sharing a cache of three files,
// appended to and read concurrently, keep their data; the cache stays at its bound once
// nothing is in use, and reopening the logs through it finds everything again.
func TestFileCacheManyLogs(t *testing.T) {
	t.Parallel()
	for _, f := range fsFactories[:2] {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			fsys, root := f.make(t)
			const logs, rounds, bound = 24, 12, 3
			cache := NewFileCache(bound)
			opts := Options{FS: fsys, FileCache: cache, SegmentBytesMax: 1500, IndexIntervalBytes: 300}
			ls := make([]*Log, logs)
			for i := range ls {
				ls[i] = mustOpen(t, filepath.Join(root, fmt.Sprint(i)), opts)
			}
			want := make([][][]byte, logs)
			var wg sync.WaitGroup
			for i, l := range ls {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for r := range rounds {
						b := makeBatch(2, 150, int64(1000+r), byte(i*rounds+r))
						if _, err := l.Append(b); err != nil {
							t.Errorf("log %d: append: %v", i, err)
							return
						}
						want[i] = append(want[i], b)
						rr, err := l.Read(0, 1<<20) // keeps files cycling
						if err != nil {
							t.Errorf("log %d: read: %v", i, err)
							return
						}
						rr.Release()
					}
				}()
			}
			wg.Wait()
			for i, l := range ls {
				if n := len(l.segs); n < 3 {
					t.Fatalf("log %d has %d segments, want several", i, n)
				}
				checkBatches(t, readAll(t, l), want[i])
			}
			open, opened, evicted := cache.Stats()
			if open > bound || evicted == 0 || opened <= bound {
				t.Fatalf("cache: %d open (bound %d), %d opened, %d evicted", open, bound, opened, evicted)
			}
			for _, l := range ls {
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
			}
			if open, _, _ := cache.Stats(); open != 0 {
				t.Fatalf("%d files open after every log closed", open)
			}
			for i := range ls {
				l := mustOpen(t, filepath.Join(root, fmt.Sprint(i)), opts)
				checkBatches(t, readAll(t, l), want[i])
				l.Close()
			}
		})
	}
}

// TestFileCachePinsReadRanges: a file handed out in a ReadResult stays open however many
// other files the cache opens, until Release (MemFS fails reads of a closed file).
func TestFileCachePinsReadRanges(t *testing.T) {
	t.Parallel()
	fsys := NewMemFS()
	cache := NewFileCache(1)
	opts := Options{FS: fsys, FileCache: cache}
	a := mustOpen(t, "/d/a", opts)
	defer a.Close()
	want := appendN(t, a, 3, 2, 100, constTS(0))
	r, err := a.Read(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		o := mustOpen(t, fmt.Sprintf("/d/o%d", i), opts)
		appendN(t, o, 2, 2, 100, constTS(0))
		defer o.Close()
	}
	if open, _, evicted := cache.Stats(); open != 1 || evicted < 8 {
		t.Fatalf("%d files open, %d closed; want only the pinned one open, the others closed after use", open, evicted)
	}
	got, err := r.AppendTo(nil)
	if err != nil {
		t.Fatalf("reading a pinned range after other logs filled the cache: %v", err)
	}
	checkBatches(t, splitBatches(t, got), want)
	r.Release()
	if open, _, _ := cache.Stats(); open > 1 {
		t.Fatalf("%d files open after Release, want at most 1", open)
	}
	checkBatches(t, readAll(t, a), want)
}

// TestFileCacheEvictedFileStaysDurable: data written through a descriptor that the cache
// closed before any fsync is made durable by the log's next fsync (through a new one), and
// a failing fsync through the new descriptor fails the log as it would have through the old.
func TestFileCacheEvictedFileStaysDurable(t *testing.T) {
	t.Parallel()
	fsys := NewMemFS()
	cache := NewFileCache(1)
	opts := Options{FS: fsys, FileCache: cache, SyncPolicy: SyncNever}
	a := mustOpen(t, "/d/a", opts)
	b := mustOpen(t, "/d/b", opts)
	defer b.Close()
	want := appendN(t, a, 3, 2, 100, constTS(0))
	_, _, evictedBefore := cache.Stats()
	appendN(t, b, 1, 2, 100, constTS(0)) // closes a's file
	if _, _, evicted := cache.Stats(); evicted == evictedBefore {
		t.Fatal("the cache closed nothing")
	}
	if err := a.Sync(); err != nil {
		t.Fatal(err)
	}
	l := mustOpen(t, "/d/a", Options{FS: fsys.Crash(keepNone)})
	checkBatches(t, readAll(t, l), want)
	l.Close()

	more := appendN(t, a, 2, 2, 100, constTS(0))
	appendN(t, b, 1, 2, 100, constTS(0)) // closes a's file again
	fsys.FailNextSync(syscall.EIO)
	if err := a.Sync(); err == nil {
		t.Fatal("Sync succeeded through a failing fsync")
	}
	if _, err := a.Append(makeBatch(1, 10, 0, 1)); err == nil {
		t.Fatal("append after a failed fsync succeeded")
	}
	a.Close()
	l = mustOpen(t, "/d/a", Options{FS: fsys.Crash(keepAll)})
	defer l.Close()
	got := readAll(t, l)
	if len(got) > len(want) {
		t.Fatalf("%d batches survived, of which %d after the failed fsync (%d appended then)",
			len(got), len(got)-len(want), len(more))
	}
	checkBatches(t, got, want)
}

// splitBatches splits concatenated batches.
func splitBatches(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for len(b) > 0 {
		info, err := parseBatchPrefix(b)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b[:info.size])
		b = b[info.size:]
	}
	return out
}
