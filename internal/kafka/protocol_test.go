package kafka

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestApiVersionsNewerThanServed: a v9 request gets UNSUPPORTED_VERSION in a v0 body that
// lists our keys; v4 gets the list with no error.
func TestApiVersionsNewerThanServed(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	rc := ts.raw(t)
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 9 // unknown to us; the body is whatever a future client sends
	corr := rc.send(req)
	b, err := rc.readFrame(corr, false)
	if err != nil {
		t.Fatal(err)
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	if err := resp.ReadFrom(b); err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) == 0 {
		t.Fatalf("v9: %+v", resp)
	}
	req = kmsg.NewPtrApiVersionsRequest()
	req.Version = 4
	req.ClientSoftwareName, req.ClientSoftwareVersion = "test", "1"
	ok := rc.roundTrip(req).(*kmsg.ApiVersionsResponse)
	if ok.ErrorCode != 0 {
		t.Fatalf("v4 error %d", ok.ErrorCode)
	}
	found := map[int16]kmsg.ApiVersionsResponseApiKey{}
	for _, k := range ok.ApiKeys {
		found[k.ApiKey] = k
	}
	if p := found[0]; p.MinVersion != 0 || p.MaxVersion < 9 {
		t.Fatalf("produce advertised %+v", p)
	}
	if f := found[1]; f.MinVersion != 4 {
		t.Fatalf("fetch advertised %+v", f)
	}
}

// TestProduceOldVersionRefused: Produce v2 is advertised but refused per partition.
func TestProduceOldVersionRefused(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	ts.admin(t).CreateTopic(testCtx(t), 1, 1, nil, "old")
	resp := ts.raw(t).roundTrip(produceReq(2, "old", 0, makeBatch(-1, -1, -1, "x"))).(*kmsg.ProduceResponse)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.UnsupportedVersion.Code {
		t.Fatalf("produce v2: error %d", code)
	}
}

func TestProduceErrors(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *Config) { c.AutoCreateTopics = false })
	ctx := testCtx(t)
	adm := ts.admin(t)
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"max.message.bytes": strPtr("2000")}, "small"); err != nil {
		t.Fatal(err)
	}
	rc := ts.raw(t)
	code := func(req *kmsg.ProduceRequest) (int16, string) {
		p := rc.roundTrip(req).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
		msg := ""
		if p.ErrorMessage != nil {
			msg = *p.ErrorMessage
		}
		return p.ErrorCode, msg
	}
	if c, _ := code(produceReq(9, "nope", 0, makeBatch(-1, -1, -1, "x"))); c != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown topic: %d", c)
	}
	if c, _ := code(produceReq(9, "small", 7, makeBatch(-1, -1, -1, "x"))); c != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown partition: %d", c)
	}
	if c, msg := code(produceReq(9, "small", 0, makeBatch(-1, -1, -1, strings.Repeat("x", 3000)))); c != kerr.MessageTooLarge.Code {
		t.Fatalf("too large: %d %s", c, msg)
	}
	bad := makeBatch(-1, -1, -1, "hello")
	bad[len(bad)-1] ^= 0xff // payload changed, CRC not
	if c, _ := code(produceReq(9, "small", 0, bad)); c != kerr.CorruptMessage.Code {
		t.Fatalf("bad crc: %d", c)
	}
	short := makeBatch(-1, -1, -1, "hello")
	binary.BigEndian.PutUint32(short[8:], 9999) // length beyond the data
	if c, _ := code(produceReq(9, "small", 0, short)); c != kerr.CorruptMessage.Code {
		t.Fatalf("bad length: %d", c)
	}
	two := append(makeBatch(-1, -1, -1, "a"), makeBatch(-1, -1, -1, "b")...)
	if c, _ := code(produceReq(9, "small", 0, two)); c != kerr.InvalidRecord.Code {
		t.Fatalf("two batches: %d", c)
	}
	// Nothing of the above was written, and the connection still works.
	lo, err := adm.ListEndOffsets(ctx, "small")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := lo.Lookup("small", 0); o.Offset != 0 {
		t.Fatalf("end offset %d after refused produces", o.Offset)
	}
	if c, _ := code(produceReq(9, "small", 0, makeBatch(-1, -1, -1, "fine"))); c != 0 {
		t.Fatalf("good produce after errors: %d", c)
	}
	// kgo sees the same errors.
	cl := ts.client(t, kgo.DefaultProduceTopic("small"), kgo.ProducerBatchMaxBytes(1<<20), kgo.RecordRetries(0))
	big := make([]byte, 5000)
	rand.Read(big) // incompressible
	err = cl.ProduceSync(ctx, &kgo.Record{Value: big}).FirstErr()
	if !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("kgo too large: %v", err)
	}
}

