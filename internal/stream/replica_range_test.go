package stream

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// rangeMember is one member's partition "r"-0 in its own data directory.
type rangeMember struct {
	t   *testing.T
	dir string
	m   *Manager
	p   *Partition
}

func newRangeMember(t *testing.T) *rangeMember {
	t.Helper()
	rm := &rangeMember{t: t, dir: t.TempDir()}
	rm.m = openReplicaManager(t, rm.dir)
	tp, err := rm.m.CreateTopic("r", 1, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	rm.p = tp.Partition(0)
	if _, err := rm.p.PrepareReplica(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rm.m.Close() })
	return rm
}

// reopen closes the member's manager and opens it again, as a restart does.
func (rm *rangeMember) reopen() {
	rm.t.Helper()
	rm.m.Close()
	rm.m = openReplicaManager(rm.t, rm.dir)
	tp, _ := rm.m.Topic("r")
	rm.p = tp.Partition(0)
}

// produceCmd is a replicated produce command of one batch of n records.
func produceCmd(seq int32, n int32) []byte {
	cmd := make([]byte, produceCmdHeaderBytes)
	cmd[0] = produceCmdVersion
	binary.BigEndian.PutUint64(cmd[1:], ^uint64(0))
	return append(cmd, batch(9, 0, seq, n, 60)...)
}

func (rm *rangeMember) apply(index uint64, term uint64, cmd []byte) {
	rm.t.Helper()
	if _, err := rm.p.ApplyReplicated(index, term, cmd); err != nil {
		rm.t.Fatal(err)
	}
}

func (rm *rangeMember) logBytes() []byte {
	rm.t.Helper()
	if err := rm.p.Sync(); err != nil { // up to the end: the high watermark follows fsyncs
		rm.t.Fatal(err)
	}
	var out []byte
	for off := rm.p.StartOffset(); off < rm.p.HighWatermark(); {
		rr, err := rm.p.Read(off, 1<<20)
		if err != nil {
			rm.t.Fatal(err)
		}
		chunk, err := rr.AppendTo(nil)
		rr.Release()
		if err != nil || len(chunk) == 0 {
			rm.t.Fatalf("read at %d: %v", off, err)
		}
		out = append(out, chunk...)
		off = lastBatchEnd(chunk)
	}
	return out
}

// lastBatchEnd is the offset after the last batch of b.
func lastBatchEnd(b []byte) int64 {
	var end int64
	for pos := 0; pos < len(b); {
		base := int64(binary.BigEndian.Uint64(b[pos:]))
		size := int(binary.BigEndian.Uint32(b[pos+8:])) + 12
		delta := int64(binary.BigEndian.Uint32(b[pos+23:]))
		end = base + delta + 1
		pos += size
	}
	return end
}

// fetch runs a range fetch of snap on rm from src, stopping after stopAfter responses (0: all).
func (rm *rangeMember) fetch(src *rangeMember, snap []byte, stopAfter int) (done bool, responses int) {
	rm.t.Helper()
	req, err := rm.p.ReplicaRangeRequest(snap)
	if err != nil {
		rm.t.Fatal(err)
	}
	for {
		resp, err := src.p.ReadReplicaRange(req, 300)
		if err != nil {
			rm.t.Fatal(err)
		}
		next, done, err := rm.p.WriteReplicaRange(snap, resp)
		if err != nil {
			rm.t.Fatal(err)
		}
		responses++
		if done || (stopAfter > 0 && responses == stopAfter) {
			return done, responses
		}
		req = next
	}
}

