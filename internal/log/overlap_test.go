package log

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// logGateFS holds the first File.Sync of a segment file (.log) made after hold, until
// release; it counts the segment fsyncs.
type logGateFS struct {
	FS
	mu      sync.Mutex
	armed   bool
	syncs   int
	open    chan struct{}
	blocked chan struct{}
}

func newLogGateFS(fsys FS) *logGateFS {
	return &logGateFS{FS: fsys, open: make(chan struct{}), blocked: make(chan struct{}, 1)}
}

func (g *logGateFS) hold() { g.mu.Lock(); g.armed = true; g.mu.Unlock() }

func (g *logGateFS) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
	default:
		close(g.open)
	}
}

func (g *logGateFS) count() int { g.mu.Lock(); defer g.mu.Unlock(); return g.syncs }

func (g *logGateFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := g.FS.OpenFile(name, flag, perm)
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return logGateFile{f, g}, nil
}

type logGateFile struct {
	File
	g *logGateFS
}

func (f logGateFile) Sync() error {
	f.g.mu.Lock()
	f.g.syncs++
	held := f.g.armed
	f.g.armed = false
	f.g.mu.Unlock()
	if held {
		f.g.blocked <- struct{}{}
		<-f.g.open
	}
	return f.File.Sync()
}

// An append made while a sync round's fsync runs, after the round took its snapshot, gets an
// fsync of its own beside the round instead of waiting for the round to end and then leading
// the next one (a pipelining producer's next requests, other producers' batches). A waiter
// the running round covers waits for it and starts nothing.
func TestWaitDurableOverlapsRunningRound(t *testing.T) {
	t.Parallel()
	g := newLogGateFS(NewMemFS())
	l, err := Open("/data/log", Options{FS: g, SyncPolicy: SyncAlways})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		g.release()
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	g.hold() // the first fsync of a's round, whoever leads it (a waiter or the syncer)
	a, err := l.AppendNoWait(makeBatch(4, 100, 1, 1))
	if err != nil {
		t.Fatal(err)
	}
	first := make(chan error, 1)
	go func() { first <- l.WaitDurable(ctx, a.LastOffset) }()
	<-g.blocked // a round covering a is in its fsync, held

	// Another waiter for a: the running round covers it; it must not fsync again.
	before := g.count()
	again := make(chan error, 1)
	go func() { again <- l.WaitDurable(ctx, a.LastOffset) }()

	b, err := l.AppendNoWait(makeBatch(4, 100, 2, 2))
	if err != nil {
		t.Fatal(err)
	}
	bctx, bcancel := context.WithTimeout(ctx, 20*time.Second)
	defer bcancel()
	if err := l.WaitDurable(bctx, b.LastOffset); err != nil {
		t.Fatalf("an append made while a round's fsync was held was not made durable beside it: %v", err)
	}
	if got := g.count(); got != before+1 {
		t.Errorf("%d segment fsyncs while the round was held, want 1 (the one beside it)", got-before)
	}
	// That fsync covered a too (it covers everything written before it started).
	if err := l.WaitDurable(ctx, a.LastOffset); err != nil {
		t.Fatal(err)
	}
	if hw := l.HighWatermark(); hw <= b.LastOffset {
		t.Fatalf("high watermark %d, want past %d", hw, b.LastOffset)
	}
	g.release()
	for _, ch := range []chan error{first, again} {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
}
