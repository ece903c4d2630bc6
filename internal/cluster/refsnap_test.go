package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
)

// refSM is a durable state machine whose snapshots refer to its state (as a replicated
// partition's name the end of its log): {index, count of commands}.
type refSM struct {
	l       *listSM
	fetches bool // it implements RangeStateMachine (rangeSM), else ReferenceStateMachine only
}

// rangeSM is a refSM that fetches what it lacks.
type rangeSM struct{ refSM }

type refSnap struct {
	Index uint64 `json:"index"`
	N     int    `json:"n"`
}

func (s refSM) Apply(e Entry) (any, error) {
	s.l.mu.Lock()
	done := e.Index <= s.l.index
	if !done && s.l.pending { // an applied entry wins over a range fetch in progress
		s.l.cmd, s.l.pending = s.l.cmd[:s.l.from], false
	}
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
	var r refSnap
	if err := json.Unmarshal(data, &r); err != nil {
		return err
	}
	s.l.mu.Lock()
	defer s.l.mu.Unlock()
	switch {
	case s.l.index >= r.Index && len(s.l.cmd) >= r.N:
		return nil
	case s.l.pending && len(s.l.cmd) >= r.N:
		s.l.cmd, s.l.index, s.l.pending = s.l.cmd[:r.N], r.Index, false
		return nil
	}
	return fmt.Errorf("snapshot %s refers to state this member lacks", data)
}

func (s refSM) CanRestore(data []byte) bool {
	var r refSnap
	if json.Unmarshal(data, &r) != nil {
		return false
	}
	s.l.mu.Lock()
	defer s.l.mu.Unlock()
	return (s.l.index >= r.Index || (s.l.pending && s.fetches)) && len(s.l.cmd) >= r.N
}

// refRange is a refSM range request: commands [From, To).
type refRange struct {
	From int `json:"from"`
	To   int `json:"to"`
}

// refChunk is how many commands a refSM range response carries at most.
const refChunk = 7

func (s refSM) RangeRequest(data []byte) ([]byte, error) {
	var r refSnap
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, err
	}
	s.l.mu.Lock()
	defer s.l.mu.Unlock()
	if !s.l.pending {
		s.l.pending, s.l.from = true, len(s.l.cmd)
	}
	return json.Marshal(refRange{len(s.l.cmd), r.N})
}

func (s refSM) ReadRange(req []byte, maxBytes int) ([]byte, error) {
	var q refRange
	if err := json.Unmarshal(req, &q); err != nil {
		return nil, err
	}
	s.l.mu.Lock()
	defer s.l.mu.Unlock()
	if q.From < 0 || q.From > len(s.l.cmd) || q.To < q.From {
		return nil, fmt.Errorf("range [%d, %d) beyond %d commands", q.From, q.To, len(s.l.cmd))
	}
	end := min(q.To, len(s.l.cmd), q.From+refChunk)
	return json.Marshal(s.l.cmd[q.From:end])
}

func (s refSM) WriteRange(snap, resp []byte) ([]byte, bool, error) {
	var r refSnap
	var got []string
	if err := errors.Join(json.Unmarshal(snap, &r), json.Unmarshal(resp, &got)); err != nil {
		return nil, false, err
	}
	s.l.mu.Lock()
	defer s.l.mu.Unlock()
	if !s.l.pending {
		return nil, false, errors.New("an applied entry superseded the fetch")
	}
	if len(got) == 0 {
		return nil, false, errors.New("empty range response")
	}
	s.l.cmd = append(s.l.cmd, got...)
	if len(s.l.cmd) >= r.N {
		return nil, true, nil
	}
	next, err := json.Marshal(refRange{len(s.l.cmd), r.N})
	return next, false, err
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
// restore from its own state: it fetches the range it lacks (in several responses), restores
// the snapshot and catches up, in sync again.
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
	waitFor(t, "the follower to be sent a snapshot it lacks the state of", func() bool {
		return c.hosts[f].Group(1).refused.Load() != 0
	})
	c.propose(l, 1, "more")
	want := c.sms[l][1].list()
	c.converged(1, want)
	if c.hosts[f].Group(1).fetched.Load() == 0 {
		t.Fatal("the follower caught up without a range fetch")
	}
	waitFor(t, "the follower in sync", func() bool {
		return slices.Contains(c.hosts[l].Group(1).InSync(), f)
	})
	// It applies what follows, and resumes after a restart.
	c.propose(l, 1, "after")
	c.stop(f)
	c.start(f, nil)
	c.propose(c.leader(1), 1, "restarted")
	c.converged(1, append(want, "after", "restarted"))
}

// A state machine that cannot fetch (a ReferenceStateMachine only) ignores such a snapshot and
// stays a consistent prefix, never pretending to hold the rest, while the others go on.
func TestReferenceSnapshotWithoutFetch(t *testing.T) {
	t.Parallel()
	c := newRefCluster(t, refConfig())
	c.plainRef = true
	l := c.leader(1)
	f := l%3 + 1
	c.stop(f)
	for i := range 10 {
		c.propose(l, 1, cmds(fmt.Sprint(i), 20)...)
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

// A restarted leader holds only the entries after its snapshot (the WAL before it is gone), so
// a follower that was stopped for fewer entries than RetainEntries is still sent a snapshot
// when it returns: it fetches the range and catches up.
func TestReferenceSnapshotLeaderRestart(t *testing.T) {
	t.Parallel()
	c := newRefCluster(t, refConfig())
	l := c.leader(1)
	f := l%3 + 1
	c.stop(f)
	for i := range 3 {
		c.propose(l, 1, cmds(fmt.Sprint("a", i), 20)...) // 60 entries: within RetainEntries
	}
	c.stop(l)
	c.start(l, nil)
	l = c.leader(1)
	c.propose(l, 1, "after-restart")
	c.start(f, nil)
	want := c.sms[l][1].list()
	c.converged(1, want)
	if c.hosts[f].Group(1).fetched.Load() == 0 {
		t.Fatal("the follower caught up without a range fetch")
	}
	c.propose(c.leader(1), 1, "last")
	c.converged(1, append(want, "last"))
}

func newRefCluster(t *testing.T, cfg Config) *testCluster {
	t.Helper()
	return newCluster(t, 3, cfg, true, 1)
}
