package broker

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	rb "github.com/yardmq/yard/internal/recordbatch"
	"github.com/yardmq/yard/internal/stream"
)

// TestClusterLeaderEpochs: across a leader change, OffsetForLeaderEpoch gives each epoch's
// end from the batches' stamped epochs, a stale current epoch is fenced, a follower refuses
// requests meant for the leader and names the leader (KIP-951), and ListOffsets reports the
// epoch an offset was written in.
func TestClusterLeaderEpochs(t *testing.T) {
	t.Parallel()
	c := startNodes(t, 3)
	ctx := context.Background()
	retry(t, func() error {
		r, err := c.admin(0).CreateTopic(ctx, 1, 3, nil, "epochs")
		if err == nil {
			err = r.Err
		}
		return err
	})
	c.waitTopic("epochs", "", "")
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.kafka...), kgo.DefaultProduceTopic("epochs"),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(100), kgo.RetryTimeout(60*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	produce := func(n int) {
		t.Helper()
		var recs []*kgo.Record
		for i := range n {
			recs = append(recs, &kgo.Record{Value: []byte(strconv.Itoa(i))})
		}
		pctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		defer cancel()
		if err := cl.ProduceSync(pctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	produce(100)
	l := c.leader("epochs", -1)
	first := c.partition(int(l-1), "epochs").LeaderEpoch()
	follower := int(l % 3) // an index: node l%3+1
	topicID := c.partition(follower, "epochs").Topic.ID

	// A follower refuses Produce and Fetch with NOT_LEADER_OR_FOLLOWER and names the leader.
	raw := c.rawClient(follower)
	prod := kmsg.NewPtrProduceRequest()
	prod.Acks, prod.TimeoutMillis = -1, 5000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic, pt.TopicID = "epochs", topicID
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = oneRecordBatch()
	pt.Partitions = append(pt.Partitions, pp)
	prod.Topics = append(prod.Topics, pt)
	resp, err := raw.Broker(follower+1).Request(ctx, prod)
	if err != nil {
		t.Fatal(err)
	}
	pr := resp.(*kmsg.ProduceResponse)
	ps := pr.Topics[0].Partitions[0]
	if ps.ErrorCode != kerr.NotLeaderForPartition.Code || ps.CurrentLeader.LeaderID != l || ps.CurrentLeader.LeaderEpoch != first {
		t.Fatalf("produce on follower (v%d): error %d, current leader %+v; want NOT_LEADER_OR_FOLLOWER naming node %d in epoch %d",
			pr.Version, ps.ErrorCode, ps.CurrentLeader, l, first)
	}
	checkEndpoint(t, c, l, len(pr.Brokers), func(i int) (int32, string, int32) {
		return pr.Brokers[i].NodeID, pr.Brokers[i].Host, pr.Brokers[i].Port
	})
	fetch := kmsg.NewPtrFetchRequest()
	fetch.MaxWaitMillis, fetch.MaxBytes, fetch.ReplicaID = 0, 1<<20, -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic, ft.TopicID = "epochs", topicID
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes, fp.CurrentLeaderEpoch = 1<<20, -1
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	resp, err = raw.Broker(follower+1).Request(ctx, fetch)
	if err != nil {
		t.Fatal(err)
	}
	fr := resp.(*kmsg.FetchResponse)
	fs := fr.Topics[0].Partitions[0]
	if fr.Version < 16 || fs.ErrorCode != kerr.NotLeaderForPartition.Code || fs.CurrentLeader.LeaderID != l || fs.CurrentLeader.LeaderEpoch != first {
		t.Fatalf("fetch on follower (v%d): error %d, current leader %+v; want NOT_LEADER_OR_FOLLOWER naming node %d in epoch %d",
			fr.Version, fs.ErrorCode, fs.CurrentLeader, l, first)
	}
	checkEndpoint(t, c, l, len(fr.Brokers), func(i int) (int32, string, int32) {
		return fr.Brokers[i].NodeID, fr.Brokers[i].Host, fr.Brokers[i].Port
	})

	// A new leader, a new epoch, 100 more records.
	c.stop(int(l - 1))
	nl := c.leader("epochs", int(l-1))
	produce(100)
	second := c.partition(int(nl-1), "epochs").LeaderEpoch()
	if second <= first {
		t.Fatalf("epoch %d after the leader change, was %d", second, first)
	}
	raw = c.rawClient(int(nl - 1))
	ofe := func(node int32, current, epoch int32) kmsg.OffsetForLeaderEpochResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrOffsetForLeaderEpochRequest()
		req.ReplicaID = -1
		rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
		rt.Topic = "epochs"
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.CurrentLeaderEpoch, rp.LeaderEpoch = current, epoch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := raw.Broker(int(node)).Request(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions[0]
	}
	for _, want := range []struct {
		epoch, wantEpoch int32
		end              int64
	}{
		{first, first, 100},       // ends where the new leader's first batch starts
		{second - 1, first, 100},  // no batch in between (or the same as above)
		{second, second, 200},     // the current epoch: the end
		{first - 1, first - 1, 0}, // older than the log: where its first epoch starts
		{second + 1, -1, -1},      // newer than the leader's: UNDEFINED_EPOCH_OFFSET
	} {
		got := ofe(nl, second, want.epoch)
		if got.ErrorCode != 0 || got.LeaderEpoch != want.wantEpoch || got.EndOffset != want.end {
			t.Errorf("OffsetForLeaderEpoch(%d) on the leader: error %d, (%d, %d); want (%d, %d)",
				want.epoch, got.ErrorCode, got.LeaderEpoch, got.EndOffset, want.wantEpoch, want.end)
		}
	}
	if got := ofe(nl, first, first); got.ErrorCode != kerr.FencedLeaderEpoch.Code {
		t.Errorf("a stale current leader epoch: error %d, want FENCED_LEADER_EPOCH", got.ErrorCode)
	}
	for id := int32(1); id <= 3; id++ {
		if id == nl || id == l {
			continue
		}
		if got := ofe(id, -1, first); got.ErrorCode != kerr.NotLeaderForPartition.Code {
			t.Errorf("OffsetForLeaderEpoch on follower %d: error %d, want NOT_LEADER_OR_FOLLOWER", id, got.ErrorCode)
		}
	}

	// ListOffsets reports the epoch of the offset it returns.
	lo := kmsg.NewPtrListOffsetsRequest()
	lo.ReplicaID = -1
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "epochs"
	for _, ts := range []int64{-2, -1} {
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Partition, lp.Timestamp, lp.CurrentLeaderEpoch = 0, ts, -1
		lt.Partitions = append(lt.Partitions, lp)
	}
	lo.Topics = append(lo.Topics, lt)
	for i, want := range []struct {
		offset int64
		epoch  int32
	}{{0, first}, {200, second}} {
		lo.Topics[0].Partitions = lt.Partitions[i : i+1]
		resp, err := raw.Broker(int(nl)).Request(ctx, lo)
		if err != nil {
			t.Fatal(err)
		}
		got := resp.(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]
		if got.ErrorCode != 0 || got.Offset != want.offset || got.LeaderEpoch != want.epoch {
			t.Errorf("ListOffsets(%d): error %d, offset %d epoch %d; want offset %d epoch %d",
				lt.Partitions[i].Timestamp, got.ErrorCode, got.Offset, got.LeaderEpoch, want.offset, want.epoch)
		}
	}
}

// partition is partition 0 of topic on node index i.
func (c *testNodes) partition(i int, topic string) *stream.Partition {
	c.t.Helper()
	tp, ok := c.broker[i].streams.Topic(topic)
	if !ok {
		c.t.Fatalf("node %d has no topic %q", i+1, topic)
	}
	return tp.Partition(0)
}

// rawClient is a client bootstrapped from node index i, for requests to chosen brokers.
func (c *testNodes) rawClient(i int) *kgo.Client {
	c.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.kafka[i]))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	if err := cl.Ping(context.Background()); err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// checkEndpoint checks that a response's NodeEndpoints (n of them, read by at) hold node id
// at its Kafka address.
func checkEndpoint(t *testing.T, c *testNodes, id int32, n int, at func(int) (int32, string, int32)) {
	t.Helper()
	host, port, _ := net.SplitHostPort(c.kafka[id-1])
	for i := range n {
		if nid, h, p := at(i); nid == id {
			if h != host || fmt.Sprint(p) != port {
				t.Fatalf("endpoint of node %d: %s:%d, want %s", id, h, p, c.kafka[id-1])
			}
			return
		}
	}
	t.Fatalf("node %d not in the response's %d node endpoints", id, n)
}

// oneRecordBatch is a batch of one record, as a producer without idempotence sends it.
func oneRecordBatch() []byte {
	h := rb.NewHeader(1, time.Now().UnixMilli())
	b := rb.AppendHeader(nil, &h)
	r := rb.Record{Value: []byte("x")}
	return rb.Finish(r.AppendTo(b), 0)
}
