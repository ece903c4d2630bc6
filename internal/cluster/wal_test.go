package cluster

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

func ents(term, from, to uint64) []*pb.Entry {
	var out []*pb.Entry
	for i := from; i <= to; i++ {
		out = append(out, &pb.Entry{Term: new(term), Index: new(i), Type: pb.EntryNormal.Enum(), Data: []byte{byte(i)}})
	}
	return out
}

func hardState(term, vote, commit uint64) *pb.HardState {
	return &pb.HardState{Term: new(term), Vote: new(vote), Commit: new(commit)}
}

func openTestWAL(t *testing.T, dir string, segBytes int64) (*wal, map[uint64]*recoveredGroup) {
	t.Helper()
	w, rec, err := openWAL(dir, segBytes, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.close() })
	return w, rec
}

func indexes(es []*pb.Entry) []uint64 {
	var out []uint64
	for _, e := range es {
		out = append(out, e.GetIndex())
	}
	return out
}

func TestWALReplayOverwritesSuffix(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w, _ := openTestWAL(t, dir, 1<<20)
	var buf []byte
	buf = appendEntriesRecord(buf, 7, ents(1, 2, 6))
	buf = appendHardStateRecord(buf, 7, hardState(1, 1, 3))
	buf = appendEntriesRecord(buf, 7, ents(2, 5, 5)) // a new leader overwrote 5 and 6
	buf = appendEntriesRecord(buf, 8, ents(1, 2, 2))
	if err := w.write(buf, map[uint64]uint64{7: 6, 8: 2}, true); err != nil {
		t.Fatal(err)
	}
	w.close()
	_, rec := openTestWAL(t, dir, 1<<20)
	g := rec[7]
	if got := indexes(g.ents); len(got) != 4 || got[3] != 5 || g.ents[3].GetTerm() != 2 {
		t.Fatalf("group 7 entries %v", got)
	}
	if g.hs.GetCommit() != 3 || g.hs.GetVote() != 1 {
		t.Fatalf("group 7 hard state %v", g.hs)
	}
	if len(rec[8].ents) != 1 {
		t.Fatalf("group 8: %v", indexes(rec[8].ents))
	}
}

// TestWALTornTail cuts the last record at every byte: recovery keeps the whole records
// before it and the WAL accepts appends again.
func TestWALTornTail(t *testing.T) {
	t.Parallel()
	first := appendEntriesRecord(nil, 1, ents(1, 2, 3))
	second := appendEntriesRecord(nil, 1, ents(1, 4, 4))
	for cut := 1; cut < len(second); cut++ {
		dir := t.TempDir()
		w, _ := openTestWAL(t, dir, 1<<20)
		if err := w.write(append(append([]byte{}, first...), second[:cut]...), nil, true); err != nil {
			t.Fatal(err)
		}
		w.close()
		w, rec := openTestWAL(t, dir, 1<<20)
		if got := indexes(rec[1].ents); len(got) != 2 {
			t.Fatalf("cut %d: recovered %v", cut, got)
		}
		if err := w.write(second, nil, true); err != nil {
			t.Fatal(err)
		}
		w.close()
		_, rec = openTestWAL(t, dir, 1<<20)
		if got := indexes(rec[1].ents); len(got) != 3 {
			t.Fatalf("cut %d: after rewrite %v", cut, got)
		}
	}
}

// TestWALCorruptOldSegment: damage in a segment that is not the last cannot be a torn
// write, so recovery refuses it instead of silently losing entries.
func TestWALCorruptOldSegment(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w, _ := openTestWAL(t, dir, 64)
	if err := w.write(appendEntriesRecord(nil, 1, ents(1, 2, 9)), map[uint64]uint64{1: 9}, true); err != nil {
		t.Fatal(err)
	}
	if !w.full() {
		t.Fatal("segment not full")
	}
	if err := w.roll(appendHardStateRecord(nil, 1, hardState(1, 0, 9))); err != nil {
		t.Fatal(err)
	}
	w.close()
	p := filepath.Join(dir, "00000000000000000001.wal")
	b, _ := os.ReadFile(p)
	b[20] ^= 0xff
	os.WriteFile(p, b, 0o644)
	if _, _, err := openWAL(dir, 64, slog.New(slog.DiscardHandler), nil); !errors.Is(err, ErrCorruptWAL) {
		t.Fatalf("open: %v, want ErrCorruptWAL", err)
	}
}