// TestIdempotentProduce: a retried batch gets its original offset and is not stored twice;
// a gap in the sequence is refused.
func TestIdempotentProduce(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	ctx := testCtx(t)
	ts.admin(t).CreateTopic(ctx, 1, 1, nil, "idem")
	rc := ts.raw(t)
	ip := kmsg.NewPtrInitProducerIDRequest()
	ip.Version = 4
	ipr := rc.roundTrip(ip).(*kmsg.InitProducerIDResponse)
	if ipr.ErrorCode != 0 || ipr.ProducerID < 0 {
		t.Fatalf("init producer id %+v", ipr)
	}
	pid, epoch := ipr.ProducerID, ipr.ProducerEpoch
	send := func(seq int32, vals ...string) kmsg.ProduceResponseTopicPartition {
		return rc.roundTrip(produceReq(9, "idem", 0, makeBatch(pid, epoch, seq, vals...))).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	}
	if p := send(0, "a", "b"); p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Fatalf("first %+v", p)
	}
	if p := send(2, "c"); p.ErrorCode != 0 || p.BaseOffset != 2 {
		t.Fatalf("second %+v", p)
	}
	if p := send(0, "a", "b"); p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Fatalf("retry of first %+v", p)
	}
	if p := send(2, "c"); p.ErrorCode != 0 || p.BaseOffset != 2 {
		t.Fatalf("retry of second %+v", p)
	}
	if p := send(5, "gap"); p.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("gap %+v", p)
	}
	if p := send(3, "d"); p.ErrorCode != 0 || p.BaseOffset != 3 {
		t.Fatalf("next %+v", p)
	}
	lo, _ := ts.admin(t).ListEndOffsets(ctx, "idem")
	if o, _ := lo.Lookup("idem", 0); o.Offset != 4 {
		t.Fatalf("end offset %d, want 4 (duplicates stored?)", o.Offset)
	}
	// A transactional producer is refused clearly.
	txn := kmsg.NewPtrInitProducerIDRequest()
	txn.Version = 4
	txn.TransactionalID = strPtr("tx-1")
	if r := rc.roundTrip(txn).(*kmsg.InitProducerIDResponse); r.ErrorCode != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Fatalf("transactional init: %+v", r)
	}
}

// TestIdempotentStateSurvivesRestart: producer state is rebuilt from the log on open.
func TestIdempotentStateSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ts := startServerDir(t, dir)
	ctx := testCtx(t)
	ts.admin(t).CreateTopic(ctx, 1, 1, nil, "idem")
	rc := ts.raw(t)
	b := makeBatch(77, 3, 10, "x", "y")
	if p := rc.roundTrip(produceReq(9, "idem", 0, b)).(*kmsg.ProduceResponse).Topics[0].Partitions[0]; p.ErrorCode != 0 {
		t.Fatalf("%+v", p)
	}
	ts.stop(t)
	ts2 := startServerDir(t, dir)
	rc2 := ts2.raw(t)
	p := rc2.roundTrip(produceReq(9, "idem", 0, makeBatch(77, 3, 10, "x", "y"))).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	if p.ErrorCode != 0 || p.BaseOffset != 0 {
		t.Fatalf("retry after restart %+v", p)
	}
	p = rc2.roundTrip(produceReq(9, "idem", 0, makeBatch(77, 3, 13, "gap"))).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	if p.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("gap after restart %+v", p)
	}
	lo, _ := ts2.admin(t).ListEndOffsets(ctx, "idem")
	if o, _ := lo.Lookup("idem", 0); o.Offset != 2 {
		t.Fatalf("end offset %d, want 2", o.Offset)
	}
}

