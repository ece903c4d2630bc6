package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/yardmq/yard/internal/log"
	"github.com/yardmq/yard/internal/tlsconf"
)

// listSM is a state machine that keeps every command it applied, in order.
type listSM struct {
	mu    sync.Mutex
	cmd   []string
	index uint64 // last applied entry
	// A range fetch (refSM) in progress: cmd[from:] was fetched, not applied.
	pending bool
	from    int
}

func (s *listSM) Apply(e Entry) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.index = e.Index
	if string(e.Data) == "refuse" {
		return nil, fmt.Errorf("refused at %d", e.Index)
	}
	s.cmd = append(s.cmd, string(e.Data))
	return len(s.cmd), nil
}

func (s *listSM) Snapshot() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return json.Marshal(s.cmd)
}

func (s *listSM) Restore(data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cmd = nil
	return json.Unmarshal(data, &s.cmd)
}

func (s *listSM) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.cmd)
}

// testCluster runs n hosts in this process over loopback TCP, with real files.
type testCluster struct {
	t      *testing.T
	cfg    Config // template: timings and limits
	addrs  map[uint64]string
	dirs   map[uint64]string
	hosts  map[uint64]*Host
	sms    map[uint64]map[uint64]*listSM // node -> group -> state machine
	groups []uint64
	// ref makes the groups' state machines rangeSMs (refSMs if plainRef) over a listSM that
	// survives restarts.
	ref, plainRef bool
	// fs, if set, writes a node's WAL files (fulldisk_test.go); wrap, if set, wraps each
	// group's state machine.
	fs   map[uint64]log.FS
	wrap func(node uint64, sm StateMachine) StateMachine
	tls  map[uint64]*tlsconf.Store // a node's cluster TLS material (tls_test.go)
}

func newTestCluster(t *testing.T, n int, cfg Config, groups ...uint64) *testCluster {
	t.Helper()
	return newCluster(t, n, cfg, false, groups...)
}

