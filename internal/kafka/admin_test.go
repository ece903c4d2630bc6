package kafka

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestTopicAdministration(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	ctx := testCtx(t)
	adm := ts.admin(t)

	res, err := adm.CreateTopic(ctx, 4, 1, map[string]*string{"retention.ms": kadm.StringPtr("3600000")}, "orders")
	if err != nil || res.Err != nil {
		t.Fatalf("create: %v %v", err, res.Err)
	}
	if res.ID == (kadm.TopicID{}) {
		t.Fatal("no topic ID")
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "orders"); !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatalf("duplicate create: %v", err)
	}
	td, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d, ok := td["orders"]
	if !ok || len(d.Partitions) != 4 || d.ID != res.ID {
		t.Fatalf("listed %+v", td)
	}

	// Configs: topic value, broker default, incremental alter, legacy alter.
	rcs, err := adm.DescribeTopicConfigs(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	cfg := map[string]*kadm.Config{}
	for i := range rcs[0].Configs {
		cfg[rcs[0].Configs[i].Key] = &rcs[0].Configs[i]
	}
	if cfg["retention.ms"].MaybeValue() != "3600000" || cfg["retention.ms"].Source.String() != "DYNAMIC_TOPIC_CONFIG" {
		t.Fatalf("retention.ms = %+v", cfg["retention.ms"])
	}
	if cfg["max.message.bytes"].MaybeValue() != "1048588" || cfg["cleanup.policy"].MaybeValue() != "delete" {
		t.Fatalf("defaults: %+v %+v", cfg["max.message.bytes"], cfg["cleanup.policy"])
	}
	ar, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "message.timestamp.type", Value: kadm.StringPtr("LogAppendTime")}}, "orders")
	if err != nil || ar[0].Err != nil {
		t.Fatalf("alter: %v %+v", err, ar)
	}
	ar, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "cleanup.policy", Value: kadm.StringPtr("compact,purge")}}, "orders")
	if err != nil || !errors.Is(ar[0].Err, kerr.InvalidConfig) || !strings.Contains(ar[0].ErrMessage, "compact") {
		t.Fatalf("compact,purge accepted? %v %+v", err, ar)
	}
	ar, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "no.such.config", Value: kadm.StringPtr("1")}}, "orders")
	if err != nil || !errors.Is(ar[0].Err, kerr.InvalidConfig) {
		t.Fatalf("unknown config accepted? %v %+v", err, ar)
	}
	br, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Name: "log.retention.bytes", Value: kadm.StringPtr("1000000")}})
	if err != nil || br[0].Err != nil {
		t.Fatalf("broker alter: %v %+v", err, br)
	}
	rcs, err = adm.DescribeTopicConfigs(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	for i := range rcs[0].Configs {
		c := &rcs[0].Configs[i]
		switch c.Key {
		case "retention.bytes":
			if c.MaybeValue() != "1000000" || c.Source.String() != "DYNAMIC_DEFAULT_BROKER_CONFIG" {
				t.Fatalf("broker default not inherited: %+v", c)
			}
		case "message.timestamp.type":
			if c.MaybeValue() != "LogAppendTime" {
				t.Fatalf("incremental alter lost: %+v", c)
			}
		}
	}
	brc, err := adm.DescribeBrokerConfigs(ctx)
	if err != nil || len(brc) == 0 || brc[0].Err != nil {
		t.Fatalf("describe broker: %v %+v", err, brc)
	}

	// Partitions can grow, not shrink.
	if r, err := adm.UpdatePartitions(ctx, 6, "orders"); err != nil || r["orders"].Err != nil {
		t.Fatalf("grow: %v %+v", err, r)
	}
	if r, err := adm.UpdatePartitions(ctx, 2, "orders"); err != nil || !errors.Is(r["orders"].Err, kerr.InvalidPartitions) {
		t.Fatalf("shrink: %v %+v", err, r)
	}
	td, _ = adm.ListTopics(ctx, "orders")
	if len(td["orders"].Partitions) != 6 {
		t.Fatalf("partitions after grow: %d", len(td["orders"].Partitions))
	}

	// Cluster description.
	meta, err := adm.BrokerMetadata(ctx)
	if err != nil || meta.Cluster != "test-cluster" || len(meta.Brokers) != 1 {
		t.Fatalf("metadata %+v %v", meta, err)
	}
	dcReq := kmsg.NewPtrDescribeClusterRequest()
	dcReq.Version, dcReq.EndpointType = 1, 1
	dc := ts.raw(t).roundTrip(dcReq).(*kmsg.DescribeClusterResponse)
	if dc.ErrorCode != 0 || len(dc.Brokers) != 1 || dc.ClusterID != "test-cluster" {
		t.Fatalf("describe cluster %+v", dc)
	}

	// Delete.
	if r, err := adm.DeleteTopic(ctx, "orders"); err != nil || r.Err != nil {
		t.Fatalf("delete: %v %+v", err, r)
	}

	if r, err := adm.DeleteTopic(ctx, "orders"); err == nil && r.Err == nil {
		t.Fatal("second delete succeeded")
	}
	// A fresh client: kgo caches metadata for a few seconds.
	td, _ = ts.admin(t).ListTopics(ctx)
	if td.Has("orders") {
		t.Fatalf("deleted topic still listed: %+v", td["orders"])
	}
}

