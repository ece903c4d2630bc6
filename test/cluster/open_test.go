package cluster

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// openDefect skips a test that reproduces a defect not fixed yet, unless
// YARD_CLUSTER_OPEN_DEFECTS=1.
func openDefect(t *testing.T, what string) {
	if os.Getenv("YARD_CLUSTER_OPEN_DEFECTS") != "1" {
		t.Skipf("open defect (YARD_CLUSTER_OPEN_DEFECTS=1 runs it): %s", what)
	}
}

// produceOK waits until one record produced with acks=all through seeds is acknowledged. A
// produce the broker holds unanswered (a leader that cannot commit) is abandoned at bound.
func produceOK(t *testing.T, seeds []string, topic string, bound time.Duration) time.Duration {
	t.Helper()
	p, err := NewProducer(seeds, topic, "probe", true)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { go p.Close() }() // Close waits for a produce still unanswered
	start := time.Now()
	for {
		res := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res <- p.cl.ProduceSync(ctx, &kgo.Record{Value: []byte("probe")}).FirstErr()
		}()
		select {
		case err = <-res:
		case <-time.After(bound - time.Since(start)):
			t.Fatalf("no record acknowledged within %v: a produce unanswered", bound)
		}
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > bound {
			t.Fatalf("no record acknowledged within %v: %v", bound, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestClusterEmptyDataDir restarts a follower of a partition with an empty data dir while
// the partition's leader stays, then stops the other follower: the wiped node must have
// caught up (or have refused to start), so that the leader and it commit. The leader
// remembers how far the follower had replicated (Raft assumes acknowledged entries stay on
// disk) and never sends below that: in a fault run its probes went on forever ("decreased
// progress of 1 to [StateProbe match=7 next=8]", rejected with hint index 1). A wiped node may
// also vote twice in a term it had voted in.
func TestClusterEmptyDataDir(t *testing.T) {
	openDefect(t, "a node restarted with an empty data dir rejoins without catching up")
	t.Parallel()
	c := Start(t, 3, Options{})
	createTopic(t, c, "wiped", 1)
	produceOK(t, c.Seeds(), "wiped", livenessBound)
	l := leaderOf(t, c, "wiped")
	f1, f2 := 1+l%3, 1+(l+1)%3
	c.Wipe(f1)
	c.Node(f1).Restart()
	produceOK(t, c.Seeds(), "wiped", livenessBound)
	c.Node(f2).Kill()
	d := produceOK(t, []string{c.Node(l).KafkaAddr, c.Node(f1).KafkaAddr}, "wiped", livenessBound)
	t.Logf("leader %d and node %d (wiped) commit %v after node %d's kill", l, f1, d, f2)
}

// leaderOf is the leader of topic's partition 0 as the cluster's Metadata reports it.
func leaderOf(t *testing.T, c *Cluster, topic string) int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Seeds()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	deadline := time.Now().Add(livenessBound)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		md, err := kadm.NewClient(cl).Metadata(ctx, topic)
		cancel()
		if err == nil {
			if td, ok := md.Topics[topic]; ok && len(td.Partitions) > 0 {
				if l := int(td.Partitions[0].Leader); l >= 1 && l <= len(c.Nodes) {
					return l
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no leader for %s: %v", topic, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestClusterFullDiskRecovers fills one node's disk, frees it, and then stops another node:
// the node whose disk was full must serve again without a restart. Its Raft host stalls on
// the failed write (WAL, or a state machine's: the partition log, the catalog) and retries
// with backoff until space is back; it used to stop for good at the first failed WAL write
// while the process kept running and refusing everything ("raft host closed").
func TestClusterFullDiskRecovers(t *testing.T) {
	t.Parallel()
	c := Start(t, 3, Options{TmpfsNode: 3})
	if c.Tmpfs == 0 {
		t.Skip("cannot mount a tmpfs")
	}
	createTopic(t, c, "full", 1)
	produceOK(t, c.Seeds(), "full", livenessBound)
	if err := c.FillDisk(); err != nil {
		t.Fatal(err)
	}
	for range 50 { // writes while the disk is full
		produceOK(t, c.Seeds(), "full", livenessBound)
	}
	c.FreeDisk()
	c.Node(1).Kill()
	d := produceOK(t, []string{c.Node(2).KafkaAddr, c.Node(3).KafkaAddr}, "full", livenessBound)
	t.Logf("nodes 2 and 3 (disk freed) commit %v after node 1's kill", d)
}
