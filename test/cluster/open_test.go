package cluster

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
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
// the partition's leader stays, then, once it is back in sync, stops the other follower: the
// leader and the wiped node must commit. The leader remembered how far the follower had
// replicated (Raft assumes acknowledged entries stay on disk) and never sent below that: in a
// fault run its probes went on forever ("decreased progress of 1 to [StateProbe match=7
// next=8]", rejected with hint index 1). Now the leader removes and adds back a member whose
// rejection shows it lost its log (resetting its progress), and the member neither votes nor
// campaigns until it caught up (internal/cluster/rejoin.go).
func TestClusterEmptyDataDir(t *testing.T) {
	t.Parallel()
	c := Start(t, 3, Options{})
	createTopic(t, c, "wiped", 1)
	for range 20 {
		produceOK(t, c.Seeds(), "wiped", livenessBound)
	}
	l := leaderOf(t, c, "wiped")
	f1, f2 := 1+l%3, 1+(l+1)%3
	c.Wipe(f1)
	c.Node(f1).Restart()
	// Once the wiped node has the topic again (its catalog caught up), it rejects the
	// leader's appends (its log is empty); the leader resets it, and it is in sync again
	// only once it replicates anew (until then its old progress does not count).
	waitTopicOn(t, c.Node(f1).KafkaAddr, "wiped")
	for range 3 {
		produceOK(t, c.Seeds(), "wiped", livenessBound)
	}
	waitInSync(t, c, "wiped", l, f1)
	c.Node(f2).Kill()
	d := produceOK(t, []string{c.Node(l).KafkaAddr, c.Node(f1).KafkaAddr}, "wiped", livenessBound)
	t.Logf("leader %d and node %d (wiped) commit %v after node %d's kill", l, f1, d, f2)
	c.Node(f2).Restart()
	recs, _, err := ReadAll(context.Background(), []string{c.Node(f1).KafkaAddr}, "wiped", 1, livenessBound)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(recs[0]); n < 24 {
		t.Fatalf("read %d records back, want 24", n)
	}
}

// waitTopicOn waits until the broker at addr itself knows topic and a leader for its
// partition 0.
func waitTopicOn(t *testing.T, addr, topic string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	deadline := time.Now().Add(livenessBound)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl.SeedBrokers()[0])
		cancel()
		if err == nil && len(resp.Topics) == 1 && resp.Topics[0].ErrorCode == 0 && len(resp.Topics[0].Partitions) > 0 && resp.Topics[0].Partitions[0].Leader >= 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not know %s: %v", addr, topic, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitInSync waits until node leader, leading topic's partition 0, lists node among its
// in-sync replicas (only the leader knows: another node lists every replica).
func waitInSync(t *testing.T, c *Cluster, topic string, leader, node int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Node(leader).KafkaAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	deadline := time.Now().Add(livenessBound)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl.Broker(leader))
		cancel()
		if err == nil && len(resp.Topics) == 1 && len(resp.Topics[0].Partitions) > 0 {
			p := resp.Topics[0].Partitions[0]
			if p.Leader == int32(leader) && slices.Contains(p.ISR, int32(node)) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d not in sync for %s: %v", node, topic, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
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

// TestClusterTwoWipes empties the data dirs of both followers of a partition, one after the
// other, the second before the leader finished resetting the first: the leader still holds
// every entry and both nodes are back, so the group must commit again. It used to stay stuck
// (the fault runs hit it: an empty-dir round right after another node's, in the metadata
// group and in partitions): the leader reset a member's progress by removing it and adding it
// back through the log, and the removal needed a majority that neither wiped member could
// give. The leader now resets it on itself only (internal/cluster/rejoin.go), which brings both
// back into a group whose leader keeps its leadership (TestTwoWipedFollowersRejoin). Still
// open: a group whose leader was one of the wiped nodes (often the metadata group) has lost a
// majority; the holder alone cannot be elected and the wiped nodes vote only once caught up
// with a leader.
func TestClusterTwoWipes(t *testing.T) {
	openDefect(t, "two of three members that lost their data at once leave a group that lost its leader with them without a leader")
	t.Parallel()
	c := Start(t, 3, Options{})
	createTopic(t, c, "twice", 1)
	for range 20 {
		produceOK(t, c.Seeds(), "twice", livenessBound)
	}
	l := leaderOf(t, c, "twice")
	f1, f2 := 1+l%3, 1+(l+1)%3
	c.Wipe(f1)
	c.Node(f1).Restart()
	c.Wipe(f2)
	c.Node(f2).Restart()
	d := produceOK(t, c.Seeds(), "twice", livenessBound)
	t.Logf("nodes %d and %d wiped one after the other: a produce committed %v later", f1, f2, d)
}
