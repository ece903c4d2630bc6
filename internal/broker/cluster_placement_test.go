package broker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// createTopic creates topic with n partitions and replication factor rf through node i,
// retrying while the metadata group elects its leader.
func (c *testNodes) createTopic(i int, topic string, n int32, rf int16) {
	c.t.Helper()
	retry(c.t, func() error {
		r, err := c.admin(i).CreateTopic(context.Background(), n, rf, nil, topic)
		if err == nil {
			err = r.Err
		}
		return err
	})
	c.waitTopic(topic, "", "")
}

// placement waits until every running node's Metadata lists, for every partition of
// topic, rf replicas (the same on every node) and a leader among them, and returns them.
func (c *testNodes) placement(topic string, rf int) map[int32]kadm.PartitionDetail {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var want map[int32]kadm.PartitionDetail
		err := func() error {
			for i, b := range c.broker {
				if b == nil {
					continue
				}
				md, err := c.admin(i).Metadata(context.Background(), topic)
				if err != nil {
					return err
				}
				td := md.Topics[topic]
				if td.Err != nil {
					return td.Err
				}
				for p, pd := range td.Partitions {
					if len(pd.Replicas) != rf || !slices.Contains(pd.Replicas, pd.Leader) || pd.Err != nil {
						return fmt.Errorf("node %d: %s-%d: leader %d, replicas %v, err %v", i+1, topic, p, pd.Leader, pd.Replicas, pd.Err)
					}
					if want != nil && !slices.Equal(slices.Sorted(slices.Values(want[p].Replicas)), slices.Sorted(slices.Values(pd.Replicas))) {
						return fmt.Errorf("node %d: %s-%d: replicas %v, another node says %v", i+1, topic, p, pd.Replicas, want[p].Replicas)
					}
				}
				if want == nil {
					want = td.Partitions
				}
			}
			return nil
		}()
		if err == nil {
			return want
		}
		if time.Now().After(deadline) {
			c.t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestClusterReplicaPlacement creates topics of replication factor 1 and 2 on 3 nodes and
// checks the placement (Metadata from every node, partition directories on replicas only),
// produce and consume through any seed, availability when a non-replica stops, and a
// replica of two restarting.
func TestClusterReplicaPlacement(t *testing.T) {
	t.Parallel()
	c := startNodes(t, 3)
	ctx := context.Background()
	c.createTopic(0, "one", 3, 1)
	c.createTopic(1, "two", 3, 2)
	c.createTopic(2, "dflt", 1, -1)
	// More replicas than nodes is refused with Kafka's code; the default is min(3, nodes).
	r, err := c.admin(0).CreateTopic(ctx, 1, 4, nil, "four")
	if err == nil {
		err = r.Err
	}
	if !errors.Is(err, kerr.InvalidReplicationFactor) {
		t.Fatalf("replication factor 4 on 3 nodes: %v, want INVALID_REPLICATION_FACTOR", err)
	}
	c.placement("dflt", 3)
	one := c.placement("one", 1)
	// Rack-unaware striping: three partitions of one replica land on three nodes.
	var firsts []int32
	for _, pd := range one {
		firsts = append(firsts, pd.Replicas[0])
	}
	if slices.Sort(firsts); !slices.Equal(firsts, []int32{1, 2, 3}) {
		t.Fatalf("replicas of one's partitions: %v, want one on each node", firsts)
	}
	two := c.placement("two", 2)
	// Only replicas hold a partition (a Partition and its directory).
	for _, topic := range []string{"one", "two"} {
		for p, pd := range c.placement(topic, len(map[string][]int32{"one": {1}, "two": {1, 2}}[topic])) {
			for i, b := range c.broker {
				tp, _ := b.streams.Topic(topic)
				_, statErr := os.Stat(b.layout.Partition(topic, p))
				replica := slices.Contains(pd.Replicas, int32(i+1))
				if held := tp.Partition(p) != nil; held != replica || (statErr == nil) != replica {
					t.Fatalf("node %d, %s-%d (replicas %v): partition held %v, directory: %v", i+1, topic, p, pd.Replicas, held, statErr)
				}
			}
		}
	}
	// New partitions get as many replicas as the topic's first.
	retry(t, func() error {
		rs, err := c.admin(2).CreatePartitions(ctx, 1, "two")
		if err == nil {
			err = rs["two"].Err
		}
		return err
	})
	if two := c.placement("two", 2); len(two) != 4 {
		t.Fatalf("two has %d partitions after adding one, want 4", len(two))
	}
	// A node that is not a partition's replica answers requests for it NOT_LEADER_OR_FOLLOWER,
	// naming the leader (KIP-951).
	for p, pd := range one {
		non := int32(1 + pd.Replicas[0]%3) // a node other than the only replica
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.kafka[non-1]))
		if err != nil {
			t.Fatal(err)
		}
		preq := kmsg.NewPtrProduceRequest()
		preq.Version, preq.Acks, preq.TimeoutMillis = 10, -1, 5000
		pt := kmsg.NewProduceRequestTopic()
		pt.Topic = "one"
		if tp, ok := c.broker[0].streams.Topic("one"); ok {
			pt.TopicID = tp.ID // the client sends v13+ when the broker offers it
		}
		pp := kmsg.NewProduceRequestTopicPartition()
		pp.Partition = p
		pt.Partitions = append(pt.Partitions, pp)
		preq.Topics = append(preq.Topics, pt)
		presp, err := preq.RequestWith(ctx, cl.Broker(int(non)))
		if err != nil {
			t.Fatal(err)
		}
		sp := presp.Topics[0].Partitions[0]
		if sp.ErrorCode != kerr.NotLeaderForPartition.Code || sp.CurrentLeader.LeaderID != pd.Leader {
			t.Fatalf("produce to one-%d on node %d: code %d, leader hint %d, want NOT_LEADER_OR_FOLLOWER and %d", p, non, sp.ErrorCode, sp.CurrentLeader.LeaderID, pd.Leader)
		}
		lreq := kmsg.NewPtrListOffsetsRequest()
		lt := kmsg.NewListOffsetsRequestTopic()
		lt.Topic = "one"
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Partition, lp.Timestamp = p, -1
		lt.Partitions = append(lt.Partitions, lp)
		lreq.Topics = append(lreq.Topics, lt)
		lresp, err := lreq.RequestWith(ctx, cl.Broker(int(non)))
		if err != nil {
			t.Fatal(err)
		}
		if code := lresp.Topics[0].Partitions[0].ErrorCode; code != kerr.NotLeaderForPartition.Code {
			t.Fatalf("list offsets of one-%d on node %d: code %d, want NOT_LEADER_OR_FOLLOWER", p, non, code)
		}
		cl.Close()
	}
	// Produce to every partition through each seed alone, then read everything back through
	// each seed alone.
	produce := func(seed int, topic string, partition int32, value string) {
		t.Helper()
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.kafka[seed]), kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(100), kgo.RetryTimeout(60*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		pctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if err := cl.ProduceSync(pctx, &kgo.Record{Topic: topic, Partition: partition, Value: []byte(value)}).FirstErr(); err != nil {
			t.Fatalf("produce %s through node %d: %v", value, seed+1, err)
		}
	}
	want := map[string]bool{}
	for seed := range c.broker {
		for _, topic := range []string{"one", "two"} {
			for p := range int32(3) {
				v := fmt.Sprintf("%s-%d-via-%d", topic, p, seed+1)
				produce(seed, topic, p, v)
				want[v] = true
			}
		}
	}
	consume := func(seed int, topics []string, n int) map[string]bool {
		t.Helper()
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.kafka[seed]), kgo.ConsumeTopics(topics...),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		seen := map[string]bool{}
		for len(seen) < n {
			fs := cl.PollFetches(cctx)
			if cctx.Err() != nil {
				t.Fatalf("through node %d: read %d of %d records", seed+1, len(seen), n)
			}
			fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
		}
		return seen
	}
	for seed := range c.broker {
		if got := consume(seed, []string{"one", "two"}, len(want)); len(got) != len(want) {
			t.Fatalf("through node %d: read %d records, want %d", seed+1, len(got), len(want))
		}
	}
	// Stopping the node that is not a replica of two-0 leaves two-0 writable.
	pd := two[0]
	var other int
	for i := range c.broker {
		if !slices.Contains(pd.Replicas, int32(i+1)) {
			other = i
		}
	}
	c.stop(other)
	survivor := int(pd.Replicas[0] - 1)
	produce(survivor, "two", 0, "two-0-without-non-replica")
	c.start(other)
	c.placement("two", 2)
	// A partition of two replicas is a Raft group of two voters: it commits with both, so
	// losing one stops its writes (unlike Kafka's ISR with min.insync.replicas=1); the
	// replica back, it serves again with every record.
	leader := int(pd.Leader - 1)
	c.stop(leader)
	c.start(leader)
	c.placement("two", 2)
	produce(other, "two", 0, "two-0-after-a-replica-restarted")
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.kafka[other]), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		"two": {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	seen := map[string]bool{}
	for !seen["two-0-after-a-replica-restarted"] {
		fs := cl.PollFetches(cctx)
		if cctx.Err() != nil {
			t.Fatalf("two-0 after replica %d restarted: read %v", leader+1, seen)
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
	}
	for _, v := range []string{"two-0-via-1", "two-0-via-2", "two-0-via-3", "two-0-without-non-replica"} {
		if !seen[v] {
			t.Fatalf("two-0 lost %q after replica %d restarted: %v", v, leader+1, seen)
		}
	}
}