func TestInvalidTopicNameAndConfig(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	ctx := testCtx(t)
	adm := ts.admin(t)
	r, err := adm.CreateTopic(ctx, 1, 1, nil, "bad/name")
	if !errors.Is(errOr(err, r.Err), kerr.InvalidTopicException) {
		t.Fatalf("bad name: %v %+v", err, r)
	}
	r, err = adm.CreateTopic(ctx, 1, 1, map[string]*string{"retention.ms": kadm.StringPtr("soon")}, "good")
	if !errors.Is(errOr(err, r.Err), kerr.InvalidConfig) || !strings.Contains(r.ErrMessage, "retention.ms") {
		t.Fatalf("bad config: %v %+v", err, r)
	}
	r, err = adm.CreateTopic(ctx, 1, 3, nil, "replicated")
	if !errors.Is(errOr(err, r.Err), kerr.InvalidReplicationFactor) {
		t.Fatalf("rf 3: %v %+v", err, r)
	}
}

func errOr(err, alt error) error {
	if err != nil {
		return err
	}
	return alt
}

// TestListOffsetsAndDeleteRecords covers earliest/latest/max-timestamp/by-timestamp and
// DeleteRecords moving the start offset.
func TestListOffsetsAndDeleteRecords(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	ctx := testCtx(t)
	adm := ts.admin(t)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "lo"); err != nil {
		t.Fatal(err)
	}
	p := ts.client(t, kgo.DefaultProduceTopic("lo"))
	for i := int64(0); i < 10; i++ {
		// One batch per record, timestamps 1000, 2000, ... 10000.
		r := &kgo.Record{Value: []byte("v"), Timestamp: unixMilli(1000 * (i + 1))}
		if err := p.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	check := func(name string, lo kadm.ListedOffsets, err error, want int64) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		o, _ := lo.Lookup("lo", 0)
		if o.Err != nil || o.Offset != want {
			t.Fatalf("%s = %+v, want offset %d", name, o, want)
		}
	}
	lo, err := adm.ListStartOffsets(ctx, "lo")
	check("earliest", lo, err, 0)
	lo, err = adm.ListEndOffsets(ctx, "lo")
	check("latest", lo, err, 10)
	lo, err = adm.ListOffsetsAfterMilli(ctx, 5500, "lo")
	check("by timestamp 5500", lo, err, 5)
	lo, err = adm.ListOffsetsAfterMilli(ctx, 99999, "lo")
	check("after the last timestamp", lo, err, 10) // kadm maps "none" to the end offset

	mt := ts.raw(t)
	req := listOffsetsReq("lo", -3)
	resp := mt.roundTrip(req).(*kmsgListOffsetsResponse)
	if got := resp.Topics[0].Partitions[0]; got.Offset != 9 || got.Timestamp != 10000 {
		t.Fatalf("max timestamp: %+v", got)
	}

	dr, err := adm.DeleteRecords(ctx, kadm.Offsets{"lo": {0: {Topic: "lo", Partition: 0, At: 4}}})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := dr.Lookup("lo", 0); r.Err != nil || r.LowWatermark != 4 {
		t.Fatalf("delete records: %+v", r)
	}
	lo, err = adm.ListStartOffsets(ctx, "lo")
	check("earliest after delete", lo, err, 4)
	dr, _ = adm.DeleteRecords(ctx, kadm.Offsets{"lo": {0: {Topic: "lo", Partition: 0, At: 50}}})
	if r, _ := dr.Lookup("lo", 0); !errors.Is(r.Err, kerr.OffsetOutOfRange) {
		t.Fatalf("delete beyond end: %+v", r)
	}
	// Reading below the start offset is out of range; a consumer resets to the start.
	c := ts.client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"lo": {0: kgo.NewOffset().At(0)}}))
	fs := c.PollFetches(ctx)
	if err := fs.Err(); err != nil {
		t.Fatal(err)
	}
	if first := fs.Records()[0]; first.Offset != 4 {
		t.Fatalf("first record after delete: offset %d", first.Offset)
	}
}

