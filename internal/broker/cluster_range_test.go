package broker

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// leaderOf is the node index leading partition 0 of topic, as live node i sees it (-1: none).
func (c *testNodes) leaderOf(i int, topic string) int {
	tp, ok := c.broker[i].streams.Topic(topic)
	if !ok {
		return -1
	}
	return int(c.broker[i].streams.Node().Leader(tp.Partition(0))) - 1
}

// waitLeader waits until live node i knows a leader of partition 0 of topic among the live nodes.
func (c *testNodes) waitLeader(i int, topic string) int {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if l := c.leaderOf(i, topic); l >= 0 && c.broker[l] != nil {
			return l
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no leader of %s-0", topic)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A follower stopped for more entries than the leader retains, and one stopped while the
// leader restarts (a restarted leader holds only the entries after its snapshot), is sent a
// snapshot of a log range it lacks: it fetches the range from another member, restores the
// snapshot and catches up, its log byte for byte the leader's; led by it, every acknowledged
// record is read back at its offset.
func TestClusterRangeFetch(t *testing.T) {
	t.Parallel()
	c := startNodesWith(t, 3, &[3]uint64{20, 5, 60})
	ctx := context.Background()
	retry(t, func() error {
		r, err := c.admin(0).CreateTopic(ctx, 1, 3, nil, "range")
		if err == nil {
			err = r.Err
		}
		return err
	})
	c.waitTopic("range", "", "")
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.kafka...), kgo.DefaultProduceTopic("range"),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(100), kgo.RetryTimeout(60*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	acked := map[int64]string{}
	var n int64
	produce := func(count int) { // one batch, one Raft entry, each
		t.Helper()
		for range count {
			v := fmt.Sprintf("r-%d", n)
			pctx, cancel := context.WithTimeout(ctx, 90*time.Second)
			r, err := cl.ProduceSync(pctx, &kgo.Record{Value: []byte(v)}).First()
			cancel()
			if err != nil {
				t.Fatalf("produce: %v", err)
			}
			acked[r.Offset] = v
			n++
		}
	}
	produce(30)
	l := c.waitLeader(0, "range")
	f := (l + 1) % 3
	c.stop(f)
	produce(200) // more than RetainEntries
	c.start(f)
	for i := range c.broker {
		c.waitEnd(i, "range", n)
	}

	// The leader restarts while another follower is stopped for fewer entries than it kept.
	l = c.waitLeader(f, "range")
	f = (l + 1) % 3
	c.stop(f)
	produce(40)
	c.stop(l)
	c.start(l)
	produce(5)
	c.start(f)
	produce(5)
	for i := range c.broker {
		c.waitEnd(i, "range", n)
	}
	l = c.waitLeader(f, "range")
	want := c.logBytes(l, "range")
	for i := range c.broker {
		if got := c.logBytes(i, "range"); !bytes.Equal(got, want) {
			t.Fatalf("node %d's log (%d bytes) differs from the leader's (%d bytes)", i+1, len(got), len(want))
		}
	}

	// Led by the caught-up follower, every acknowledged record reads back at its offset.
	for try := 0; c.waitLeader(f, "range") != f; try++ {
		if try == 20 {
			t.Fatal("the caught-up follower never became leader")
		}
		cur := c.waitLeader(f, "range")
		c.stop(cur)
		c.waitLeader(f, "range")
		c.start(cur)
		c.waitEnd(cur, "range", n)
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(c.kafka...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"range": {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	got := map[int64]string{}
	fctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for int64(len(got)) < n {
		fs := cons.PollFetches(fctx)
		if err := fctx.Err(); err != nil {
			t.Fatalf("read %d of %d records: %v", len(got), n, err)
		}
		fs.EachRecord(func(r *kgo.Record) { got[r.Offset] = string(r.Value) })
	}
	for off, v := range acked {
		if got[off] != v {
			t.Fatalf("acknowledged record %q at offset %d reads back as %q", v, off, got[off])
		}
	}
}