func newCluster(t *testing.T, n int, cfg Config, ref bool, groups ...uint64) *testCluster {
	t.Helper()
	c := &testCluster{t: t, cfg: cfg, addrs: map[uint64]string{}, dirs: map[uint64]string{},
		hosts: map[uint64]*Host{}, sms: map[uint64]map[uint64]*listSM{}, groups: groups, ref: ref}
	lns := map[uint64]net.Listener{}
	for id := uint64(1); id <= uint64(n); id++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[id] = ln
		c.addrs[id] = ln.Addr().String()
		c.dirs[id] = t.TempDir()
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

func (c *testCluster) voters() []uint64 {
	return slices.Sorted(func(yield func(uint64) bool) {
		for id := range c.addrs {
			if !yield(id) {
				return
			}
		}
	})
}

func (c *testCluster) start(id uint64, ln net.Listener) {
	c.t.Helper()
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", c.addrs[id])
		if err != nil {
			c.t.Fatal(err)
		}
	}
	cfg := c.cfg
	cfg.NodeID, cfg.Dir, cfg.Listener, cfg.Peers = id, c.dirs[id], ln, c.addrs
	cfg.FS = c.fs[id]
	cfg.TLS = c.tls[id]
	h, err := Open(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.hosts[id] = h
	old := c.sms[id]
	c.sms[id] = map[uint64]*listSM{}
	for _, g := range c.groups {
		sm := &listSM{}
		var gsm StateMachine = sm
		if c.ref {
			if old[g] != nil {
				sm = old[g]
			}
			gsm = rangeSM{refSM{sm, true}}
			if c.plainRef {
				gsm = refSM{l: sm}
			}
		}
		if c.wrap != nil {
			gsm = c.wrap(id, gsm)
		}
		if _, err := h.CreateGroup(g, gsm, c.voters()); err != nil {
			c.t.Fatal(err)
		}
		c.sms[id][g] = sm
	}
}

func (c *testCluster) stop(id uint64) {
	c.t.Helper()
	if err := c.hosts[id].Close(); err != nil {
		c.t.Fatal(err)
	}
	delete(c.hosts, id)
}

// partition cuts node id off from every other node, both ways; heal undoes it.
func (c *testCluster) partition(id uint64) {
	for hid, h := range c.hosts {
		f := func(peer uint64) bool { return hid == id || peer == id }
		h.tr.blocked.Store(&f)
	}
}

func (c *testCluster) heal() {
	for _, h := range c.hosts {
		h.tr.blocked.Store(nil)
	}
}

// waitFor polls cond until it holds; the bound only catches a hung test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// leader waits until the running hosts agree on group's leader (one of them) and returns it.
func (c *testCluster) leader(group uint64, exclude ...uint64) uint64 {
	c.t.Helper()
	var l uint64
	waitFor(c.t, fmt.Sprintf("a leader of group %d", group), func() bool {
		l = 0
		for id, h := range c.hosts {
			if slices.Contains(exclude, id) {
				continue
			}
			gl := h.Group(group).Leader()
			if gl == 0 || (l != 0 && gl != l) || slices.Contains(exclude, gl) {
				return false
			}
			l = gl
		}
		return c.hosts[l] != nil
	})
	return l
}

func (c *testCluster) propose(node, group uint64, cmds ...string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(cmds))
	for _, cmd := range cmds {
		wg.Go(func() {
			_, err := c.hosts[node].Group(group).Propose(ctx, []byte(cmd))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			c.t.Fatalf("propose on node %d: %v", node, err)
		}
	}
}

// converged waits until every running node's state machine of group holds want, in order.
func (c *testCluster) converged(group uint64, want []string) {
	c.t.Helper()
	waitFor(c.t, fmt.Sprintf("group %d to converge on %d commands", group, len(want)), func() bool {
		for id := range c.hosts {
			if got := c.sms[id][group].list(); !slices.Equal(got, want) {
				return false
			}
		}
		return true
	})
}

func cmds(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

func fastConfig() Config {
	return Config{TickInterval: 10 * time.Millisecond, ElectionTicks: 10}
}

// applied returns the commands of node's group in order, checking that want's elements all
// appear exactly once (concurrent proposals commit in any order).
func sameSet(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

func TestElectProposeCommit(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, 3, fastConfig(), 1)
	l := c.leader(1)
	c.propose(l, 1, "a")
	var f uint64 = 1
	if f == l {
		f = 2
	}
	c.propose(f, 1, "b") // forwarded to the leader, result learnt when f applies it
	c.converged(1, []string{"a", "b"})
	// A state machine's result and refusal is the proposer's result, on every node alike.
	if n, err := c.hosts[f].Group(1).Propose(context.Background(), []byte("c")); err != nil || n != 3 {
		t.Fatalf("third command: result %v, %v; want 3", n, err)
	}
	_, err := c.hosts[f].Group(1).Propose(context.Background(), []byte("refuse"))
	if err == nil {
		t.Fatal("a refused command succeeded")
	}
	many := cmds("x", 200)
	c.propose(l, 1, many...)
	got := c.sms[l][1].list()
	if len(got) != 203 || !sameSet(got[3:], many) {
		t.Fatalf("leader applied %d commands", len(got))
	}
	c.converged(1, got)
	if term := c.hosts[l].Group(1).Term(); term < 2 {
		t.Fatalf("term %d after an election, want >= 2", term)
	}
}

func TestRestart(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, 3, fastConfig(), 1, 2)
	l := c.leader(1)
	c.propose(l, 1, "a", "b")
	c.converged(1, c.sms[l][1].list())
	// A follower restarts and catches up on what it missed.
	f := l%3 + 1
	c.stop(f)
	c.propose(l, 1, "c")
	c.start(f, nil)
	want := c.sms[l][1].list()
	c.converged(1, want)
	// The leader restarts: the others elect a new one and keep committing.
	c.stop(l)
	nl := c.leader(1, l)
	c.propose(nl, 1, "d")
	c.start(l, nil)
	want = append(want, "d")
	c.converged(1, want)
	// Everyone restarts: the state comes back from the WAL alone.
	for id := range c.addrs {
		c.stop(id)
	}
	for id := range c.addrs {
		c.start(id, nil)
	}
	c.converged(1, want)
	c.propose(c.leader(1), 1, "e")
	c.converged(1, append(want, "e"))
	c.leader(2) // the other group came back too
}

func TestPartition(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, 3, fastConfig(), 1)
	l := c.leader(1)
	c.propose(l, 1, "a")
	term := c.hosts[l].Group(1).Term()
	c.partition(l)
	// The majority side elects a new leader in a later term and commits without l.
	var nl uint64
	waitFor(t, "a new leader on the majority side", func() bool {
		for id, h := range c.hosts {
			if id != l && h.Group(1).Leader() != 0 && h.Group(1).Leader() != l && h.Group(1).Term() > term {
				nl = h.Group(1).Leader()
				return true
			}
		}
		return false
	})
	c.propose(nl, 1, "b")
	// The cut-off old leader cannot commit.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := c.hosts[l].Group(1).Propose(ctx, []byte("lost")); err == nil {
		t.Fatal("a partitioned node committed a proposal")
	}
	c.heal()
	c.converged(1, []string{"a", "b"})
	if got := c.leader(1); got == l && c.hosts[l].Group(1).Term() <= term {
		t.Fatalf("old leader %d kept term %d", l, term)
	}
}

