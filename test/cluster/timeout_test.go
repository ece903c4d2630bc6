package cluster

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// TestClusterProduceWithoutQuorum pauses both followers of a partition's leader and produces
// to the leader with acks=all and a short request timeout: the leader cannot commit, and must
// answer within the request's timeout (REQUEST_TIMED_OUT, as Kafka's leader does when the
// replicas do not catch up in time; NOT_LEADER_OR_FOLLOWER if it stepped down first, having
// lost its quorum) rather than hold the request. Once the followers are back, the producer's
// retry of the same idempotent batch is acknowledged and the record is in the log once.
func TestClusterProduceWithoutQuorum(t *testing.T) {
	t.Parallel()
	c := Start(t, 3, Options{})
	const topic = "noquorum"
	createTopic(t, c, topic, 1)
	produceOK(t, c.Seeds(), topic, livenessBound)
	l := leaderOf(t, c, topic)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Node(l).KafkaAddr), kgo.MaxVersions(kversion.V3_0_0())) // Produce by topic name
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pid, epoch := initProducerID(t, cl)
	batch := idempotentBatch(pid, epoch, 0, []byte("once"))
	for id := 1; id <= 3; id++ {
		if id != l {
			c.Node(id).Pause()
		}
	}
	req := produceRequest(topic, batch, 300)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // a bound for a hung test, not a timing assertion
	start := time.Now()
	resp, err := cl.SeedBrokers()[0].Request(ctx, req)
	cancel()
	if err != nil {
		t.Fatalf("produce without a quorum: no answer: %v", err)
	}
	code := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
	if code != kerr.RequestTimedOut.Code && code != kerr.NotLeaderForPartition.Code {
		t.Fatalf("produce without a quorum answered %v, want REQUEST_TIMED_OUT (or NOT_LEADER_OR_FOLLOWER)", kerr.ErrorForCode(code))
	}
	t.Logf("produce without a quorum answered %v after %v", kerr.ErrorForCode(code), time.Since(start).Round(time.Millisecond))
	for id := 1; id <= 3; id++ {
		c.Node(id).Resume()
	}
	// The client retries the same batch until a leader acknowledges it.
	deadline := time.Now().Add(livenessBound)
	for {
		all, err := kgo.NewClient(kgo.SeedBrokers(c.Seeds()...), kgo.MaxVersions(kversion.V3_0_0()))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := req.RequestWith(ctx, all) // kgo routes it to the partition's leader
		cancel()
		all.Close()
		if err == nil && resp.Topics[0].Partitions[0].ErrorCode == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the retry was never acknowledged: %v %+v", err, resp)
		}
		time.Sleep(100 * time.Millisecond)
	}
	recs, _, err := ReadAll(context.Background(), c.Seeds(), topic, 1, livenessBound)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, v := range recs[0] {
		if v == "once" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("the record retried after the timeout is in the log %d times, want once", n)
	}
}

func initProducerID(t *testing.T, cl *kgo.Client) (int64, int16) {
	t.Helper()
	deadline := time.Now().Add(livenessBound)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		req := kmsg.NewPtrInitProducerIDRequest()
		req.TransactionTimeoutMillis = 60000
		resp, err := req.RequestWith(ctx, cl)
		cancel()
		if err == nil && resp.ErrorCode == 0 {
			return resp.ProducerID, resp.ProducerEpoch
		}
		if time.Now().After(deadline) {
			t.Fatalf("no producer id: %v %+v", err, resp)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// produceRequest is an acks=all Produce of batch to partition 0 of topic.
func produceRequest(topic string, batch []byte, timeoutMs int32) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, timeoutMs
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = 0, batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// idempotentBatch is a v2 record batch of one record with value v, from producer pid/epoch
// at sequence seq.
func idempotentBatch(pid int64, epoch int16, seq int32, v []byte) []byte {
	body := kmsg.NewRecord()
	body.Value = v
	body.Length = int32(len(body.AppendTo(nil)) - 1) // the length varint of 0 is one byte
	raw := body.AppendTo(nil)
	rb := kmsg.NewRecordBatch()
	rb.PartitionLeaderEpoch, rb.Magic = -1, 2
	ts := time.Now().UnixMilli()
	rb.FirstTimestamp, rb.MaxTimestamp = ts, ts
	rb.ProducerID, rb.ProducerEpoch, rb.FirstSequence = pid, epoch, seq
	rb.NumRecords, rb.Records = 1, raw
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}
