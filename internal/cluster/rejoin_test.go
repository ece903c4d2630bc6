package cluster

import (
	"context"
	"os"
	"testing"
	"time"
)

// A follower restarted with an empty data directory is reset by its leader (its old match
// index would keep it from being sent what it lost) and catches up: the leader then commits
// with it alone once the other follower stops. Before, the leader's probes never went below
// the old match index and nothing committed.
func TestWipedFollowerRejoins(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, 3, fastConfig(), 1)
	l := c.leader(1)
	c.propose(l, 1, cmds("a", 20)...)
	c.converged(1, c.sms[l][1].list())
	f, o := l%3+1, (l+1)%3+1
	c.stop(f)
	if err := os.RemoveAll(c.dirs[f]); err != nil {
		t.Fatal(err)
	}
	c.start(f, nil)
	c.propose(l, 1, "b") // committed by the leader and the other follower
	c.converged(1, c.sms[l][1].list())
	waitFor(t, "the wiped follower to end its recovery", func() bool {
		return c.hosts[f].Group(1).recovering.Load() == 0
	})
	c.stop(o)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.hosts[l].Group(1).Propose(ctx, []byte("c")); err != nil {
		t.Fatalf("leader and the wiped follower cannot commit: %v", err)
	}
	c.converged(1, c.sms[l][1].list())
}

// A follower restarted with an empty data directory while its group's leader is down must
// not help the remaining member, which lacks entries the leader and it had committed, to an
// election: those entries would be lost. The leader and follower f commit while the other
// member o is cut off; then the leader stops, f is wiped and restarted, and o comes back.
// Before the join handshake f granted o its vote (it cannot tell an empty data directory
// from a new cluster's) and o led without the acknowledged entries; now f asks its peers,
// learns from o that the cluster exists, and votes only once it caught up: nothing is
// elected until the leader is back, and then every acknowledged entry is there.
func TestWipedFollowerDoesNotElectWithoutCommitted(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, 3, fastConfig(), 1)
	l := c.leader(1)
	c.propose(l, 1, cmds("a", 5)...)
	c.converged(1, c.sms[l][1].list())
	f, o := l%3+1, (l+1)%3+1
	c.partition(o)
	c.propose(l, 1, cmds("b", 10)...) // committed by the leader and f only
	want := c.sms[l][1].list()
	c.stop(l)
	c.stop(f)
	if err := os.RemoveAll(c.dirs[f]); err != nil {
		t.Fatal(err)
	}
	c.heal()
	c.start(f, nil)
	// Give o many election timeouts with f up (a condition on o's own clock, not a sleep).
	start := c.hosts[o].ticks.Load()
	var led uint64
	waitFor(t, "o to campaign for several election timeouts", func() bool {
		for _, id := range []uint64{o, f} {
			if ld := c.hosts[id].Group(1).Leader(); ld == o || ld == f {
				led = ld
				return true
			}
		}
		return c.hosts[o].ticks.Load()-start > 10*2*uint64(c.cfg.ElectionTicks) && c.hosts[f].Group(1).votesRefused.Load() > 0
	})
	if led != 0 {
		t.Fatalf("node %d led with the wiped node's vote while the leader %d, which holds the acknowledged entries, was down", led, l)
	}
	c.start(l, nil)
	c.converged(1, want)
	l2 := c.leader(1)
	c.propose(l2, 1, "c")
	c.converged(1, append(want, "c"))
}

// The leader of a quiesced group restarted with an empty data directory before its peers
// noticed it gone (within their liveness timeout): its followers, quiesced, would not elect
// anyone, and it does not campaign (it waits to catch up). Its wake makes them tick again:
// they elect a leader, which it then catches up with.
func TestWipedLeaderOfQuiescedGroup(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, 3, Config{TickInterval: 10 * time.Millisecond, ElectionTicks: 100}, 1)
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
	if err := os.RemoveAll(c.dirs[l]); err != nil {
		t.Fatal(err)
	}
	c.start(l, nil)
	nl := c.leader(1, l)
	c.propose(nl, 1, "b")
	c.converged(1, []string{"a", "b"})
}

// Both followers restarted with empty data directories, one right after the other: the leader
// still holds every entry and must bring both back. Resetting a member's progress through a
// configuration change (remove, then add back) needed a majority to commit the removal, and
// neither wiped member could acknowledge it: the group was stuck for good. The leader now
// resets the member's progress locally (the configuration does not change).
func TestTwoWipedFollowersRejoin(t *testing.T) {
	t.Parallel()
	c := newTestCluster(t, 3, Config{TickInterval: 10 * time.Millisecond, ElectionTicks: 100}, 1)
	l := c.leader(1)
	c.propose(l, 1, cmds("a", 20)...)
	want := c.sms[l][1].list()
	c.converged(1, want)
	f1, f2 := l%3+1, (l+1)%3+1
	for _, f := range []uint64{f1, f2} {
		c.stop(f)
		if err := os.RemoveAll(c.dirs[f]); err != nil {
			t.Fatal(err)
		}
		c.start(f, nil)
	}
	c.propose(l, 1, "b")
	c.converged(1, append(want, "b"))
}
