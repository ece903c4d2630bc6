package log

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/yardmq/yard/internal/recordbatch"
)

// makeBatch builds a valid RecordBatch v2 of n records of recBytes opaque bytes
// each, with every timestamp ts and a payload derived from seed.
func makeBatch(n, recBytes int, ts int64, seed byte) []byte {
	b := make([]byte, batchHeaderLen+n*recBytes)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-recordbatch.LogOverhead))
	binary.BigEndian.PutUint32(b[12:], 0) // leader epoch
	b[16] = 2
	binary.BigEndian.PutUint32(b[23:], uint32(n-1))
	binary.BigEndian.PutUint64(b[27:], uint64(ts))
	binary.BigEndian.PutUint64(b[35:], uint64(ts))
	binary.BigEndian.PutUint64(b[43:], ^uint64(0)) // producer id -1
	binary.BigEndian.PutUint16(b[51:], 0xffff)
	binary.BigEndian.PutUint32(b[53:], 0xffffffff)
	binary.BigEndian.PutUint32(b[57:], uint32(n))
	for i := batchHeaderLen; i < len(b); i++ {
		b[i] = seed + byte(i*7)
	}
	binary.BigEndian.PutUint32(b[17:], recordbatch.Checksum(b))
	return b
}

// payloadOf strips the base offset (assigned by the log) for comparisons.
func sameBatch(a, b []byte) bool { return len(a) == len(b) && bytes.Equal(a[8:], b[8:]) }

// fsFactory makes a fresh directory on some FS.
type fsFactory struct {
	name string
	make func(t testing.TB) (FS, string)
}

// The "+cache1" factories run the same tests with every log of the test sharing a file
// cache of one file, so that each use of a segment file may reopen it.
var fsFactories = []fsFactory{
	{"os", func(t testing.TB) (FS, string) { return OSFS{}, filepath.Join(t.TempDir(), "log") }},
	{"mem", func(t testing.TB) (FS, string) { return NewMemFS(), "/data/log" }},
	{"os+cache1", func(t testing.TB) (FS, string) {
		return cacheFS{OSFS{}, NewFileCache(1)}, filepath.Join(t.TempDir(), "log")
	}},
	{"mem+cache1", func(t testing.TB) (FS, string) { return cacheFS{NewMemFS(), NewFileCache(1)}, "/data/log" }},
}

// cacheFS carries a file cache for the logs that a test opens on it (see withCache).
type cacheFS struct {
	FS
	cache *FileCache
}

// withCache moves a cacheFS's cache into the options.
func withCache(o Options) Options {
	if c, ok := o.FS.(cacheFS); ok {
		o.FS, o.FileCache = c.FS, c.cache
	}
	return o
}

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.UnixMilli(1_700_000_000_000)} }
func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// recordingHandler captures log records for assertions.
type recordingHandler struct {
	mu      *sync.Mutex
	records *[]slog.Record
}

func newRecorder() (*slog.Logger, func() []slog.Record) {
	h := recordingHandler{mu: &sync.Mutex{}, records: &[]slog.Record{}}
	return slog.New(h), func() []slog.Record {
		h.mu.Lock()
		defer h.mu.Unlock()
		return append([]slog.Record(nil), *h.records...)
	}
}

func (h recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.records = append(*h.records, r.Clone())
	return nil
}
func (h recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h recordingHandler) WithGroup(string) slog.Handler      { return h }

// recordAttrs returns a record's attributes as strings.
func recordAttrs(r slog.Record) map[string]string {
	m := map[string]string{}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
	return m
}

// readAll reads every batch from start to the high watermark, returning them split.
func readAll(t testing.TB, l *Log) [][]byte {
	t.Helper()
	var out [][]byte
	off := l.StartOffset()
	for off < l.HighWatermark() {
		r, err := l.Read(off, 1<<20)
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		data, err := r.AppendTo(nil)
		r.Release()
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		if len(data) == 0 {
			t.Fatalf("empty read at %d below high watermark %d", off, l.HighWatermark())
		}
		for len(data) > 0 {
			info, err := parseBatchPrefix(data)
			if err != nil {
				t.Fatalf("bad batch read at %d: %v", off, err)
			}
			out = append(out, data[:info.size])
			off = info.lastOffset() + 1
			data = data[info.size:]
		}
	}
	return out
}

func mustOpen(t testing.TB, dir string, o Options) *Log {
	t.Helper()
	l, err := Open(dir, withCache(o))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return l
}

func mustAppend(t testing.TB, l *Log, b []byte) AppendResult {
	t.Helper()
	res, err := l.Append(b)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return res
}