// TestAutoCreateTopics: Metadata creates an unknown topic when the server and the request
// allow it, with the default partition count; a bad name is refused; switched off, the
// topic stays unknown.
func TestAutoCreateTopics(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	on := startServer(t, func(c *Config) { c.DefaultPartitions = 3 })
	p := on.client(t, kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("auto"))
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if tp, ok := on.st.Topic("auto"); !ok || tp.NumPartitions() != 3 {
		t.Fatalf("auto-created topic: %v", ok)
	}
	meta := kmsg.NewPtrMetadataRequest()
	meta.Version = 12
	meta.AllowAutoTopicCreation = true
	meta.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("no such/topic")}}
	if r := on.raw(t).roundTrip(meta).(*kmsg.MetadataResponse); r.Topics[0].ErrorCode != kerr.InvalidTopicException.Code {
		t.Fatalf("bad name auto-create: %+v", r.Topics[0])
	}
	meta.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("not-allowed")}}
	meta.AllowAutoTopicCreation = false
	if r := on.raw(t).roundTrip(meta).(*kmsg.MetadataResponse); r.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("request without auto-create: %+v", r.Topics[0])
	}

	off := startServer(t, func(c *Config) { c.AutoCreateTopics = false })
	meta.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("auto")}}
	meta.AllowAutoTopicCreation = true
	if r := off.raw(t).roundTrip(meta).(*kmsg.MetadataResponse); r.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("auto-create switched off: %+v", r.Topics[0])
	}
	if _, ok := off.st.Topic("auto"); ok {
		t.Fatal("topic created with auto-creation off")
	}
}

// TestListOffsetsByTimestampInsideBatches: with several records per batch, by-timestamp and
// max-timestamp lookups find the exact record, whatever the codec.
func TestListOffsetsByTimestampInsideBatches(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	ctx := testCtx(t)
	adm := ts.admin(t)
	codecs := map[string]kgo.CompressionCodec{"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(),
		"snappy": kgo.SnappyCompression(), "lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression()}
	for name, codec := range codecs {
		topic := "ts-" + name
		adm.CreateTopic(ctx, 1, 1, nil, topic)
		p := ts.client(t, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(codec), kgo.ProducerLinger(time.Minute))
		// One batch of 10 records, timestamps 1000..10000 except the largest in the middle.
		for i := int64(0); i < 10; i++ {
			tsMs := 1000 * (i + 1)
			if i == 4 {
				tsMs = 50000
			}
			p.Produce(ctx, &kgo.Record{Value: bytes.Repeat([]byte("v"), 100), Timestamp: time.UnixMilli(tsMs)}, nil)
		}
		if err := p.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		lo, err := adm.ListOffsetsAfterMilli(ctx, 6500, topic)
		if err != nil {
			t.Fatal(err)
		}
		// Record 4 (50000) is the first at or after 6500.
		if o, _ := lo.Lookup(topic, 0); o.Offset != 4 || o.Timestamp != 50000 {
			t.Fatalf("%s: by timestamp 6500: %+v", name, o)
		}
		lo, _ = adm.ListOffsetsAfterMilli(ctx, 2500, topic)
		if o, _ := lo.Lookup(topic, 0); o.Offset != 2 || o.Timestamp != 3000 {
			t.Fatalf("%s: by timestamp 2500: %+v", name, o)
		}
		resp := ts.raw(t).roundTrip(listOffsetsReq(topic, -3)).(*kmsgListOffsetsResponse)
		if got := resp.Topics[0].Partitions[0]; got.Offset != 4 || got.Timestamp != 50000 {
			t.Fatalf("%s: max timestamp: %+v", name, got)
		}
	}
}