func TestSnapshotCatchUp(t *testing.T) {
	t.Parallel()
	cfg := fastConfig()
	cfg.SnapshotEntries, cfg.CatchUpEntries, cfg.WALSegmentBytes = 20, 5, 4096
	c := newTestCluster(t, 3, cfg, 1)
	l := c.leader(1)
	f := l%3 + 1
	c.stop(f)
	for i := range 10 {
		c.propose(l, 1, cmds(fmt.Sprint(i), 30)...)
	}
	want := c.sms[l][1].list()
	// The leader's WAL dropped the segments its snapshots cover.
	segs, _ := filepath.Glob(filepath.Join(c.dirs[l], "wal", "*.wal"))
	if len(segs) > 8 {
		t.Errorf("leader keeps %d WAL segments of 4 KiB after 300 entries", len(segs))
	}
	// The follower, far behind, gets a snapshot.
	c.start(f, nil)
	c.converged(1, want)
	if _, err := os.Stat(snapPath(c.dirs[f], 1)); err != nil {
		t.Fatalf("follower has no snapshot: %v", err)
	}
	c.propose(l, 1, "after")
	c.converged(1, append(want, "after"))
	// And it recovers from snapshot + WAL.
	c.stop(f)
	c.start(f, nil)
	c.converged(1, append(want, "after"))
}

