package quorum

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/yardmq/yard/internal/cluster"
)

const testGroup = 42

// chanEffects hands a node's deliveries to its test consumer; bounded, never blocks long
// (the test drains it).
type chanEffects struct{ ch chan Delivery }

func (e chanEffects) Deliver(d Delivery)              { e.ch <- d }
func (e chanEffects) DeadLetter(m *Message, r string) {}

type node struct {
	host *cluster.Host
	g    *cluster.Group
	q    *Queue
	eff  chanEffects
}

func startCluster(t *testing.T, n int) map[uint64]*node {
	t.Helper()
	lns, peers := map[uint64]net.Listener{}, map[uint64]string{}
	for id := uint64(1); id <= uint64(n); id++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[id], peers[id] = ln, ln.Addr().String()
	}
	var voters []uint64
	for id := uint64(1); id <= uint64(n); id++ {
		voters = append(voters, id)
	}
	nodes := map[uint64]*node{}
	for id, ln := range lns {
		h, err := cluster.Open(cluster.Config{NodeID: id, Dir: t.TempDir(), Listener: ln, Peers: peers, SnapshotEntries: 50, CatchUpEntries: 10})
		if err != nil {
			t.Fatal(err)
		}
		nd := &node{host: h, eff: chanEffects{make(chan Delivery, 10_000)}}
		nd.q = New(id, NoLimits, nd.eff)
		if nd.g, err = h.CreateGroup(testGroup, nd.q, voters); err != nil {
			t.Fatal(err)
		}
		nodes[id] = nd
	}
	t.Cleanup(func() {
		for _, nd := range nodes {
			nd.host.Close()
		}
	})
	return nodes
}

// propose retries a command through nd until it commits; ambiguous failures may commit it
// twice, which the caller must tolerate (an enqueue is then a duplicate, never a loss).
func propose(t *testing.T, nd *node, c Command) any {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		v, err := nd.g.Propose(ctx, c.Encode())
		cancel()
		if err == nil {
			return v
		}
		if !errors.Is(err, cluster.ErrNoLeader) && !errors.Is(err, cluster.ErrLeaderChanged) &&
			!errors.Is(err, context.DeadlineExceeded) || time.Now().After(deadline) {
			t.Fatalf("propose through node %d: %v", nd.host.ID(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestClusterPublishConsumeKillLeader: three hosts on loopback; messages enqueued through
// node 1 (committed on a majority when Propose returns), consumed on node 2 from its own
// replica's deliveries, settled through node 2; then the group's leader is closed mid-stream.
// No committed message is lost; what the consumer held unsettled when its node went away is
// redelivered with the redelivered flag on a survivor.
func TestClusterPublishConsumeKillLeader(t *testing.T) {
	t.Run("consumer on a follower", func(t *testing.T) { testKillLeader(t, false) })
	t.Run("consumer on the leader", func(t *testing.T) { testKillLeader(t, true) })
}

func testKillLeader(t *testing.T, consumerOnLeader bool) {
	nodes := startCluster(t, 3)
	const total = 200
	propose(t, nodes[1], Cancel(ConsumerID{Node: 1, Key: "none"})) // elects a leader
	leader := nodes[1].g.Leader()
	cnode := leader
	if !consumerOnLeader {
		cnode = leader%3 + 1
	}
	c := ConsumerID{Node: cnode, Key: "c"}
	propose(t, nodes[cnode], Checkout(c, 10))
	seen := map[string]int{}
	for i := range total / 2 {
		if r := propose(t, nodes[1], Enqueue("ex", "rk", nil, fmt.Appendf(nil, "m%d", i))).(EnqueueResult); !r.Accepted {
			t.Fatal("refused")
		}
	}
	// Consume half and settle; keep the last deliveries unsettled.
	got := 0
	for got < total/4 {
		d := <-nodes[cnode].eff.ch
		seen[string(d.Message.Body)]++
		got++
		propose(t, nodes[cnode], Settle(c, d.Message.ID))
	}
	if l := nodes[1].g.Leader(); l != 0 && l != leader { // a rare election meanwhile
		leader = l
	}
	consumerOnLeader = cnode == leader
	nodes[leader].host.Close()
	delete(nodes, leader)
	var survivor *node
	for _, nd := range nodes {
		survivor = nd
	}
	for i := total / 2; i < total; i++ {
		propose(t, survivor, Enqueue("ex", "rk", nil, fmt.Appendf(nil, "m%d", i)))
	}
	consumer, cid := nodes[cnode], c
	if consumer == nil { // the consumer's node was the leader: a survivor returns its messages
		propose(t, survivor, NodeDown(cnode))
		consumer, cid = survivor, ConsumerID{Node: survivor.host.ID(), Key: "c2"}
		propose(t, consumer, Checkout(cid, 10))
	}
	redelivered := 0
	timeout := time.After(30 * time.Second)
	for len(seen) < total {
		select {
		case d := <-consumer.eff.ch:
			if d.Redelivered {
				redelivered++
			}
			seen[string(d.Message.Body)]++
			propose(t, consumer, Settle(cid, d.Message.ID))
		case <-timeout:
			t.Fatalf("only %d of %d messages consumed", len(seen), total)
		}
	}
	if consumerOnLeader && redelivered != 10 {
		t.Fatalf("the consumer's node died holding 10 messages; %d came back redelivered", redelivered)
	}
	if !consumerOnLeader && redelivered != 0 {
		t.Fatalf("%d redeliveries with the consumer's node alive", redelivered)
	}
	// The survivors agree on the state.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var snaps []string
		for _, nd := range nodes {
			s, _ := nd.q.Snapshot()
			snaps = append(snaps, string(s))
		}
		if snaps[0] == snaps[1] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("survivors differ:\n%s\n%s", snaps[0], snaps[1])
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("leader %d closed; %d messages, %d redelivered", leader, len(seen), redelivered)
}