// TestMalformedFramesCloseConnection: an absurd size prefix or an undecodable request closes
// that connection; others keep working.
func TestMalformedFramesCloseConnection(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *Config) { c.MaxRequestBytes = 1 << 20 })
	for name, frame := range map[string][]byte{
		"huge size prefix":  {0x7f, 0xff, 0xff, 0xff},
		"negative size":     {0xff, 0xff, 0xff, 0xf0},
		"over the limit":    binary.BigEndian.AppendUint32(nil, 2<<20),
		"unknown api key":   append([]byte{0, 0, 0, 10}, 0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0, 0),
		"truncated request": append([]byte{0, 0, 0, 14}, 0, 3, 0, 12, 0, 0, 0, 1, 0, 0, 0x7f, 0xff, 0xff, 0xff),
	} {
		rc := ts.raw(t)
		if _, err := rc.c.Write(frame); err != nil {
			t.Fatal(err)
		}
		rc.c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := rc.c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Fatalf("%s: connection not closed: %v", name, err)
		}
	}
	// The server still serves.
	if _, err := ts.admin(t).ListTopics(testCtx(t)); err != nil {
		t.Fatal(err)
	}
}

func TestMaxConnections(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *Config) { c.MaxConnections = 2 })
	a, b := ts.raw(t), ts.raw(t)
	// Make sure both are registered before the third arrives.
	for _, rc := range []*rawConn{a, b} {
		req := kmsg.NewPtrMetadataRequest()
		req.Version = 1
		rc.roundTrip(req)
	}
	c := ts.raw(t)
	c.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("third connection not closed: %v", err)
	}
}

// TestFetchLongPoll: a fetch with MinBytes waits and is woken by a produce.
func TestFetchLongPoll(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	ctx := testCtx(t)
	ts.admin(t).CreateTopic(ctx, 1, 1, nil, "lp")
	rc := ts.raw(t)
	req := kmsg.NewPtrFetchRequest()
	req.Version = 12
	req.MaxWaitMillis = 50000
	req.MinBytes = 1
	req.MaxBytes = 1 << 20
	req.SessionEpoch = -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "lp"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes = 0, 0, 1<<20
	ft.Partitions = append(ft.Partitions, fp)
	req.Topics = append(req.Topics, ft)
	corr := rc.send(req)
	got := make(chan *kmsg.FetchResponse, 1)
	go func() {
		b, err := rc.readFrame(corr, true)
		if err != nil {
			t.Error(err)
			got <- nil
			return
		}
		resp := kmsg.NewPtrFetchResponse()
		resp.Version = 12
		if err := resp.ReadFrom(b); err != nil {
			t.Error(err)
		}
		got <- resp
	}()
	p := ts.client(t, kgo.DefaultProduceTopic("lp"))
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("wake up")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	resp := <-got
	if resp == nil {
		t.FailNow()
	}
	part := resp.Topics[0].Partitions[0]
	if part.ErrorCode != 0 || part.HighWatermark != 1 || len(part.RecordBatches) == 0 || resp.SessionID != 0 {
		t.Fatalf("long poll answer %+v", part)
	}
}

