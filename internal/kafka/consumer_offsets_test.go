package kafka

import (
	"context"
	"encoding/binary"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/group"
)

// TestConsumerOffsetsTopicIsInternal: __consumer_offsets is listed as Kafka lists it
// (internal, every partition), and what clients may not do to it is refused with Kafka's
// codes.
func TestConsumerOffsetsTopicIsInternal(t *testing.T) {
	ts, _ := startGroupServer(t)
	r := ts.raw(t)
	name := group.OffsetsTopic

	meta := r.roundTrip(&kmsg.MetadataRequest{Version: 12}).(*kmsg.MetadataResponse)
	found := false
	for _, mt := range meta.Topics {
		if mt.Topic != nil && *mt.Topic == name {
			found = true
			if !mt.IsInternal || len(mt.Partitions) != 5 || mt.ErrorCode != 0 {
				t.Fatalf("metadata of %s: internal %v, %d partitions, error %d", name, mt.IsInternal, len(mt.Partitions), mt.ErrorCode)
			}
		} else if mt.IsInternal {
			t.Fatalf("%v listed as internal", mt.Topic)
		}
	}
	if !found {
		t.Fatalf("%s not listed in Metadata", name)
	}
	dtp := kmsg.NewDescribeTopicPartitionsRequest()
	dtp.Topics = []kmsg.DescribeTopicPartitionsRequestTopic{{Topic: name}}
	dresp := r.roundTrip(&dtp).(*kmsg.DescribeTopicPartitionsResponse)
	if len(dresp.Topics) != 1 || !dresp.Topics[0].IsInternal || len(dresp.Topics[0].Partitions) != 5 {
		t.Fatalf("DescribeTopicPartitions: %+v", dresp.Topics)
	}

	prod := r.roundTrip(produceReq(9, name, 0, makeBatch(-1, -1, -1, "x"))).(*kmsg.ProduceResponse)
	if code := prod.Topics[0].Partitions[0].ErrorCode; code != kerr.InvalidTopicException.Code {
		t.Errorf("produce to %s: error %d, want INVALID_TOPIC_EXCEPTION", name, code)
	}
	ct := kmsg.NewCreateTopicsRequest()
	ct.Version = 5
	ct.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: name, NumPartitions: 1, ReplicationFactor: 1}}
	if code := r.roundTrip(&ct).(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode; code != kerr.TopicAlreadyExists.Code {
		t.Errorf("create %s: error %d, want TOPIC_ALREADY_EXISTS", name, code)
	}
	dt := kmsg.NewDeleteTopicsRequest()
	dt.Version = 4
	dt.TopicNames = []string{name}
	if code := r.roundTrip(&dt).(*kmsg.DeleteTopicsResponse).Topics[0].ErrorCode; code != kerr.InvalidRequest.Code {
		t.Errorf("delete %s: error %d, want INVALID_REQUEST", name, code)
	}
	cp := kmsg.NewCreatePartitionsRequest()
	cp.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: name, Count: 60}}
	if code := r.roundTrip(&cp).(*kmsg.CreatePartitionsResponse).Topics[0].ErrorCode; code != kerr.InvalidRequest.Code {
		t.Errorf("add partitions to %s: error %d, want INVALID_REQUEST", name, code)
	}
	dr := kmsg.NewDeleteRecordsRequest()
	dr.Topics = []kmsg.DeleteRecordsRequestTopic{{Topic: name, Partitions: []kmsg.DeleteRecordsRequestTopicPartition{{Partition: 0, Offset: -1}}}}
	if code := r.roundTrip(&dr).(*kmsg.DeleteRecordsResponse).Topics[0].Partitions[0].ErrorCode; code != kerr.InvalidTopicException.Code {
		t.Errorf("delete records of %s: error %d, want INVALID_TOPIC_EXCEPTION", name, code)
	}
	if _, ok := ts.st.Topic(name); !ok {
		t.Fatalf("%s is gone", name)
	}
}

