package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/yardmq/yard/internal/log"
)

// A failed WAL write that left part of a record on disk (a full disk writes what fits) is
// cut off before the retry: the records written once space is back follow the last whole
// one, and a reopen replays them all (a torn record left in the middle would make the
// replay stop there and drop what follows).
func TestWALRetriesAfterPartialWrite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	full := log.NewFullFS(nil)
	w, _, err := openWAL(dir, 1<<20, slog.New(slog.DiscardHandler), full)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	if err := w.write(appendEntriesRecord(nil, 7, ents(1, 1, 3)), map[uint64]uint64{7: 3}, true); err != nil {
		t.Fatal(err)
	}
	rec := appendEntriesRecord(nil, 7, ents(1, 4, 6))
	full.SetSpace(int64(len(rec) / 2))
	if err := w.write(rec, map[uint64]uint64{7: 6}, true); !log.IsNoSpace(err) {
		t.Fatalf("write on a full disk: %v, want ENOSPC", err)
	}
	if err := w.write(rec, map[uint64]uint64{7: 6}, true); !log.IsNoSpace(err) {
		t.Fatalf("second write on a full disk: %v, want ENOSPC", err)
	}
	full.SetFull(false)
	if err := w.write(rec, map[uint64]uint64{7: 6}, true); err != nil {
		t.Fatalf("write once space is back: %v", err)
	}
	if err := w.write(appendHardStateRecord(nil, 7, hardState(1, 1, 6)), nil, true); err != nil {
		t.Fatal(err)
	}
	w.close()
	_, got := openTestWAL(t, dir, 1<<20)
	if g := got[7]; g == nil || len(g.ents) != 6 || g.ents[5].GetIndex() != 6 || g.hs.GetCommit() != 6 {
		t.Fatalf("replayed %+v, want entries 1-6 and commit 6", got[7])
	}
}

// A roll whose new segment cannot be written keeps the active segment (and removes the
// partial new one): writes go on in the old segment, and the roll succeeds later.
func TestWALRollOnFullDisk(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	full := log.NewFullFS(nil)
	w, _, err := openWAL(dir, 64, slog.New(slog.DiscardHandler), full)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	if err := w.write(appendEntriesRecord(nil, 7, ents(1, 1, 3)), map[uint64]uint64{7: 3}, true); err != nil {
		t.Fatal(err)
	}
	states := appendHardStateRecord(nil, 7, hardState(1, 1, 3))
	full.SetFull(true)
	if err := w.roll(states); !log.IsNoSpace(err) {
		t.Fatalf("roll on a full disk: %v, want ENOSPC", err)
	}
	if seqs, _ := w.list(); len(seqs) != 1 || len(w.segs) != 1 {
		t.Fatalf("after a failed roll: segments %v (%d tracked), want the first only", seqs, len(w.segs))
	}
	full.SetFull(false)
	if err := w.roll(states); err != nil {
		t.Fatal(err)
	}
	if err := w.write(appendEntriesRecord(nil, 7, ents(1, 4, 4)), map[uint64]uint64{7: 4}, true); err != nil {
		t.Fatal(err)
	}
	w.close()
	_, got := openTestWAL(t, dir, 64)
	if g := got[7]; g == nil || len(g.ents) != 4 || g.hs.GetCommit() != 3 {
		t.Fatalf("replayed %+v, want entries 1-4 and commit 3", got[7])
	}
}

// A follower whose disk fills stalls (it acknowledges nothing it could not write) and
// resumes by itself once space is freed: with the other follower stopped, the leader
// commits with it again, and its WAL replays everything after a restart.
func TestFullDiskFollowerResumes(t *testing.T) {
	t.Parallel()
	fss := map[uint64]*log.FullFS{}
	c := &testCluster{fs: map[uint64]log.FS{}}
	for id := uint64(1); id <= 3; id++ {
		fss[id] = log.NewFullFS(nil)
		c.fs[id] = fss[id]
	}
	c = newFullDiskCluster(t, c)
	l := c.leader(1)
	c.propose(l, 1, "a")
	c.converged(1, []string{"a"})
	f, o := l%3+1, (l+1)%3+1
	fss[f].SetSpace(20) // the next record is written in part
	c.propose(l, 1, cmds("full", 20)...)
	waitFor(t, "the follower to stall", func() bool { s, _ := c.hosts[f].Stalled(); return s })
	if _, err := c.hosts[f].Group(1).Propose(context.Background(), []byte("x")); !errors.Is(err, ErrStorage) {
		t.Fatalf("proposal on a stalled host: %v, want ErrStorage", err)
	}
	c.stop(o)
	fss[f].SetFull(false)
	c.propose(l, 1, "after")
	want := append(append([]string{"a"}, cmds("full", 20)...), "after")
	waitFor(t, "the leader and the freed follower to converge", func() bool {
		return len(c.sms[l][1].list()) == len(want) && len(c.sms[f][1].list()) == len(want)
	})
	c.stop(f)
	c.start(f, nil)
	c.start(o, nil)
	c.converged(1, c.sms[l][1].list())
}

