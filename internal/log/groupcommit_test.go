package log

import (
	"context"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// gateFS wraps a MemFS; Sync of .log files blocks while the gate is closed and
// is counted.
type gateFS struct {
	*MemFS
	syncs   atomic.Int32
	blocked chan struct{} // receives when a .log Sync starts waiting
	gate    chan struct{} // closed to let Syncs through
}

type gateFile struct {
	File
	fs *gateFS
}

func (g *gateFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := g.MemFS.OpenFile(name, flag, perm)
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return gateFile{f, g}, nil
}

func (f gateFile) Sync() error {
	f.fs.syncs.Add(1)
	select {
	case f.fs.blocked <- struct{}{}:
	default:
	}
	<-f.fs.gate
	return f.File.Sync()
}

// TestGroupCommitSharesFsync: while one fsync is in flight, 31 appenders write and
// wait; all of them are then acknowledged by at most two further fsyncs.
func TestGroupCommitSharesFsync(t *testing.T) {
	t.Parallel()
	g := &gateFS{MemFS: NewMemFS(), blocked: make(chan struct{}, 1), gate: make(chan struct{})}
	l := mustOpen(t, "/d/log", Options{FS: g})
	g.syncs.Store(0)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	appendOne := func() {
		defer wg.Done()
		_, err := l.Append(makeBatch(1, 100, 1, 1))
		errs <- err
	}
	wg.Add(1)
	go appendOne()
	<-g.blocked // the syncer is inside the first fsync
	for i := 0; i < 31; i++ {
		wg.Add(1)
		go appendOne()
	}
	for l.EndOffset() < 32 { // wait until all 31 have written (a condition, not a sleep)
		runtime.Gosched()
	}
	// Nothing is durable yet, so readers see nothing.
	if hw := l.HighWatermark(); hw != 0 {
		t.Fatalf("high watermark %d before any fsync completed", hw)
	}
	if r, err := l.Read(0, 1<<20); err != nil || r.Bytes != 0 {
		t.Fatalf("read before any fsync completed: %v, %+v", err, r)
	}
	close(g.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// The first fsync, one beside it for the appends written before that one started
	// (overlapSync), and one round for the rest: never one per append.
	if n := g.syncs.Load(); n < 2 || n > 3 {
		t.Fatalf("32 appends took %d fsyncs of the segment, want 2 or 3 (group commit)", n)
	}
	if err := l.WaitDurable(context.Background(), 31); err != nil || l.HighWatermark() != 32 {
		t.Fatalf("hw %d, %v", l.HighWatermark(), err)
	}
	l.Close()
}

// TestConcurrentAppendReadRetention runs appenders, readers, retention and
// DeleteRecordsBefore together (meant for -race) and checks what readers see.
func TestConcurrentAppendReadRetention(t *testing.T) {
	for _, f := range fsFactories {
		for _, policy := range []SyncPolicy{SyncAlways, SyncNever} {
			t.Run(f.name+"/"+policy.String(), func(t *testing.T) {
				t.Parallel()
				fsys, dir := f.make(t)
				concurrentAppendReadRetention(t, fsys, dir, policy)
			})
		}
	}
}

func concurrentAppendReadRetention(t *testing.T, fsys FS, dir string, policy SyncPolicy) {
	l := mustOpen(t, dir, Options{FS: fsys, SyncPolicy: policy, SegmentBytesMax: 4000, RetentionBytes: 20000, RetentionMs: -1, IndexIntervalBytes: 300})
	defer l.Close()
	const appenders, perAppender = 4, 150
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for a := 0; a < appenders; a++ {
		wg.Add(1)
		go func(a int) {
			defer wg.Done()
			for i := 0; i < perAppender; i++ {
				if _, err := l.Append(makeBatch(1+i%3, 100, int64(i), byte(a))); err != nil {
					t.Error(err)
					return
				}
			}
		}(a)
	}
	var bg sync.WaitGroup
	bg.Add(2)
	go func() { // reader: follows the log, tolerating retention
		defer bg.Done()
		off := int64(0)
		for {
			select {
			case <-stop:
				return
			default:
			}
			ch := l.Changed()
			r, err := l.Read(off, 2000)
			if err != nil {
				off = l.StartOffset()
				continue
			}
			data, err := r.AppendTo(nil)
			r.Release()
			if err != nil {
				t.Error(err)
				return
			}
			if len(data) == 0 {
				select {
				case <-ch:
				case <-stop:
					return
				}
				continue
			}
			n, err := validateBatches(data)
			if err != nil || n == 0 {
				t.Errorf("reader got invalid batches at %d: %v", off, err)
				return
			}
			for len(data) > 0 {
				info, _ := parseBatchPrefix(data)
				if info.lastOffset() < off {
					t.Errorf("read at %d returned batch %d..%d", off, info.baseOffset, info.lastOffset())
				}
				off = info.lastOffset() + 1
				data = data[info.size:]
			}
		}
	}()
	go func() { // retention
		defer bg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := l.EnforceRetention(); err != nil {
				t.Error(err)
				return
			}
			if hw := l.HighWatermark(); hw > 100 {
				if err := l.DeleteRecordsBefore(hw - 100); err != nil {
					t.Error(err)
					return
				}
			}
			_, _ = l.OffsetForTimestamp(50)
		}
	}()
	wg.Wait()
	close(stop)
	bg.Wait()
	if err := l.EnforceRetention(); err != nil {
		t.Fatal(err)
	}
	if l.Size() > 20000+4000 {
		t.Fatalf("retention did not keep up: %d bytes", l.Size())
	}
	got := readAll(t, l)
	if len(got) == 0 {
		t.Fatal("nothing left")
	}
}