// TestPipelinedRequestsAnsweredInOrder: requests sent back to back, including a produce that
// waits for fsync and a long-polling fetch, are answered in the order they were sent.
func TestPipelinedRequestsAnsweredInOrder(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	ts.admin(t).CreateTopic(testCtx(t), 1, 1, nil, "pipe")
	rc := ts.raw(t)
	fetch := kmsg.NewPtrFetchRequest()
	fetch.Version = 11
	fetch.MaxWaitMillis, fetch.MinBytes, fetch.MaxBytes, fetch.SessionEpoch = 200, 1<<20, 1<<20, -1
	fetch.Topics = []kmsg.FetchRequestTopic{{Topic: "pipe", Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 0, PartitionMaxBytes: 1 << 20, CurrentLeaderEpoch: -1}}}}
	meta := kmsg.NewPtrMetadataRequest()
	meta.Version = 7
	reqs := []kmsg.Request{fetch, produceReq(8, "pipe", 0, makeBatch(-1, -1, -1, "a")), meta, produceReq(8, "pipe", 0, makeBatch(-1, -1, -1, "b"))}
	var corrs []int32
	for _, r := range reqs {
		corrs = append(corrs, rc.send(r))
	}
	for i, r := range reqs {
		b, err := rc.readFrame(corrs[i], false) // fails the test on an out-of-order correlation ID
		if err != nil {
			t.Fatal(err)
		}
		resp := r.ResponseKind()
		if err := resp.ReadFrom(b); err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		if p, ok := resp.(*kmsg.ProduceResponse); ok {
			if got := p.Topics[0].Partitions[0]; got.ErrorCode != 0 || got.BaseOffset != int64(i/2) {
				t.Fatalf("produce %d: %+v", i, got)
			}
		}
	}
}

