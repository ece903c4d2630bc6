package stream

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/yardmq/yard/internal/catalog"
	"github.com/yardmq/yard/internal/datadir"
	"github.com/yardmq/yard/internal/log"
)

// fakeReplica leads (or not) a group whose log is a slice: Propose applies at once.
type fakeReplica struct {
	p       *Partition
	leader  uint64
	term    uint64 // 0: 3
	entries [][]byte
}

func (r *fakeReplica) Propose(_ context.Context, cmd []byte) (any, error) {
	r.entries = append(r.entries, append([]byte(nil), cmd...))
	return r.p.ApplyReplicated(uint64(len(r.entries)+1), r.Term(), cmd)
}
func (r *fakeReplica) Start(cmd []byte) ReplicaProposal {
	v, err := r.Propose(context.Background(), cmd)
	return doneProposal{v, err}
}
func (r *fakeReplica) Leader() uint64    { return r.leader }
func (r *fakeReplica) Term() uint64      { return cmp.Or(r.term, 3) }
func (r *fakeReplica) Voters() []uint64  { return []uint64{1, 2, 3} }
func (r *fakeReplica) InSync() []uint64  { return []uint64{1, 2} }
func (r *fakeReplica) Self() uint64      { return 1 }
func (r *fakeReplica) LeaderReady() bool { return r.leader == 1 }

// doneProposal is a proposal whose result is known.
type doneProposal struct {
	v   any
	err error
}

func (p doneProposal) Wait(context.Context) (any, error) { return p.v, p.err }

func openReplicaManager(t *testing.T, dir string) *Manager {
	t.Helper()
	cat, err := catalog.Open(datadir.New(dir).Catalog())
	if err != nil {
		t.Fatal(err)
	}
	m, err := Open(Config{Layout: datadir.New(dir), SyncPolicy: log.SyncAlways, ReplicaCheckpointEntries: 4}, cat)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestReplicaReplayAfterRestart: a restarted member cuts its log back to its last checkpoint
// and re-applies the Raft entries after it; the log ends as it was, no batch twice.
func TestReplicaReplayAfterRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	m := openReplicaManager(t, dir)
	tp, err := m.CreateTopic("r", 1, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	p := tp.Partition(0)
	r := &fakeReplica{p: p, leader: 1}
	p.SetReplica(r)
	// An idempotent producer: a retried batch is a duplicate on every member alike.
	for seq := int32(0); seq < 10; seq++ {
		if _, err := p.Append(batch(7, 0, seq*2, 2, 40)); err != nil {
			t.Fatal(err)
		}
	}
	res, err := p.Append(batch(7, 0, 18, 2, 40))
	if err != nil || !res.Duplicate {
		t.Fatalf("retry: %+v %v", res, err)
	}
	end := p.log.EndOffset()
	if end != 20 {
		t.Fatalf("end %d, want 20", end)
	}
	// The leader epoch stamped is the group's term.
	if b, _, err := p.readBatchAt(0); err != nil || int32(binary.BigEndian.Uint32(b[12:])) != 3 {
		t.Fatalf("leader epoch of the first batch: %v", err)
	}
	m.Close()

	m = openReplicaManager(t, dir)
	defer m.Close()
	tp, _ = m.Topic("r")
	p = tp.Partition(0)
	applied, err := p.PrepareReplica()
	if err != nil {
		t.Fatal(err)
	}
	if applied != 9 || p.log.EndOffset() != 16 { // checkpoints every 4 entries: after entry index 9 (8 batches)
		t.Fatalf("prepared at index %d, log end %d; want 9 and 16", applied, p.log.EndOffset())
	}
	for i := applied - 1; i < uint64(len(r.entries)); i++ { // entries r.entries[i] has index i+2
		if _, err := p.ApplyReplicated(i+2, 3, r.entries[i]); err != nil {
			t.Fatal(err)
		}
	}
	if got := p.log.EndOffset(); got != end {
		t.Fatalf("after replay: end %d, want %d", got, end)
	}
	// Not the leader: refused before anything is proposed.
	p.SetReplica(&fakeReplica{p: p, leader: 2})
	if _, err := p.Append(batch(-1, -1, -1, 1, 10)); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("append on a follower: %v", err)
	}
}

// gatedSyncFS holds every fsync of a segment file until its gate opens, counting them.
type gatedSyncFS struct {
	log.FS
	gate  chan struct{}
	syncs atomic.Int32
}

func (g *gatedSyncFS) OpenFile(name string, flag int, perm os.FileMode) (log.File, error) {
	f, err := g.FS.OpenFile(name, flag, perm)
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return gatedSyncFile{f, g}, nil
}

type gatedSyncFile struct {
	log.File
	g *gatedSyncFS
}

func (f gatedSyncFile) Sync() error {
	f.g.syncs.Add(1)
	<-f.g.gate
	return f.File.Sync()
}

// A replicated partition's log does not fsync per batch: what it holds was committed
// (fsynced in the Raft WALs) before it was applied, so readers see it at once, without an
// fsync of the log; a checkpoint still fsyncs the log before recording how far it holds the
// group's entries.
func TestReplicatedLogNoFsyncPerBatch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fsys := &gatedSyncFS{FS: log.OSFS{}, gate: make(chan struct{})}
	cat, err := catalog.Open(datadir.New(dir).Catalog())
	if err != nil {
		t.Fatal(err)
	}
	m, err := Open(Config{Layout: datadir.New(dir), SyncPolicy: log.SyncAlways, FS: fsys}, cat)
	if err != nil {
		t.Fatal(err)
	}
	opened := false
	open := func() {
		if !opened {
			opened = true
			close(fsys.gate)
		}
	}
	defer m.Close()
	defer open()
	tp, err := m.CreateTopic("r", 1, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	p := tp.Partition(0)
	p.SetReplica(&fakeReplica{p: p, leader: 1})
	for seq := int32(0); seq < 3; seq++ {
		if _, err := p.Append(batch(7, 0, seq*2, 2, 40)); err != nil {
			t.Fatal(err)
		}
	}
	if hw, end := p.HighWatermark(), p.EndOffset(); hw != 6 || end != 6 {
		t.Fatalf("high watermark %d, end %d after three committed batches; want 6 and 6 (no fsync of the log awaited)", hw, end)
	}
	if n := fsys.syncs.Load(); n != 0 {
		t.Fatalf("%d fsyncs of the log for committed batches, want none", n)
	}
	open()
	if _, err := p.SnapshotReplica(); err != nil { // a checkpoint
		t.Fatal(err)
	}
	if fsys.syncs.Load() == 0 {
		t.Fatal("a checkpoint did not fsync the log")
	}
}