// TestConsumerOffsetsReadableAndHiddenFromRegex: an ordinary consumer reads a group's commit
// from __consumer_offsets in Kafka's OffsetCommit schema, in the group's partition; a
// regular-expression subscription matching everything does not pick the topic up.
func TestConsumerOffsetsReadableAndHiddenFromRegex(t *testing.T) {
	ts, _ := startGroupServer(t)
	ctx := testCtx(t)
	adm := ts.admin(t)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	cl := ts.client(t, kgo.DefaultProduceTopic("orders"))
	if err := cl.ProduceSync(ctx, kgo.StringRecord("a"), kgo.StringRecord("b")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// A regex consumer group of everything: it reads orders, commits, never __consumer_offsets.
	rx := ts.client(t, kgo.ConsumerGroup("watchers"), kgo.ConsumeRegex(), kgo.ConsumeTopics(".*"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	read := 0
	for read < 2 {
		fs := rx.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Topic != "orders" {
				t.Fatalf("regex subscription read %s", r.Topic)
			}
			read++
		})
	}
	if err := rx.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	for _, topic := range rx.GetConsumeTopics() {
		if topic == group.OffsetsTopic {
			t.Fatalf("regex subscription picked up %s", topic)
		}
	}
	rx.Close()

	// A plain consumer of the internal topic (a lag exporter) finds the commit.
	want := group.PartitionFor("watchers", 5)
	oc := ts.client(t, kgo.ConsumeTopics(group.OffsetsTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var hit bool
		fs := oc.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			if len(r.Key) < 2 || binary.BigEndian.Uint16(r.Key) != 1 {
				return
			}
			g, topic, part, off, ok := decodeCommit(r.Key, r.Value)
			if !ok {
				t.Fatalf("undecodable offset commit %x / %x", r.Key, r.Value)
			}
			if g == "watchers" && topic == "orders" && part == 0 && off == 2 {
				if r.Partition != want {
					t.Fatalf("commit of watchers in partition %d, want %d", r.Partition, want)
				}
				hit = true
			}
		})
		if hit {
			return
		}
	}
	t.Fatal("the commit never showed up in __consumer_offsets")
}

// decodeCommit decodes OffsetCommitKey v1 and OffsetCommitValue v3 as Kafka's own
// formatter would, independently of internal/group's decoder.
func decodeCommit(key, value []byte) (group, topic string, partition int32, offset int64, ok bool) {
	str := func(b []byte) (string, []byte, bool) {
		if len(b) < 2 {
			return "", nil, false
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			return "", nil, false
		}
		return string(b[2 : 2+n]), b[2+n:], true
	}
	b := key[2:]
	if group, b, ok = str(b); !ok {
		return
	}
	if topic, b, ok = str(b); !ok || len(b) != 4 {
		return "", "", 0, 0, false
	}
	partition = int32(binary.BigEndian.Uint32(b))
	if len(value) < 14 || binary.BigEndian.Uint16(value) != 3 {
		return "", "", 0, 0, false
	}
	offset = int64(binary.BigEndian.Uint64(value[2:]))
	return group, topic, partition, offset, true
}

// TestConsumerOffsetsServerSideRegex: a KIP-848 member whose regular expression (evaluated by
// the broker) names __consumer_offsets is assigned its partitions, as Kafka 4.4 assigns them
// (franz-go's own Test848RegexBrokerResolves), beside the ordinary topics it matches.
func TestConsumerOffsetsServerSideRegex(t *testing.T) {
	ts, _ := startGroupServer(t)
	ctx := testCtx(t)
	if _, err := ts.admin(t).CreateTopic(ctx, 1, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	cl := ts.client(t, kgo.ServerSideBalancer(), kgo.ConsumerGroup("internal-readers"), kgo.ConsumeRegex(),
		kgo.ConsumeTopics("orders", regexp.QuoteMeta(group.OffsetsTopic)), kgo.DisableAutoCommit())
	waitFor(t, "__consumer_offsets assigned by the broker's regex", func() bool {
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		cl.PollRecords(pctx, 1)
		cancel()
		return slices.Contains(cl.GetConsumeTopics(), group.OffsetsTopic) && slices.Contains(cl.GetConsumeTopics(), "orders")
	})
}