// A member behind a snapshot fetches the range it lacks in bounded responses, byte for byte
// (offsets, leader epochs), restores the snapshot and applies what follows; a crash in the
// middle of the fetch leaves a log that restarts cleanly and resumes.
func TestReplicaRangeFetch(t *testing.T) {
	t.Parallel()
	l, f := newRangeMember(t), newRangeMember(t)
	idx := uint64(1)
	var seq int32
	for i := range 30 {
		idx++
		cmd := produceCmd(seq, 3)
		seq += 3
		l.apply(idx, uint64(2+i/10), cmd)
		if i < 5 {
			f.apply(idx, uint64(2+i/10), cmd)
		}
	}
	snap, err := l.p.SnapshotReplica()
	if err != nil {
		t.Fatal(err)
	}
	if f.p.HoldsReplicaSnapshot(snap) == nil {
		t.Fatal("a member 25 entries behind holds the snapshot")
	}
	if done, n := f.fetch(l, snap, 3); done || n != 3 {
		t.Fatalf("fetch done after %d responses of at most 300 bytes", n)
	}
	mid := f.p.EndOffset()
	if mid <= 15 {
		t.Fatalf("after 3 responses the log ends at %d", mid)
	}
	f.reopen() // a crash in the middle: what was fetched stays, the fetch resumes
	applied, err := f.p.PrepareReplica()
	if err != nil {
		t.Fatal(err)
	}
	if applied != 6 || f.p.EndOffset() != mid {
		t.Fatalf("restarted at index %d, log end %d; want 6 and %d", applied, f.p.EndOffset(), mid)
	}
	if f.p.HoldsReplicaSnapshot(snap) == nil {
		t.Fatal("a member holding part of the range holds the snapshot")
	}
	if done, _ := f.fetch(l, snap, 0); !done {
		t.Fatal("fetch not done")
	}
	if err := f.p.HoldsReplicaSnapshot(snap); err != nil {
		t.Fatal(err)
	}
	if err := f.p.RestoreReplicaSnapshot(snap); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.logBytes(), l.logBytes()) {
		t.Fatal("the fetched log differs from the leader's")
	}
	cmd := produceCmd(seq, 2)
	l.apply(32, 5, cmd)
	f.apply(32, 5, cmd)
	f.reopen()
	if applied, err := f.p.PrepareReplica(); err != nil || applied != 31 {
		t.Fatalf("restarted at %d, want the snapshot's 31: %v", applied, err)
	}
	f.apply(32, 5, cmd) // replayed from the Raft log
	if !bytes.Equal(f.logBytes(), l.logBytes()) {
		t.Fatal("after a restart the logs differ")
	}
	// The idempotent producer's state came with the range: a retry is a duplicate.
	r := &fakeReplica{p: f.p, leader: 1, entries: make([][]byte, 31)}
	f.p.SetReplica(r)
	res, err := f.p.Append(batch(9, 0, seq, 2, 60))
	if err != nil || !res.Duplicate {
		t.Fatalf("retry of the last batch: %+v %v", res, err)
	}
}

// An entry applied while a fetch is pending (a new leader still had it) wins: the fetched
// range is cut back and the fetch fails; a damaged or non-contiguous response appends nothing.
func TestReplicaRangeSuperseded(t *testing.T) {
	t.Parallel()
	l, f := newRangeMember(t), newRangeMember(t)
	var cmds [][]byte
	for i := range 20 {
		cmds = append(cmds, produceCmd(int32(i*2), 2))
		l.apply(uint64(i+2), 2, cmds[i])
		if i < 4 {
			f.apply(uint64(i+2), 2, cmds[i])
		}
	}
	snap, _ := l.p.SnapshotReplica()
	req, err := f.p.ReplicaRangeRequest(snap)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := l.p.ReadReplicaRange(req, 300)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(resp)
	bad[len(bad)-1] ^= 1
	if _, _, err := f.p.WriteReplicaRange(snap, bad); err == nil || f.p.EndOffset() != 8 {
		t.Fatalf("damaged response: %v, log end %d", err, f.p.EndOffset())
	}
	gap := bytes.Clone(resp)
	binary.BigEndian.PutUint64(gap[rangeRespHeaderBytes:], 9)
	if _, _, err := f.p.WriteReplicaRange(snap, gap); err == nil || f.p.EndOffset() != 8 {
		t.Fatalf("response with a gap: %v, log end %d", err, f.p.EndOffset())
	}
	if _, _, err := f.p.WriteReplicaRange(snap, resp); err != nil || f.p.EndOffset() <= 8 {
		t.Fatalf("response: %v, log end %d", err, f.p.EndOffset())
	}
	f.apply(6, 2, cmds[4])
	if _, _, err := f.p.WriteReplicaRange(snap, resp); err == nil {
		t.Fatal("a superseded fetch went on")
	}
	for i := 5; i < 20; i++ {
		f.apply(uint64(i+2), 2, cmds[i])
	}
	if !bytes.Equal(f.logBytes(), l.logBytes()) {
		t.Fatal("the logs differ")
	}
}