// TestLogAppendTime: a LogAppendTime topic replaces the producer's timestamps with the
// broker's, and consumers see the broker's.
func TestLogAppendTime(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	ctx := testCtx(t)
	if _, err := ts.admin(t).CreateTopic(ctx, 1, 1, map[string]*string{"message.timestamp.type": strPtr("LogAppendTime")}, "lat"); err != nil {
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Second)
	p := ts.client(t, kgo.DefaultProduceTopic("lat"))
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("x"), Timestamp: time.UnixMilli(1000)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	c := ts.client(t, kgo.ConsumeTopics("lat"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	fs := c.PollFetches(ctx)
	if err := fs.Err(); err != nil {
		t.Fatal(err)
	}
	r := fs.Records()[0]
	if r.Timestamp.Before(before) || r.Attrs.TimestampType() != 1 {
		t.Fatalf("timestamp %v (type %d), want the append time", r.Timestamp, r.Attrs.TimestampType())
	}
}

// TestOffsetForLeaderEpoch: epoch 0 ends at the high watermark; a newer epoch is undefined.
func TestOffsetForLeaderEpoch(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	ctx := testCtx(t)
	ts.admin(t).CreateTopic(ctx, 1, 1, nil, "ofle")
	p := ts.client(t, kgo.DefaultProduceTopic("ofle"))
	for i := 0; i < 3; i++ {
		if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.Version = 4
	req.ReplicaID = -1
	req.Topics = []kmsg.OffsetForLeaderEpochRequestTopic{{Topic: "ofle", Partitions: []kmsg.OffsetForLeaderEpochRequestTopicPartition{
		{Partition: 0, CurrentLeaderEpoch: 0, LeaderEpoch: 0},
		{Partition: 0, CurrentLeaderEpoch: -1, LeaderEpoch: 5},
		{Partition: 9, CurrentLeaderEpoch: -1, LeaderEpoch: 0},
	}}}
	ps := ts.raw(t).roundTrip(req).(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions
	if ps[0].ErrorCode != 0 || ps[0].LeaderEpoch != 0 || ps[0].EndOffset != 3 {
		t.Fatalf("epoch 0: %+v", ps[0])
	}
	if ps[1].ErrorCode != 0 || ps[1].EndOffset != -1 || ps[1].LeaderEpoch != -1 {
		t.Fatalf("epoch 5: %+v", ps[1])
	}
	if ps[2].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown partition: %+v", ps[2])
	}
}

// TestDescribeTopicPartitionsPaging: the partition limit pages with a cursor.
func TestDescribeTopicPartitionsPaging(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	ctx := testCtx(t)
	ts.admin(t).CreateTopic(ctx, 3, 1, nil, "dtp-a")
	ts.admin(t).CreateTopic(ctx, 2, 1, nil, "dtp-b")
	rc := ts.raw(t)
	var seen []string
	var cursor *kmsg.DescribeTopicPartitionsRequestCursor
	for page := 0; page < 10; page++ {
		req := kmsg.NewPtrDescribeTopicPartitionsRequest()
		req.Topics = []kmsg.DescribeTopicPartitionsRequestTopic{{Topic: "dtp-b"}, {Topic: "dtp-a"}}
		req.ResponsePartitionLimit = 2
		req.Cursor = cursor
		resp := rc.roundTrip(req).(*kmsg.DescribeTopicPartitionsResponse)
		for _, tp := range resp.Topics {
			if tp.ErrorCode != 0 || tp.TopicID == [16]byte{} {
				t.Fatalf("topic %+v", tp)
			}
			for _, p := range tp.Partitions {
				seen = append(seen, fmt.Sprintf("%s/%d", *tp.Topic, p.Partition))
			}
		}
		if resp.NextCursor == nil {
			break
		}
		cursor = &kmsg.DescribeTopicPartitionsRequestCursor{Topic: resp.NextCursor.Topic, Partition: resp.NextCursor.Partition}
	}
	if got := strings.Join(seen, " "); got != "dtp-a/0 dtp-a/1 dtp-a/2 dtp-b/0 dtp-b/1" {
		t.Fatalf("paged partitions: %s", got)
	}
}

// TestTransactionalProducerGetsClearError: a franz-go transactional producer fails at once
// instead of hanging: its FindCoordinator for the transaction is refused (INVALID_REQUEST with
// a message), and InitProducerId with a transactional ID would be too.
func TestTransactionalProducerGetsClearError(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	ctx := testCtx(t)
	ts.admin(t).CreateTopic(ctx, 1, 1, nil, "txn")
	cl := ts.client(t, kgo.TransactionalID("tx-1"), kgo.DefaultProduceTopic("txn"))
	err := cl.BeginTransaction()
	if err == nil {
		err = cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr()
	}
	if !errors.Is(err, kerr.InvalidRequest) && !errors.Is(err, kerr.TransactionalIDAuthorizationFailed) {
		t.Fatalf("transactional produce: %v", err)
	}
}

// TestProduceAcksZero: acks=0 appends but sends no response; the next request's response is
// the next thing on the wire.
func TestProduceAcksZero(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	ctx := testCtx(t)
	ts.admin(t).CreateTopic(ctx, 1, 1, nil, "acks0")
	rc := ts.raw(t)
	req := produceReq(9, "acks0", 0, makeBatch(-1, -1, -1, "fire", "and", "forget"))
	req.Acks = 0
	rc.send(req)
	meta := kmsg.NewPtrMetadataRequest()
	meta.Version = 1
	corr := rc.send(meta)
	if _, err := rc.readFrame(corr, false); err != nil { // fails on any other correlation ID
		t.Fatal(err)
	}
	lo, err := ts.admin(t).ListEndOffsets(ctx, "acks0")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := lo.Lookup("acks0", 0); o.Offset != 3 {
		t.Fatalf("end offset %d after an acks=0 produce of 3 records", o.Offset)
	}
}

// TestProduceAcksZeroThenClose: a fire-and-forget client that closes right after an acks=0
// produce still gets its records made durable and visible.
func TestProduceAcksZeroThenClose(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	ctx := testCtx(t)
	ts.admin(t).CreateTopic(ctx, 1, 1, nil, "ff")
	rc := ts.raw(t)
	req := produceReq(9, "ff", 0, makeBatch(-1, -1, -1, "fire", "and", "forget"))
	req.Acks = 0
	rc.send(req)
	rc.c.Close()
	c := ts.client(t, kgo.ConsumeTopics("ff"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := 0
	for got < 3 {
		fs := c.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		got += fs.NumRecords()
	}
}
