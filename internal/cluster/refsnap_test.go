package cluster

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
)

// refSM is a durable state machine whose snapshots refer to its state (as a replicated
// partition's name the end of its log): {index, count of commands}.
type refSM struct{ l *listSM }

type refSnap struct {
	Index uint64 `json:"index"`
	N     int    `json:"n"`
}

func (s refSM) Apply(e Entry) (any, error) {
	s.l.mu.Lock()
	done := e.Index <= s.l.index
	s.l.mu.Unlock()
	if done {
		return nil, nil
	}
	return s.l.Apply(e)
}

func (s refSM) AppliedIndex() uint64 {
	s.l.mu.Lock()
	defer s.l.mu.Unlock()
	return s.l.index
}

func (s refSM) Snapshot() ([]byte, error) {
	s.l.mu.Lock()
	defer s.l.mu.Unlock()
	return json.Marshal(refSnap{s.l.index, len(s.l.cmd)})
}

func (s refSM) Restore(data []byte) error {
	if !s.CanRestore(data) {
		return fmt.Errorf("snapshot %s refers to state this member lacks", data)
	}
	return nil
}

func (s refSM) CanRestore(data []byte) bool {
	var r refSnap
	if json.Unmarshal(data, &r) != nil {
		return false
	}
	s.l.mu.Lock()
	defer s.l.mu.Unlock()
	return s.l.index >= r.Index && len(s.l.cmd) >= r.N
}

// memEntries is how many entries node's group holds in memory.
func (c *testCluster) memEntries(node, group uint64) uint64 {
	g := c.hosts[node].Group(group)
	var n uint64
	first, _ := g.storage.FirstIndex()
	last, _ := g.storage.LastIndex()
	if last >= first {
		n = last - first + 1
	}
	return n
}

func refConfig() Config {
	cfg := fastConfig()
	cfg.SnapshotEntries, cfg.CatchUpEntries, cfg.RetainEntries, cfg.WALSegmentBytes = 20, 5, 80, 4096
	return cfg
}

// A group whose snapshots are references compacts its log (memory and WAL) as it goes, and
// a follower stopped for fewer entries than RetainEntries catches up from the log.
func TestReferenceSnapshotCompaction(t *testing.T) {
	t.Parallel()
	c := newRefCluster(t, refConfig())
	l := c.leader(1)
	f := l%3 + 1
	c.stop(f)
	for i := range 3 {
		c.propose(l, 1, cmds(fmt.Sprint("a", i), 20)...)
	}
	c.start(f, nil) // 60 entries behind: within RetainEntries
	c.converged(1, c.sms[l][1].list())
	if g := c.hosts[f].Group(1); g.refused.Load() != 0 {
		t.Fatalf("follower was sent a snapshot (index %d) while the leader retained its entries", g.refused.Load())
	}
	for i := range 15 {
		c.propose(l, 1, cmds(fmt.Sprint("b", i), 20)...)
	}
	want := c.sms[l][1].list()
	c.converged(1, want)
	for id := range c.hosts {
		if n := c.memEntries(id, 1); n > 60 {
			t.Errorf("node %d holds %d entries in memory after 360 entries (snapshot every 20)", id, n)
		}
		segs, _ := filepath.Glob(filepath.Join(c.dirs[id], "wal", "*.wal"))
		if len(segs) > 8 {
			t.Errorf("node %d keeps %d WAL segments of 4 KiB after 360 entries", id, len(segs))
		}
	}
	// A restarted member resumes from its snapshot, its own state and the WAL.
	for _, id := range []uint64{f, l} {
		c.stop(id)
		c.start(id, nil)
		l = c.leader(1)
		c.propose(l, 1, fmt.Sprint("after", id))
		want = append(want, fmt.Sprint("after", id))
		c.converged(1, want)
	}
}

// A follower stopped for more entries than the leader retains is sent a snapshot it cannot
// restore: it ignores it and stays a consistent prefix, never pretending to hold the rest,
// while the others go on committing.
func TestReferenceSnapshotTooFarBehind(t *testing.T) {
	t.Parallel()
	c := newRefCluster(t, refConfig())
	l := c.leader(1)
	f := l%3 + 1
	c.stop(f)
	for i := range 10 {
		c.propose(l, 1, cmds(fmt.Sprint(i), 20)...)
	}
	if n := c.memEntries(l, 1); n > 80+20 {
		t.Errorf("leader holds %d entries in memory with RetainEntries 80", n)
	}
	c.start(f, nil)
	waitFor(t, "the follower to refuse a snapshot", func() bool {
		return c.hosts[f].Group(1).refused.Load() != 0
	})
	c.propose(l, 1, "more")
	want := c.sms[l][1].list()
	if got := c.sms[f][1].list(); len(got) >= len(want) || !slices.Equal(got, want[:len(got)]) {
		t.Fatalf("follower holds %d commands, not a prefix of the leader's %d", len(got), len(want))
	}
	if slices.Contains(c.hosts[l].Group(1).InSync(), f) {
		t.Errorf("follower %d counted in sync", f)
	}
}

func newRefCluster(t *testing.T, cfg Config) *testCluster {
	t.Helper()
	return newCluster(t, 3, cfg, true, 1)
}
