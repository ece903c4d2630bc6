package log

import (
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// indexGateFS holds every File.Sync of an index file (the first step of writing the recovery
// point) while the gate is closed.
type indexGateFS struct {
	FS
	mu      sync.Mutex
	closed  bool
	open    chan struct{} // closed when the gate opens
	blocked chan struct{} // receives once per Sync that found the gate closed
}

func newIndexGateFS(fsys FS) *indexGateFS {
	return &indexGateFS{FS: fsys, open: make(chan struct{}), blocked: make(chan struct{}, 16)}
}

func (g *indexGateFS) close() { g.mu.Lock(); g.closed = true; g.mu.Unlock() }

func (g *indexGateFS) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		g.closed = false
		close(g.open)
	}
}

func (g *indexGateFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := g.FS.OpenFile(name, flag, perm)
	if err != nil || !strings.HasSuffix(name, ".index") {
		return f, err
	}
	return indexGateFile{f, g}, nil
}

type indexGateFile struct {
	File
	g *indexGateFS
}

func (f indexGateFile) Sync() error {
	f.g.mu.Lock()
	closed := f.g.closed
	f.g.mu.Unlock()
	if closed {
		f.g.blocked <- struct{}{}
		<-f.g.open
	}
	return f.File.Sync()
}

// The periodic recovery point (every recoveryCheckpointBytes of a partition: index files
// flushed and fsynced, the checkpoint file written and fsynced, the directory fsynced) is
// written beside the fsync rounds, not in one: appends made while it is slow are acknowledged
// all the same, and it is written once the file system lets it.
func TestCheckpointDoesNotDelayAcks(t *testing.T) {
	t.Parallel()
	g := newIndexGateFS(NewMemFS())
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
	g.close()
	batch := makeBatch(16, 64<<10, 1, 0) // 1 MiB
	appended := make(chan error)
	go func() {
		defer close(appended)
		for range recoveryCheckpointBytes/len(batch) + 1 {
			if _, err := l.Append(makeBatch(16, 64<<10, 1, 0)); err != nil {
				appended <- err
				return
			}
		}
		<-g.blocked // the checkpoint is due and waits at the gate
		for range 3 {
			if _, err := l.Append(batch); err != nil {
				appended <- err
				return
			}
		}
	}()
	select {
	case err := <-appended:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("appends were not acknowledged while the recovery point was being written")
	}
	l.mu.Lock()
	before := l.lastCP.pos
	l.mu.Unlock()
	g.release()
	// Once the gate opens the checkpoint completes: a further round finds it written.
	for deadline := time.Now().Add(time.Minute); ; {
		l.mu.Lock()
		after := l.lastCP.pos
		l.mu.Unlock()
		if after >= recoveryCheckpointBytes {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("recovery point at %d (was %d) after the gate opened, want at least %d", after, before, recoveryCheckpointBytes)
		}
		time.Sleep(time.Millisecond)
	}
}