func TestManyGroupsQuiesce(t *testing.T) {
	t.Parallel()
	n := 1000
	if testing.Short() {
		n = 200
	}
	groups := make([]uint64, n)
	for i := range groups {
		groups[i] = uint64(i + 1)
	}
	cfg := Config{TickInterval: 20 * time.Millisecond, ElectionTicks: 10}
	c := newTestCluster(t, 3, cfg, groups...)
	quiet := func() bool {
		for _, h := range c.hosts {
			h.mu.Lock()
			a := len(h.active)
			h.mu.Unlock()
			if a != 0 {
				return false
			}
		}
		return true
	}
	waitFor(t, "every group to elect and quiesce", quiet)
	for _, g := range groups {
		if c.hosts[1].Group(g).Leader() == 0 {
			t.Fatalf("group %d quiesced without a leader", g)
		}
	}
	// An idle window of 20 ticks must cost no raft message and no round. A peer whose pings
	// are late on a loaded machine counts as dead for a moment and wakes the groups it leads
	// (as it must), so a disturbed window is retried; one quiet window shows the idle cost.
	counters := func() (sent, rounds map[uint64]uint64) {
		sent, rounds = map[uint64]uint64{}, map[uint64]uint64{}
		for id, h := range c.hosts {
			for _, p := range h.tr.peers {
				sent[id] += p.sent.Load()
			}
			rounds[id] = h.rounds.Load()
		}
		return sent, rounds
	}
	const windows = 10
	for attempt := 1; ; attempt++ {
		waitFor(t, "every group to quiesce", quiet)
		t0 := c.hosts[1].ticks.Load()
		waitFor(t, "5 ticks for the last quiesce replies", func() bool { return c.hosts[1].ticks.Load() >= t0+5 })
		sent, rounds := counters()
		t0 = c.hosts[1].ticks.Load()
		waitFor(t, "20 ticks", func() bool { return c.hosts[1].ticks.Load() >= t0+20 })
		sent2, rounds2 := counters()
		var busy []string
		for id := range c.hosts {
			if sent2[id] != sent[id] || rounds2[id] != rounds[id] {
				busy = append(busy, fmt.Sprintf("node %d sent %d raft messages and ran %d rounds", id, sent2[id]-sent[id], rounds2[id]-rounds[id]))
			}
		}
		if len(busy) == 0 {
			break
		}
		if attempt == windows {
			t.Fatalf("no quiet window of 20 ticks in %d: %v", windows, busy)
		}
		t.Logf("window %d disturbed: %v", attempt, busy)
	}
	// A proposal wakes its group, commits, and it quiesces again.
	g := groups[n/2]
	l := c.leader(g)
	c.propose(l, g, "wake")
	c.converged(g, []string{"wake"})
	waitFor(t, "the group to quiesce again", quiet)
}

// TestQuiescedLeaderDies checks that followers of a quiesced group notice its leader's
// death through the peer's liveness and elect a new one.
func TestQuiescedLeaderDies(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, 3, fastConfig(), 1)
	l := c.leader(1)
	c.propose(l, 1, "a")
	waitFor(t, "quiescence", func() bool {
		for _, h := range c.hosts {
			h.mu.Lock()
			a := len(h.active)
			h.mu.Unlock()
			if a != 0 {
				return false
			}
		}
		return true
	})
	c.stop(l)
	nl := c.leader(1, l)
	c.propose(nl, 1, "b")
	c.converged(1, []string{"a", "b"})
}

// A group of large entries snapshots and compacts by bytes before its entry count is
// reached, so its in-memory log stays near SnapshotBytes + CatchUpBytes instead of holding
// SnapshotEntries of them (a partition's produce batches: gigabytes); a follower far behind
// still catches up from the snapshot.
func TestSnapshotByBytes(t *testing.T) {
	t.Parallel()
	cfg := fastConfig()
	cfg.SnapshotEntries, cfg.CatchUpEntries = 1_000_000, 500_000
	cfg.SnapshotBytes, cfg.CatchUpBytes, cfg.RetainBytes = 64<<10, 16<<10, 32<<10
	c := newTestCluster(t, 3, cfg, 1)
	l := c.leader(1)
	f := l%3 + 1
	c.stop(f)
	big := strings.Repeat("x", 4<<10)
	for i := range 10 {
		batch := cmds(fmt.Sprint(i), 10)
		for j := range batch {
			batch[j] += big
		}
		c.propose(l, 1, batch...)
	}
	want := c.sms[l][1].list()
	g := c.hosts[l].Group(1)
	first, _ := g.storage.FirstIndex()
	last, _ := g.storage.LastIndex()
	ents, err := g.storage.Entries(first, last+1, math.MaxUint64)
	if err != nil {
		t.Fatal(err)
	}
	var held int
	for _, e := range ents {
		held += len(e.Data)
	}
	// 100 entries of 4 KiB were applied: 400 KiB; the bounds keep well under that.
	if limit := int(cfg.SnapshotBytes + cfg.RetainBytes + 8<<10); held > limit {
		t.Errorf("the leader holds %d bytes of entries in memory (%d entries), more than %d", held, len(ents), limit)
	}
	if _, err := os.Stat(snapPath(c.dirs[l], 1)); err != nil {
		t.Fatalf("leader took no snapshot: %v", err)
	}
	c.start(f, nil)
	c.converged(1, want)
}
