package broker

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// logBytes is the raw content of node i's partition 0 of topic.
func (c *testNodes) logBytes(i int, topic string) []byte {
	c.t.Helper()
	tp, _ := c.broker[i].streams.Topic(topic)
	p := tp.Partition(0)
	rr, err := p.Read(0, 1<<30)
	if err != nil {
		c.t.Fatalf("node %d: %v", i+1, err)
	}
	defer rr.Release()
	b, err := rr.AppendTo(nil)
	if err != nil {
		c.t.Fatalf("node %d: %v", i+1, err)
	}
	return b
}

// waitEnd waits until node i's partition 0 of topic ends at end, durably (its high
// watermark, up to which it is read).
func (c *testNodes) waitEnd(i int, topic string, end int64) {
	c.t.Helper()
	tp, _ := c.broker[i].streams.Topic(topic)
	deadline := time.Now().Add(60 * time.Second)
	for p := tp.Partition(0); p.EndOffset() != end || p.HighWatermark() != end; {
		if time.Now().After(deadline) {
			c.t.Fatalf("node %d holds %d records, want %d", i+1, tp.Partition(0).EndOffset(), end)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A replicated partition's group snapshots by reference (its log holds the data) and so
// compacts its Raft log; a follower stopped meanwhile catches up from the entries the leader
// retained for it, and a restarted member resumes from its snapshot and checkpoint, every
// member holding the same batches at the same offsets.
func TestClusterPartitionSnapshots(t *testing.T) {
	t.Parallel()
	c := startNodesWith(t, 3, &[3]uint64{40, 10, 400})
	ctx := context.Background()
	retry(t, func() error {
		r, err := c.admin(0).CreateTopic(ctx, 1, 3, nil, "snap")
		if err == nil {
			err = r.Err
		}
		return err
	})
	c.waitTopic("snap", "", "")
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.kafka...), kgo.DefaultProduceTopic("snap"),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(100), kgo.RetryTimeout(60*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var n int64
	produce := func(count int) { // one batch, one Raft entry, each
		t.Helper()
		for range count {
			pctx, cancel := context.WithTimeout(ctx, 90*time.Second)
			err := cl.ProduceSync(pctx, &kgo.Record{Value: fmt.Appendf(nil, "r-%d", n)}).FirstErr()
			cancel()
			if err != nil {
				t.Fatalf("produce: %v", err)
			}
			n++
		}
	}
	produce(150)
	tp, _ := c.broker[0].streams.Topic("snap")
	snapFile := func(i int) string {
		return filepath.Join(c.broker[i].layout.Raft(), "snap", fmt.Sprintf("%020d.snap", partitionGroupID(tp.ID, 0)))
	}
	for i := range c.broker {
		c.waitEnd(i, "snap", n)
		if _, err := os.Stat(snapFile(i)); err != nil {
			t.Fatalf("node %d took no snapshot of the partition's group after 150 entries: %v", i+1, err)
		}
	}
	l := int(c.broker[0].streams.Node().Leader(tp.Partition(0)) - 1)
	f := (l + 1) % 3
	c.stop(f)
	produce(150) // fewer than RetainEntries: the leader keeps them for the stopped follower
	c.start(f)
	produce(10)
	for i := range c.broker {
		c.waitEnd(i, "snap", n)
	}
	want := c.logBytes(l, "snap")
	for i := range c.broker {
		if got := c.logBytes(i, "snap"); !bytes.Equal(got, want) {
			t.Fatalf("node %d's log (%d bytes) differs from the leader's (%d bytes)", i+1, len(got), len(want))
		}
	}
}