func TestWALRollAndGC(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w, _ := openTestWAL(t, dir, 64)
	for i := uint64(0); i < 5; i++ {
		from := 2 + i*4
		if err := w.write(appendEntriesRecord(nil, 1, ents(1, from, from+3)), map[uint64]uint64{1: from + 3}, true); err != nil {
			t.Fatal(err)
		}
		if err := w.roll(appendHardStateRecord(nil, 1, hardState(1, 0, from+3))); err != nil {
			t.Fatal(err)
		}
	}
	if len(w.segs) != 6 {
		t.Fatalf("%d segments", len(w.segs))
	}
	if err := w.gc(func(uint64) uint64 { return 9 }); err != nil { // entries 2..9 snapshotted
		t.Fatal(err)
	}
	if len(w.segs) != 4 {
		t.Fatalf("%d segments after gc, want 4", len(w.segs))
	}
	w.close()
	_, rec := openTestWAL(t, dir, 64)
	if got := indexes(rec[1].ents); len(got) != 12 || got[0] != 10 || rec[1].hs.GetCommit() != 21 {
		t.Fatalf("recovered %v %v", got, rec[1].hs)
	}
}

func TestSnapshotFileRoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := pb.EnsureSnapshot(&pb.Snapshot{Data: []byte("state"), Metadata: &pb.SnapshotMetadata{
		Index: new(uint64(42)), Term: new(uint64(3)), ConfState: &pb.ConfState{Voters: []uint64{1, 2, 3}}}})
	if err := os.MkdirAll(filepath.Join(dir, snapDirName), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeSnapshotFile(dir, 9, s); err != nil {
		t.Fatal(err)
	}
	got, err := readSnapshotFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got[9], s) {
		t.Fatalf("read %v, wrote %v", got[9], s)
	}
	b, _ := os.ReadFile(snapPath(dir, 9))
	b[len(b)-1] ^= 1
	os.WriteFile(snapPath(dir, 9), b, 0o644)
	if _, err := readSnapshotFiles(dir); !errors.Is(err, errBadSnapshot) {
		t.Fatalf("damaged snapshot: %v", err)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(appendEntriesRecord(nil, 1, ents(1, 2, 4)))
	f.Add(appendHardStateRecord(nil, 3, hardState(4, 5, 6)))
	f.Add(appendEntriesRecord(nil, 1, nil))
	f.Add(appendRemovedRecord(nil, 7))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, n, err := decodeRecord(b)
		if err != nil {
			return
		}
		if n > len(b) {
			t.Fatalf("consumed %d of %d bytes", n, len(b))
		}
		var again []byte
		switch r.typ {
		case recEntries:
			again = appendEntriesRecord(nil, r.group, r.ents)
		case recHardState:
			again = appendHardStateRecord(nil, r.group, r.hs)
		case recRemoved:
			again = appendRemovedRecord(nil, r.group)
		}
		if !bytes.Equal(again, b[:n]) {
			t.Fatalf("round trip: %x became %x", b[:n], again)
		}
	})
}

func FuzzDecodeSnapshot(f *testing.F) {
	s := pb.EnsureSnapshot(&pb.Snapshot{Data: []byte("x"), Metadata: &pb.SnapshotMetadata{Index: new(uint64(5))}})
	b, _ := encodeSnapshot(s)
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeSnapshot(b)
		if err != nil {
			return
		}
		if _, err := encodeSnapshot(s); err != nil {
			t.Fatal(err)
		}
	})
}

// A group's entries of one round beyond a WAL record's limit (a connection's pipelined
// produce requests may bring up to the uncommitted limit, 64 MiB, at once) go into several
// records, replayed as one run of entries, rather than stopping the node.
func TestWALRoundAboveRecordLimit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w, _ := openTestWAL(t, dir, 256<<20)
	h := &Host{wal: w}
	data := make([]byte, 1<<20) // every entry shares it: 70 MiB of records, 1 MiB of memory
	var es []*pb.Entry
	for i := uint64(2); i < 72; i++ {
		es = append(es, &pb.Entry{Term: new(uint64(1)), Index: new(i), Type: pb.EntryNormal.Enum(), Data: data})
	}
	rd := &raft.Ready{Entries: es, HardState: hardState(1, 1, 1), MustSync: true}
	if err := h.persist([]*Group{{id: 7}}, []*raft.Ready{rd}); err != nil {
		t.Fatal(err)
	}
	w.close()
	_, rec := openTestWAL(t, dir, 256<<20)
	got := indexes(rec[7].ents)
	if len(got) != 70 || got[0] != 2 || got[69] != 71 {
		t.Fatalf("replayed %d entries (%v...), want 2..71", len(got), got[:min(len(got), 3)])
	}
	for _, e := range rec[7].ents {
		if len(e.Data) != len(data) {
			t.Fatalf("entry %d has %d bytes, want %d", e.GetIndex(), len(e.Data), len(data))
		}
	}
}
