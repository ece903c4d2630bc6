package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/yardmq/yard/internal/stream"
	"github.com/yardmq/yard/test/harness"
)

func TestParsePeers(t *testing.T) {
	t.Parallel()
	got, err := ParsePeers("1=127.0.0.1:7001, 2=host-b:7002,3=[::1]:7003")
	if err != nil || len(got) != 3 || got[2] != "host-b:7002" || got[3] != "[::1]:7003" {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{"", "1=a", "0=a:1", "x=a:1", "1=a:1,1=b:2", "1:a:1"} {
		if _, err := ParsePeers(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// testNodes runs a cluster of n brokers in this process, each with its own data directory.
type testNodes struct {
	t      *testing.T
	limits *[3]uint64               // the Raft hosts' snapshot and retention counts, if set
	config func(i int, cfg *Config) // changes node i's configuration, if set
	peers  string
	dirs   []string
	kafka  []string // fixed Kafka addresses, so that a restarted node keeps its address
	broker []*Broker
}

// freeAddr is a loopback address for a listener the test hands to yard, reserved outside the
// kernel's ephemeral range so that no port-0 socket of a parallel test takes it meanwhile.
func freeAddr(t *testing.T) string { return harness.ReservePort(t) }

func startNodes(t *testing.T, n int) *testNodes {
	return startNodesWith(t, n, nil)
}

func startNodesWith(t *testing.T, n int, limits *[3]uint64) *testNodes {
	return startNodesConfig(t, n, limits, nil)
}

func startNodesConfig(t *testing.T, n int, limits *[3]uint64, config func(i int, cfg *Config)) *testNodes {
	c := &testNodes{t: t, broker: make([]*Broker, n), limits: limits, config: config}
	var peers []string
	for i := range n {
		peers = append(peers, fmt.Sprintf("%d=%s", i+1, freeAddr(t)))
		c.dirs = append(c.dirs, t.TempDir())
		c.kafka = append(c.kafka, freeAddr(t))
	}
	c.peers = strings.Join(peers, ",")
	for i := range n {
		c.start(i)
	}
	t.Cleanup(func() {
		for _, b := range c.broker {
			if b != nil {
				b.Shutdown(context.Background())
			}
		}
	})
	return c
}

func (c *testNodes) start(i int) {
	c.t.Helper()
	cfg := DefaultConfig()
	cfg.DataDir = c.dirs[i]
	cfg.NodeID = int32(i + 1)
	cfg.Peers = c.peers
	cfg.KafkaListen = c.kafka[i]
	cfg.AMQPListen, cfg.HTTPListen = "", ""
	cfg.raftLimits = c.limits
	if c.config != nil {
		c.config(i, &cfg)
	}
	b, err := New(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.broker[i] = b
}

func (c *testNodes) stop(i int) {
	c.t.Helper()
	if err := c.broker[i].Shutdown(context.Background()); err != nil {
		c.t.Fatal(err)
	}
	c.broker[i] = nil
}

func (c *testNodes) admin(i int) *kadm.Client {
	c.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.kafka[i]))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// waitTopic waits until every running node has topic, with the same id, and the config
// key=value (if key is set).
func (c *testNodes) waitTopic(topic, key, value string) {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ok := true
		var id [16]byte
		for i, b := range c.broker {
			if b == nil {
				continue
			}
			tp, found := b.streams.Topic(topic)
			if !found || (i > 0 && id != [16]byte{} && tp.ID != id) {
				ok = false
				break
			}
			id = tp.ID
			if key != "" && configValue(b, topic, key) != value {
				ok = false
				break
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("topic %q (%s=%s) did not reach every node", topic, key, value)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// leader is the node id of the leader of topic's partition 0 once every running node but
// exclude (an index, -1 for none) agrees on it, and it is not exclude.
func (c *testNodes) leader(topic string, exclude int) int32 {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		l := int32(-2)
		agree := true
		for i, b := range c.broker {
			if b == nil || i == exclude {
				continue
			}
			tp, _ := b.streams.Topic(topic)
			nl := b.streams.Node().Leader(tp.Partition(0))
			if nl < 1 || int(nl-1) == exclude || (l != -2 && nl != l) {
				agree = false
			}
			l = nl
		}
		if agree {
			return l
		}
		if time.Now().After(deadline) {
			c.t.Fatal("no agreed leader")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// retry runs f until it stops failing with a retriable cluster condition (no leader yet).
func retry(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestClusterReplicatesCatalog(t *testing.T) {
	t.Parallel()
	c := startNodes(t, 3)
	ctx := context.Background()
	// A topic created through node 2 appears, with one id and its configs, on every node.
	retry(t, func() error {
		r, err := c.admin(1).CreateTopic(ctx, 3, -1, map[string]*string{"retention.ms": kadm.StringPtr("3600000")}, "orders")
		if err == nil {
			err = r.Err
		}
		return err
	})
	c.waitTopic("orders", "retention.ms", "3600000")
	// A config changed through node 3 changes everywhere.
	retry(t, func() error {
		rs, err := c.admin(2).AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: kadm.StringPtr("7200000")}}, "orders")
		if err == nil {
			err = rs[0].Err
		}
		return err
	})
	c.waitTopic("orders", "retention.ms", "7200000")
	// Creating it again through node 1 is refused as Kafka does.
	r, err := c.admin(0).CreateTopic(ctx, 1, -1, nil, "orders")
	if err == nil {
		err = r.Err
	}
	if err != kerr.TopicAlreadyExists {
		t.Fatalf("second creation: %v, want TOPIC_ALREADY_EXISTS", err)
	}
	// A node that was down catches up on what it missed, and keeps it across a restart.
	c.stop(0)
	retry(t, func() error {
		r, err := c.admin(2).CreateTopic(ctx, 1, -1, nil, "while-down")
		if err == nil {
			err = r.Err
		}
		return err
	})
	c.start(0)
	c.waitTopic("while-down", "", "")
	c.waitTopic("orders", "retention.ms", "7200000")
}

func configValue(b *Broker, topic, key string) string {
	cfgs, _ := b.streams.TopicConfigs(topic)
	for _, c := range cfgs {
		if c.Name == key {
			return c.Value
		}
	}
	return ""
}

// TestClusterReplicatedPartition produces with acks=all to a replicated partition, stops its
// leader, and checks that another node takes over and that no acknowledged record is lost.
func TestClusterReplicatedPartition(t *testing.T) {
	t.Parallel()
	c := startNodes(t, 3)
	ctx := context.Background()
	retry(t, func() error {
		r, err := c.admin(0).CreateTopic(ctx, 1, 3, nil, "events")
		if err == nil {
			err = r.Err
		}
		return err
	})
	c.waitTopic("events", "", "")
	l := c.leader("events", -1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.kafka...), kgo.DefaultProduceTopic("events"),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(100), kgo.RetryTimeout(60*time.Second))
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
		pctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		defer cancel()
		for _, r := range cl.ProduceSync(pctx, recs...) {
			if r.Err != nil {
				t.Fatalf("produce: %v", r.Err)
			}
			acked[string(r.Record.Value)] = true
		}
	}
	produce("before", 300)
	// Every member's log holds the same records: the followers applied the committed batches.
	for i, b := range c.broker {
		tp, _ := b.streams.Topic("events")
		p := tp.Partition(0)
		deadline := time.Now().Add(30 * time.Second)
		for p.HighWatermark() < 300 {
			if time.Now().After(deadline) {
				t.Fatalf("node %d holds %d records", i+1, p.HighWatermark())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	stopped := time.Now()
	c.stop(int(l - 1))
	nl := c.leader("events", int(l-1))
	t.Logf("leader %d stopped; node %d leads after %v", l, nl, time.Since(stopped))
	produce("after", 300)
	// Read everything back from a survivor: every acknowledged record, once.
	cons, err := kgo.NewClient(kgo.SeedBrokers(c.kafka[nl-1]), kgo.ConsumeTopics("events"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	seen := map[string]int{}
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for len(seen) < len(acked) {
		fs := cons.PollFetches(cctx)
		if cctx.Err() != nil {
			t.Fatalf("read %d of %d acknowledged records", len(seen), len(acked))
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++ })
	}
	for v := range acked {
		if seen[v] != 1 {
			t.Fatalf("acknowledged record %q read %d times", v, seen[v])
		}
	}
	// The leader's ISR drops the stopped node; restarted, it replays its log from its
	// checkpoint and the Raft log, holds every record once, and is in sync again.
	isr := func() []int32 {
		tp, _ := c.broker[nl-1].streams.Topic("events")
		return c.broker[nl-1].streams.Node().ISR(tp.Partition(0))
	}
	waitISR := func(n int) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for len(isr()) != n {
			if time.Now().After(deadline) {
				t.Fatalf("ISR %v, want %d members", isr(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitISR(2)
	if slices.Contains(isr(), l) {
		t.Fatalf("ISR %v holds the stopped node %d", isr(), l)
	}
	// min.insync.replicas=3 refuses acks=all while only two replicas are in sync.
	retry(t, func() error {
		rs, err := c.admin(int(nl-1)).AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "min.insync.replicas", Value: kadm.StringPtr("3")}}, "events")
		if err == nil {
			err = rs[0].Err
		}
		return err
	})
	c.waitTopic("events", "min.insync.replicas", "3")
	strict, err := kgo.NewClient(kgo.SeedBrokers(c.kafka[nl-1]), kgo.DefaultProduceTopic("events"), kgo.RecordRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	defer strict.Close()
	if err := strict.ProduceSync(ctx, &kgo.Record{Value: []byte("refused")}).FirstErr(); !errors.Is(err, kerr.NotEnoughReplicas) {
		t.Fatalf("acks=all with 2 of 3 in sync under min.insync.replicas=3: %v", err)
	}
	c.start(int(l - 1))
	waitISR(3)
	rtp, _ := c.broker[l-1].streams.Topic("events")
	deadline := time.Now().Add(30 * time.Second)
	for rtp.Partition(0).HighWatermark() != int64(len(acked)) {
		if time.Now().After(deadline) {
			t.Fatalf("restarted node holds %d records, want %d", rtp.Partition(0).HighWatermark(), len(acked))
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A produce to a follower is refused with NOT_LEADER_OR_FOLLOWER (the client retried it).
	for i, b := range c.broker {
		if b == nil || int32(i+1) == nl {
			continue
		}
		ftp, _ := b.streams.Topic("events")
		_, err := ftp.Partition(0).Append([]byte("x"))
		if !errors.Is(err, stream.ErrNotLeader) {
			t.Fatalf("append on follower %d: %v", i+1, err)
		}
	}
}