// A leader whose disk fills stalls and falls silent: the others elect a new leader and
// commit; once space is freed the old leader catches up as a follower.
func TestFullDiskLeaderStalls(t *testing.T) {
	t.Parallel()
	fss := map[uint64]*log.FullFS{}
	c := &testCluster{fs: map[uint64]log.FS{}}
	for id := uint64(1); id <= 3; id++ {
		fss[id] = log.NewFullFS(nil)
		c.fs[id] = fss[id]
	}
	c = newFullDiskCluster(t, c)
	l := c.leader(1)
	c.propose(l, 1, "a")
	fss[l].SetFull(true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.hosts[l].Group(1).Propose(ctx, []byte("lost?")); !errors.Is(err, ErrStorage) {
		t.Fatalf("proposal on a leader whose disk is full: %v, want ErrStorage", err)
	}
	nl := c.leader(1, l)
	c.propose(nl, 1, "b")
	fss[l].SetFull(false)
	waitFor(t, "the old leader to catch up", func() bool {
		got := c.sms[l][1].list()
		return len(got) > 0 && got[len(got)-1] == "b"
	})
	c.converged(1, c.sms[nl][1].list())
}

// noSpaceSM refuses to apply with ENOSPC while full is set, as a partition whose log cannot
// be written.
type noSpaceSM struct {
	StateMachine
	full *atomic.Bool
}

func (s noSpaceSM) Apply(e Entry) (any, error) {
	if s.full.Load() {
		return nil, fmt.Errorf("cannot append: %w", &os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC})
	}
	return s.StateMachine.Apply(e)
}

// A state machine that cannot apply a committed entry (its own disk is full) gets it again,
// with the ones after it, in order, once space is freed: no entry is skipped.
func TestApplyOnFullDiskRetried(t *testing.T) {
	t.Parallel()
	var full [4]atomic.Bool
	c := &testCluster{wrap: func(node uint64, sm StateMachine) StateMachine {
		return noSpaceSM{sm, &full[node]}
	}}
	c = newFullDiskCluster(t, c)
	l := c.leader(1)
	c.propose(l, 1, "a")
	c.converged(1, []string{"a"})
	f := l%3 + 1
	full[f].Store(true)
	c.propose(l, 1, cmds("b", 10)...)
	waitFor(t, "the follower to stall", func() bool { s, _ := c.hosts[f].Stalled(); return s })
	if got := c.sms[f][1].list(); len(got) != 1 {
		t.Fatalf("follower applied %v on a full disk", got)
	}
	full[f].Store(false)
	c.propose(l, 1, "c")
	waitFor(t, "the leader to apply 12 commands", func() bool { return len(c.sms[l][1].list()) == 12 })
	c.converged(1, c.sms[l][1].list())
}

// newFullDiskCluster starts 3 hosts running group 1 with c's fs and wrap.
func newFullDiskCluster(t *testing.T, c *testCluster) *testCluster {
	t.Helper()
	fs, wrap := c.fs, c.wrap
	c = &testCluster{t: t, cfg: fastConfig(), addrs: map[uint64]string{}, dirs: map[uint64]string{},
		hosts: map[uint64]*Host{}, sms: map[uint64]map[uint64]*listSM{}, groups: []uint64{1}, fs: fs, wrap: wrap}
	lns := map[uint64]net.Listener{}
	for id := uint64(1); id <= 3; id++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[id] = ln
		c.addrs[id] = ln.Addr().String()
		c.dirs[id] = filepath.Join(t.TempDir(), "raft")
	}
	for id, ln := range lns {
		c.start(id, ln)
	}
	t.Cleanup(func() {
		for _, h := range c.hosts {
			h.Close()
		}
	})
	return c
}
