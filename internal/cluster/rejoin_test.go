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
