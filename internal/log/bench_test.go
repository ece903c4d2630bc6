package log

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/yardmq/yard/internal/platform"
)

// Benchmarks use 16 KiB batches of 16 records of 1 KiB, on the real file system
// (b.TempDir is on the same disk as the repository on the development machines;
// check with df if yours mounts /tmp as tmpfs, which would make fsync free).
const (
	benchRecords   = 16
	benchRecordLen = 1024
	benchSegment   = 256 << 20
)

func benchBatch() []byte { return makeBatch(benchRecords, benchRecordLen, time.Now().UnixMilli(), 1) }

func BenchmarkAppend(b *testing.B) {
	b.Run("never", func(b *testing.B) { benchAppend(b, SyncNever, 1) })
	for _, n := range []int{1, 8, 64} {
		b.Run("always-"+strconv.Itoa(n), func(b *testing.B) { benchAppend(b, SyncAlways, n) })
	}
}

func benchAppend(b *testing.B, policy SyncPolicy, appenders int) {
	l, err := Open(filepath.Join(b.TempDir(), "log"), Options{SyncPolicy: policy, SegmentBytesMax: benchSegment})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.SetBytes(int64(len(benchBatch())))
	b.ReportAllocs()
	var left atomic.Int64
	left.Store(int64(b.N))
	var wg sync.WaitGroup
	errs := make(chan error, appenders)
	b.ResetTimer()
	for range appenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			batch := benchBatch()
			for left.Add(-1) >= 0 {
				if _, err := l.Append(batch); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// BenchmarkRawWrite is the baseline: sequential write(2) of the same 16 KiB batches.
func BenchmarkRawWrite(b *testing.B) { benchRaw(b, 0) }

// BenchmarkRawWriteFsync is write(2) + fsync(2) per batch.
func BenchmarkRawWriteFsync(b *testing.B) { benchRaw(b, 1) }

// BenchmarkRawWriteFsyncEvery64 fsyncs after every 64 batches (1 MiB): the best a
// perfect group commit of 64 appenders could do on this disk.
func BenchmarkRawWriteFsyncEvery64(b *testing.B) { benchRaw(b, 64) }

// BenchmarkRawWriteThenFsync is plain sequential write(2) of every batch and one fsync(2)
// at the end, inside the timer: the disk's sustained sequential bandwidth, the honest
// ceiling for any durable append. (BenchmarkRawWrite alone mostly measures the page cache.)
func BenchmarkRawWriteThenFsync(b *testing.B) { benchRaw(b, -1) }

// benchRaw writes b.N batches; fsyncEvery > 0 fsyncs after every fsyncEvery batches, -1
// once at the end (timed), 0 never.
func benchRaw(b *testing.B, fsyncEvery int) {
	f, err := os.Create(filepath.Join(b.TempDir(), "raw"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	batch := benchBatch()
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.Write(batch); err != nil {
			b.Fatal(err)
		}
		if fsyncEvery > 0 && (i+1)%fsyncEvery == 0 {
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
		}
	}
	if fsyncEvery < 0 {
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
}

// buildBenchLog appends size bytes of 16 KiB batches to a new log and closes it.
func buildBenchLog(b *testing.B, dir string, size, segment int64) {
	l, err := Open(dir, Options{SyncPolicy: SyncNever, SegmentBytesMax: segment})
	if err != nil {
		b.Fatal(err)
	}
	batch := benchBatch()
	for written := int64(0); written < size; written += int64(len(batch)) {
		if _, err := l.AppendNoWait(batch); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRead reads a 256 MiB log front to back in 1 MiB fetches, over and over:
// "ranges" only resolves the file ranges (what a sendfile caller needs), "copy"
// also copies the bytes with ReadAt (the sendfile-free path).
func BenchmarkRead(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "log")
	buildBenchLog(b, dir, 256<<20, 64<<20)
	l, err := Open(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.Run("sendfile-tcp", func(b *testing.B) { benchSendfile(b, l) })
	for _, copyBytes := range []bool{false, true} {
		name := "ranges"
		if copyBytes {
			name = "copy"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 2<<20)
			off, total := l.StartOffset(), int64(0)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if off >= l.HighWatermark() {
					off = l.StartOffset()
				}
				r, err := l.Read(off, 1<<20)
				if err != nil {
					b.Fatal(err)
				}
				if copyBytes {
					if buf, err = r.AppendTo(buf[:0]); err != nil {
						b.Fatal(err)
					}
				}
				total += r.Bytes
				last := r.Ranges[len(r.Ranges)-1]
				off = lastOffsetIn(b, last) + 1
				r.Release()
			}
			b.StopTimer()
			b.SetBytes(total / int64(b.N))
		})
	}
}

// lastOffsetIn walks the batch headers of a range to its last offset.
func lastOffsetIn(b *testing.B, rg Range) int64 {
	var hdr [batchPrefixReadSize]byte
	last := int64(-1)
	for p := rg.Pos; p < rg.Pos+rg.Len; {
		info, err := readBatchPrefix(rg.File, p, &hdr)
		if err != nil {
			b.Fatal(err)
		}
		last = info.lastOffset()
		p += info.size
	}
	return last
}

// BenchmarkReopen opens a 1 GiB log of 64 segments of 16 MiB, after a clean Close
// and after a crash (no clean-shutdown marker; the recovery point is current).
func BenchmarkReopen(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "log")
	buildBenchLog(b, dir, 1<<30, 16<<20)
	b.Run("clean", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			l, err := Open(dir, Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if err := l.Close(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
	for _, policy := range []SyncPolicy{SyncNever, SyncAlways} {
		// A crash 16 MiB past the recovery point (written under SyncNever): the tail
		// is scanned; under SyncAlways Open also fsyncs it before readers see it.
		b.Run("unclean-16MiB-tail-"+policy.String(), func(b *testing.B) { benchReopenTail(b, dir, policy) })
	}
	b.Run("unclean", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			l, err := Open(dir, Options{})
			if err != nil {
				b.Fatal(err)
			}
			l.closeUnclean()
			b.StartTimer()
			if l, err = Open(dir, Options{}); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			l.closeUnclean()
			b.StartTimer()
		}
	})
}

func benchReopenTail(b *testing.B, dir string, policy SyncPolicy) {
	b.ReportAllocs()
	batch := benchBatch()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		l, err := Open(dir, Options{SyncPolicy: SyncNever})
		if err != nil {
			b.Fatal(err)
		}
		end := l.EndOffset()
		for n := 0; n < 1000; n++ { // ~16 MiB, below the checkpoint interval
			if _, err := l.AppendNoWait(batch); err != nil {
				b.Fatal(err)
			}
		}
		l.closeUnclean()
		b.StartTimer()
		if l, err = Open(dir, Options{SyncPolicy: policy}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := l.TruncateTo(end); err != nil {
			b.Fatal(err)
		}
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// benchSendfile serves 1 MiB reads with sendfile(2) to a loopback TCP connection
// whose other end discards the bytes: the Kafka fetch path without the protocol.
func benchSendfile(b *testing.B, l *Log) {
	if !platform.SendfileSupported {
		b.Skip("no sendfile on this system")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, c)
		c.Close()
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	raw := conn.(*net.TCPConn)
	b.ReportAllocs()
	off, total := l.StartOffset(), int64(0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if off >= l.HighWatermark() {
			off = l.StartOffset()
		}
		r, err := l.Read(off, 1<<20)
		if err != nil {
			b.Fatal(err)
		}
		for _, rg := range r.Ranges {
			if err := sendfileAll(raw, rg); err != nil {
				b.Fatal(err)
			}
		}
		total += r.Bytes
		off = lastOffsetIn(b, r.Ranges[len(r.Ranges)-1]) + 1
		r.Release()
	}
	b.StopTimer()
	b.SetBytes(total / int64(b.N))
}

func sendfileAll(sc syscall.Conn, rg Range) error {
	return platform.Sendfile(sc, rg.File.(interface{ Fd() uintptr }).Fd(), rg.Pos, rg.Len)
}
