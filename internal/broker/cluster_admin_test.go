package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestClusterDeleteTopicAndCreatePartitions: on a cluster node, CreatePartitions and
// DeleteTopics go through the metadata group: every node gets the new partitions (each a
// Raft group with a leader) or loses the topic, its partitions' Raft groups and files; a
// topic created again under the name starts empty; a restarted node keeps the deletion.
func TestClusterDeleteTopicAndCreatePartitions(t *testing.T) {
	t.Parallel()
	c := startNodes(t, 3)
	ctx := context.Background()
	retry(t, func() error {
		r, err := c.admin(0).CreateTopic(ctx, 1, 3, nil, "grow")
		if err == nil {
			err = r.Err
		}
		return err
	})
	c.waitTopic("grow", "", "")
	produce := func(n int, partition int32) {
		t.Helper()
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.kafka...), kgo.DefaultProduceTopic("grow"),
			kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.RecordRetries(100), kgo.RetryTimeout(60*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		var recs []*kgo.Record
		for i := range n {
			recs = append(recs, &kgo.Record{Partition: partition, Value: fmt.Appendf(nil, "%d-%d", partition, i)})
		}
		pctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		defer cancel()
		if err := cl.ProduceSync(pctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce to partition %d: %v", partition, err)
		}
	}
	produce(50, 0)

	// CreatePartitions through node 2: every node gets partitions 1 and 2, replicated.
	retry(t, func() error {
		rs, err := c.admin(1).CreatePartitions(ctx, 2, "grow")
		if err == nil {
			err = rs["grow"].Err
		}
		return err
	})
	for i, b := range c.broker {
		waitFor(t, fmt.Sprintf("node %d to hold 3 partitions, each with a leader", i+1), func() bool {
			tp, ok := b.streams.Topic("grow")
			if !ok || tp.NumPartitions() != 3 {
				return false
			}
			for _, p := range tp.Partitions() {
				if b.streams.Node().Leader(p) < 1 {
					return false
				}
			}
			return true
		})
	}
	produce(50, 2)
	for i := range c.broker {
		p := c.partition(i, "grow")
		tp := p.Topic
		waitFor(t, fmt.Sprintf("node %d to hold partition 2's records", i+1), func() bool {
			return tp.Partition(2).HighWatermark() == 50
		})
	}
	// Asking for fewer partitions is refused, as Kafka refuses it.
	if rs, err := c.admin(2).UpdatePartitions(ctx, 2, "grow"); err == nil && rs["grow"].Err == nil {
		t.Fatal("decreasing the partition count was accepted")
	}

	// DeleteTopics through node 3: every node loses the topic and its partitions' groups.
	tp, _ := c.broker[0].streams.Topic("grow")
	groups := []uint64{}
	for _, p := range tp.Partitions() {
		groups = append(groups, partitionGroupID(p.Topic.ID, p.Index))
	}
	retry(t, func() error {
		rs, err := c.admin(2).DeleteTopics(ctx, "grow")
		if err == nil {
			err = rs["grow"].Err
		}
		return err
	})
	for i, b := range c.broker {
		waitFor(t, fmt.Sprintf("node %d to delete the topic and its Raft groups", i+1), func() bool {
			if _, ok := b.streams.Topic("grow"); ok {
				return false
			}
			for _, g := range groups {
				if b.raft.Group(g) != nil {
					return false
				}
			}
			return true
		})
	}

	// Created again under the name: a new topic, empty, replicated, writable.
	retry(t, func() error {
		r, err := c.admin(0).CreateTopic(ctx, 1, 3, nil, "grow")
		if err == nil {
			err = r.Err
		}
		return err
	})
	c.waitTopic("grow", "", "")
	for i := range c.broker {
		if p := c.partition(i, "grow"); p.HighWatermark() != 0 || p.Topic.ID == tp.ID {
			t.Fatalf("node %d: the new topic holds %d records (id reused: %v)", i+1, p.HighWatermark(), p.Topic.ID == tp.ID)
		}
	}
	produce(10, 0)

	// A restarted node keeps the deletion and the new topic.
	c.stop(1)
	c.start(1)
	c.waitTopic("grow", "", "")
	waitFor(t, "the restarted node to catch up", func() bool {
		return c.partition(1, "grow").HighWatermark() == 10
	})
	if p := c.partition(1, "grow"); p.Topic.ID == tp.ID || p.Topic.NumPartitions() != 1 {
		t.Fatalf("restarted node: topic id reused %v, %d partitions", p.Topic.ID == tp.ID, p.Topic.NumPartitions())
	}
}

// waitFor polls cond for up to a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
