package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/yardmq/yard/test/harness"
)

// startCluster runs n `yard serve --node-id N --cluster-listen H:P --peers ... [extra]` processes.
func startCluster(t *testing.T, n int, extra ...string) []*harness.Yard {
	t.Helper()
	addrs := make([]string, n)
	var peers []string
	for i := range addrs {
		addrs[i] = harness.ReservePort(t)
		peers = append(peers, fmt.Sprintf("%d=%s", i+1, addrs[i]))
	}
	ys := make([]*harness.Yard, n)
	for i := range ys {
		ys[i] = harness.Start(t, harness.WithArgs(append([]string{"--node-id", fmt.Sprint(i + 1),
			"--cluster-listen", addrs[i], "--peers", strings.Join(peers, ",")}, extra...)...))
	}
	return ys
}

func adminOf(t *testing.T, y *harness.Yard) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(y.KafkaAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// eventually retries f (a cluster may have no leader yet) until it succeeds.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// createTopic creates topic with n partitions and the default replication factor through
// node y, retrying until the cluster has a metadata leader.
func createTopic(t *testing.T, y *harness.Yard, topic string, n int32) {
	t.Helper()
	eventually(t, "create "+topic, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		r, err := adminOf(t, y).CreateTopic(ctx, n, -1, nil, topic)
		if err == nil {
			err = r.Err
		}
		return err
	})
}

// kafkaSeeds is every node's Kafka address, for a client that may use any of them.
func kafkaSeeds(ys []*harness.Yard) []string {
	var seeds []string
	for _, y := range ys {
		seeds = append(seeds, y.KafkaAddr)
	}
	return seeds
}

// topicIDOn is topic's id as node y's Metadata reports it.
func topicIDOn(t *testing.T, y *harness.Yard, topic string) (kadm.TopicID, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	td, err := adminOf(t, y).ListTopics(ctx, topic)
	if err != nil {
		return kadm.TopicID{}, err
	}
	d, ok := td[topic]
	if !ok || d.Err != nil {
		return kadm.TopicID{}, fmt.Errorf("topic %q not on %s: %v", topic, y.KafkaAddr, d.Err)
	}
	return d.ID, nil
}

// TestServeCluster starts three processes with the cluster flags: a topic created through one
// node exists on every node with one id; a node killed with SIGKILL comes back from its WAL
// and learns what it missed.
func TestServeCluster(t *testing.T) {
	t.Parallel()
	ys := startCluster(t, 3)
	create := func(y *harness.Yard, topic string) { createTopic(t, y, topic, 2) }
	sameEverywhere := func(topic string, nodes ...*harness.Yard) {
		var want kadm.TopicID
		eventually(t, topic+" on every node", func() error {
			for i, y := range nodes {
				id, err := topicIDOn(t, y, topic)
				if err != nil {
					return err
				}
				if i == 0 {
					want = id
				} else if id != want {
					return fmt.Errorf("node %s has id %v, want %v", y.KafkaAddr, id, want)
				}
			}
			return nil
		})
	}
	create(ys[1], "orders")
	sameEverywhere("orders", ys...)
	ys[2].Kill()
	create(ys[0], "while-down")
	ys[2].Restart()
	sameEverywhere("while-down", ys...)
	sameEverywhere("orders", ys...)
}

// leaderOf asks y's Metadata for the leader of topic's partition 0 (-1: none).
func leaderOf(t *testing.T, y *harness.Yard, topic string) int32 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	md, err := adminOf(t, y).Metadata(ctx, topic)
	if err != nil {
		return -1
	}
	td, ok := md.Topics[topic]
	if !ok || td.Err != nil || len(td.Partitions) == 0 || td.Partitions[0].Err != nil {
		return -1
	}
	return td.Partitions[0].Leader
}

// TestServeClusterKillLeader produces with acks=all to a replicated partition of three
// processes, kills its leader with SIGKILL, and checks that a new leader is elected (the
// time is logged; loopback target: under 2 s) and that no acknowledged record is lost.
func TestServeClusterKillLeader(t *testing.T) {
	t.Parallel()
	ys := startCluster(t, 3)
	createTopic(t, ys[0], "events", 1)
	var l int32
	eventually(t, "a leader known to every node", func() error {
		l = leaderOf(t, ys[0], "events")
		for _, y := range ys[1:] {
			if got := leaderOf(t, y, "events"); got != l || l < 1 {
				return fmt.Errorf("leaders %d and %d", l, got)
			}
		}
		return nil
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkaSeeds(ys)...), kgo.DefaultProduceTopic("events"),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(1000), kgo.RetryTimeout(60*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	acked := map[string]bool{}
	produce := func(prefix string, n int) {
		t.Helper()
		var recs []*kgo.Record
		for i := range n {
			recs = append(recs, &kgo.Record{Value: []byte(fmt.Sprintf("%s-%d", prefix, i))})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		for _, r := range cl.ProduceSync(ctx, recs...) {
			if r.Err != nil {
				t.Fatalf("produce: %v", r.Err)
			}
			acked[string(r.Record.Value)] = true
		}
	}
	produce("before", 500)
	killed := ys[l-1]
	start := time.Now()
	killed.Kill()
	var nl int32
	survivor := ys[l%3]
	eventually(t, "a new leader", func() error {
		if nl = leaderOf(t, survivor, "events"); nl < 1 || nl == l {
			return fmt.Errorf("leader %d", nl)
		}
		return nil
	})
	t.Logf("node %d killed; node %d leads %v later", l, nl, time.Since(start))
	produce("after", 500)
	killed.Restart()
	cons, err := kgo.NewClient(kgo.SeedBrokers(survivor.KafkaAddr), kgo.ConsumeTopics("events"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	seen := map[string]int{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for len(seen) < len(acked) {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d acknowledged records", len(seen), len(acked))
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++ })
	}
	for v := range acked {
		if seen[v] != 1 {
			t.Fatalf("acknowledged record %q read %d times", v, seen[v])
		}
	}
}