// A serving log whose start moved past the fetching member's end (retention) makes that
// member restart its log empty at the serving log's start, as a Kafka follower does.
func TestReplicaRangeOutOfRange(t *testing.T) {
	t.Parallel()
	l, f := newRangeMember(t), newRangeMember(t)
	for i := range 20 {
		cmd := produceCmd(int32(i*2), 2)
		l.apply(uint64(i+2), 2, cmd)
		if i < 3 {
			f.apply(uint64(i+2), 2, cmd)
		}
	}
	if _, err := l.p.DeleteRecords(20); err != nil {
		t.Fatal(err)
	}
	snap, _ := l.p.SnapshotReplica()
	if done, _ := f.fetch(l, snap, 0); !done {
		t.Fatal("fetch not done")
	}
	if err := f.p.RestoreReplicaSnapshot(snap); err != nil {
		t.Fatal(err)
	}
	if f.p.StartOffset() != 20 || f.p.EndOffset() != 40 {
		t.Fatalf("log [%d, %d), want [20, 40)", f.p.StartOffset(), f.p.EndOffset())
	}
	if !bytes.Equal(f.logBytes(), l.logBytes()) {
		t.Fatal("the logs differ")
	}
	f.reopen()
	if applied, err := f.p.PrepareReplica(); err != nil || applied != 21 || f.p.StartOffset() != 20 || f.p.EndOffset() != 40 {
		t.Fatalf("restarted at %d, log [%d, %d): %v", applied, f.p.StartOffset(), f.p.EndOffset(), err)
	}
}

// A member with an empty log fetches the whole range; one whose fetch restarted its log past
// the snapshot's end (retention deleted beyond it on the serving member) ends empty there, so
// that the entries after the snapshot land at their offsets.
func TestReplicaRangeEmptyMember(t *testing.T) {
	t.Parallel()
	l, f, g := newRangeMember(t), newRangeMember(t), newRangeMember(t)
	for i := range 10 {
		l.apply(uint64(i+2), 2, produceCmd(int32(i*2), 2))
	}
	snap, _ := l.p.SnapshotReplica()
	if done, _ := f.fetch(l, snap, 0); !done {
		t.Fatal("fetch not done")
	}
	if err := f.p.RestoreReplicaSnapshot(snap); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.logBytes(), l.logBytes()) {
		t.Fatal("the logs differ")
	}
	for i := 10; i < 15; i++ {
		l.apply(uint64(i+2), 2, produceCmd(int32(i*2), 2))
	}
	if _, err := l.p.DeleteRecords(26); err != nil {
		t.Fatal(err)
	}
	if done, _ := g.fetch(l, snap, 0); !done { // the snapshot at 20, the serving log from 26
		t.Fatal("fetch not done")
	}
	if err := g.p.RestoreReplicaSnapshot(snap); err != nil {
		t.Fatal(err)
	}
	if g.p.StartOffset() != 20 || g.p.EndOffset() != 20 {
		t.Fatalf("log [%d, %d), want empty at 20", g.p.StartOffset(), g.p.EndOffset())
	}
	g.apply(12, 2, produceCmd(20, 2))
	if g.p.EndOffset() != 22 {
		t.Fatalf("log end %d after the next entry, want 22", g.p.EndOffset())
	}
}
