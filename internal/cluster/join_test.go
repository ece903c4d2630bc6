package cluster

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Members of a new cluster started one after the other: the first waits (alone it is no
// majority), the second forms the cluster with it, the third finds it formed and catches up
// before it votes; nothing deadlocks.
func TestJoinStaggeredStart(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, 3, fastConfig(), 1)
	for _, id := range []uint64{1, 2, 3} {
		c.stop(id)
		if err := os.RemoveAll(c.dirs[id]); err != nil {
			t.Fatal(err)
		}
	}
	c.start(1, nil)
	start := c.hosts[1].ticks.Load()
	waitFor(t, "node 1 to wait a few election timeouts", func() bool {
		return c.hosts[1].ticks.Load()-start > 3*uint64(c.cfg.ElectionTicks)
	})
	if p := c.hosts[1].phase(); p != phaseUndecided {
		t.Fatalf("node 1 alone decided (phase %d)", p)
	}
	c.start(2, nil)
	l := c.leader(1)
	c.propose(l, 1, cmds("a", 5)...)
	want := c.sms[l][1].list()
	c.converged(1, want)
	c.start(3, nil)
	c.converged(1, want)
	waitFor(t, "node 3 to end its rejoin", func() bool { return c.hosts[3].phase() == phaseFormed })
	if m := readMemberFile(t, c.dirs[3]); m.State != memberFormed || len(m.Formation) != 0 {
		t.Fatalf("node 3's member file: %+v, want formed by a rejoin", m)
	}
	if m := readMemberFile(t, c.dirs[1]); m.State != memberFormed || len(m.Formation) != 2 {
		t.Fatalf("node 1's member file: %+v, want formed with a formation of 2", m)
	}
}

func readMemberFile(t *testing.T, dir string) memberFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, memberFileName))
	if err != nil {
		t.Fatal(err)
	}
	var m memberFile
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func writeMemberFile(t *testing.T, dir string, m memberFile) {
	t.Helper()
	if err := writeMember(dir, m); err != nil {
		t.Fatal(err)
	}
}

// A member that formed the cluster counting another's directory keeps answering it "new"
// after a restart (the formation is in its member file): a member counted empty that
// crashed before it decided would otherwise be a rejoiner, and with the third member down no
// group could elect a leader (the first cannot alone).
func TestJoinFormationSurvivesRestart(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, 3, fastConfig(), 1)
	for _, id := range []uint64{1, 2, 3} {
		c.stop(id)
		if err := os.RemoveAll(c.dirs[id]); err != nil {
			t.Fatal(err)
		}
	}
	// Node 1 formed the cluster counting node 2's directory 22; node 2 never decided.
	writeMemberFile(t, c.dirs[1], memberFile{State: memberFormed, Dir: 11, Formation: map[uint64]uint64{1: 11, 2: 22}})
	writeMemberFile(t, c.dirs[2], memberFile{State: memberJoining, Dir: 22})
	c.start(1, nil)
	c.start(2, nil)
	l := c.leader(1)
	c.propose(l, 1, "a")
	c.start(3, nil)
	c.converged(1, []string{"a"})
	if m := readMemberFile(t, c.dirs[2]); m.State != memberFormed || m.Dir != 22 || len(m.Formation) < 2 {
		t.Fatalf("node 2's member file: %+v, want formed, directory 22", m)
	}
}

// A node whose member file still says joining (it crashed while rejoining, after writing
// part of the log) asks again whatever its WAL holds; a directory with Raft state and no
// member file (an earlier yard's) is formed and votes at once.
func TestJoinMemberFileAtRestart(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, 3, fastConfig(), 1)
	l := c.leader(1)
	c.propose(l, 1, cmds("a", 5)...)
	want := c.sms[l][1].list()
	c.converged(1, want)
	f, o := l%3+1, (l+1)%3+1
	c.stop(f)
	m := readMemberFile(t, c.dirs[f])
	m.State, m.Formation = memberJoining, nil
	writeMemberFile(t, c.dirs[f], m)
	c.start(f, nil)
	if p := c.hosts[f].phase(); p == phaseFormed {
		t.Fatal("a node whose member file says joining votes at once")
	}
	waitFor(t, "the joining node to rejoin", func() bool { return c.hosts[f].phase() == phaseFormed })
	if got := readMemberFile(t, c.dirs[f]); got.State != memberFormed || got.Dir != m.Dir {
		t.Fatalf("member file %+v after the rejoin, want formed with directory %d", got, m.Dir)
	}
	c.stop(o)
	if err := os.Remove(filepath.Join(c.dirs[o], memberFileName)); err != nil {
		t.Fatal(err)
	}
	c.start(o, nil)
	if p := c.hosts[o].phase(); p != phaseFormed {
		t.Fatalf("a directory of an earlier yard (raft state, no member file) is in phase %d, want formed", p)
	}
	c.propose(l, 1, "b")
	c.converged(1, append(want, "b"))
}

func TestJoinFrameRoundTrip(t *testing.T) {
	t.Parallel()
	for _, f := range [][]byte{appendJoinState(nil, joinAsk, 7, joinEmpty), appendJoinState(nil, joinAnswer, 9, joinFormed), appendJoinWake(nil, []uint64{1, 2, 1 << 60})} {
		kind, body, _, err := readFrame(bytes.NewReader(f), nil)
		if err != nil || kind != frameJoin {
			t.Fatalf("kind %d, %v", kind, err)
		}
		op, dir, state, groups, err := decodeJoin(body)
		if err != nil {
			t.Fatal(err)
		}
		switch op {
		case joinAsk:
			if dir != 7 || state != joinEmpty {
				t.Fatalf("ask: %d %d", dir, state)
			}
		case joinAnswer:
			if dir != 9 || state != joinFormed {
				t.Fatalf("answer: %d %d", dir, state)
			}
		case joinWake:
			if !slices.Equal(groups, []uint64{1, 2, 1 << 60}) {
				t.Fatalf("wake: %v", groups)
			}
		}
	}
	for _, body := range [][]byte{nil, {9}, {joinAsk, 1, 2}, {joinAnswer, 0, 0, 0, 0, 0, 0, 0, 1, 3}, {joinWake, 0, 0, 0, 2, 1}} {
		if _, _, _, _, err := decodeJoin(body); err == nil {
			t.Errorf("decodeJoin(%v) accepted", body)
		}
	}
}
