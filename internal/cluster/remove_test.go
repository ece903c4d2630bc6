package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"testing"
)

// TestRemoveGroup: a group removed on every member stops, fails its proposals with ErrClosed,
// is not recovered after a restart, and its entries stop holding WAL segments, while the
// other group goes on.
func TestRemoveGroup(t *testing.T) {
	t.Parallel()
	cfg := fastConfig()
	cfg.SnapshotEntries, cfg.CatchUpEntries, cfg.WALSegmentBytes = 20, 5, 4096
	c := newTestCluster(t, 3, cfg, 1, 2)
	l := c.leader(2)
	for i := range 10 {
		c.propose(l, 2, cmds(fmt.Sprint("g2-", i), 10)...)
	}
	c.converged(2, c.sms[l][2].list())
	old := c.hosts[l].Group(2)
	for _, h := range c.hosts {
		h.RemoveGroup(2)
		h.RemoveGroup(2) // a second removal changes nothing
	}
	for id, h := range c.hosts {
		waitFor(t, fmt.Sprintf("node %d to record the removal", id), func() bool {
			h.mu.Lock()
			defer h.mu.Unlock()
			return h.groups[2] == nil && len(h.removing) == 0
		})
	}
	if _, err := old.Propose(context.Background(), []byte("late")); !errors.Is(err, ErrClosed) {
		t.Fatalf("proposal to a removed group: %v, want ErrClosed", err)
	}
	// Its entries are still in the WAL, but a restart does not recover it.
	c.groups = []uint64{1}
	c.stop(l)
	if _, rec, err := openWAL(c.dirs[l]+"/wal", cfg.WALSegmentBytes, slog.New(slog.DiscardHandler), nil); err != nil || rec[2] != nil {
		t.Fatalf("node %d: the WAL recovers the removed group (%v)", l, err)
	}
	c.start(l, nil)
	// Group 1's traffic rolls and compacts the WAL: no segment keeps group 2's entries.
	l1 := c.leader(1)
	for i := range 20 {
		c.propose(l1, 1, cmds(fmt.Sprint("g1-", i), 10)...)
	}
	c.converged(1, c.sms[l1][1].list())
	for id, h := range c.hosts {
		if got := h.compactedIndex(2); got != math.MaxUint64 {
			t.Errorf("node %d: compacted index of the removed group %d", id, got)
		}
	}
	// Stopped, each node's WAL holds no segment with the removed group's entries.
	for id := range c.addrs {
		c.stop(id)
		w, rec, err := openWAL(c.dirs[id]+"/wal", cfg.WALSegmentBytes, slog.New(slog.DiscardHandler), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, seg := range w.segs {
			if _, ok := seg.maxIndex[2]; ok {
				t.Errorf("node %d: WAL segment %d still holds entries of the removed group", id, seg.seq)
			}
		}
		if rec[2] != nil {
			t.Errorf("node %d: the WAL recovers the removed group", id)
		}
		if err := w.close(); err != nil {
			t.Fatal(err)
		}
		c.start(id, nil)
	}
	// Restarted without it, a node recovers group 1 alone.
	for id, h := range c.hosts {
		h.mu.Lock()
		_, rec := h.recovered[2]
		h.mu.Unlock()
		if rec || h.Group(2) != nil {
			t.Fatalf("node %d recovered the removed group after a restart", id)
		}
	}
	c.propose(c.leader(1), 1, "after")
	c.converged(1, c.sms[c.leader(1)][1].list())
}
