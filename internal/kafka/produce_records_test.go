package kafka

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	rb "github.com/yardmq/yard/internal/recordbatch"
)

// badBatch wraps records (compressed with codec bits attrs, as given) in a header and CRC
// that are valid: only the records are wrong.
func badBatch(count int32, attrs int16, records []byte) []byte {
	h := rb.NewHeader(count, 1)
	h.Attributes = attrs
	return rb.Finish(append(rb.AppendHeader(nil, &h), records...), 0)
}

// recordBytes is one record made of raw fields, with its length.
func recordBytes(fields ...[]byte) []byte {
	body := bytes.Join(fields, nil)
	return append(binary.AppendVarint(nil, int64(len(body))), body...)
}

func varint(v int64) []byte { return binary.AppendVarint(nil, v) }

// TestProduceRefusesBadRecords: a batch whose header and CRC are valid but whose records no
// client could read is refused with Kafka's code for the case and a message, and nothing of it
// is stored: a consumer reads past the point where it would have been.
func TestProduceRefusesBadRecords(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *Config) { c.AutoCreateTopics = false })
	ctx := testCtx(t)
	if _, err := ts.admin(t).CreateTopic(ctx, 1, 1, nil, "recs"); err != nil {
		t.Fatal(err)
	}
	good := recordBytes([]byte{0}, varint(0), varint(0), varint(-1), varint(1), []byte("v"), varint(0))
	enc, _ := zstd.NewWriter(nil)
	bomb := enc.EncodeAll(make([]byte, 80<<20), nil) // 80 MiB of zeros: a few KiB of zstd
	cases := []struct {
		name  string
		batch []byte
		want  *kerr.Error
		msg   string
	}{
		{"unknown codec 7", badBatch(1, 7, good), kerr.CorruptMessage, "codec 7"},
		{"gzip that is not gzip", badBatch(1, int16(rb.CodecGzip), good), kerr.CorruptMessage, "gzip"},
		{"record length -1", badBatch(1, 0, append(varint(-1), good...)), kerr.InvalidRecord, "record length"},
		{"header count 2^31-1", badBatch(1, 0, recordBytes([]byte{0}, varint(0), varint(0), varint(-1), varint(-1), varint(1<<31-1))), kerr.InvalidRecord, "header count"},
		{"value length 2^62", badBatch(1, 0, recordBytes([]byte{0}, varint(0), varint(0), varint(-1), varint(1<<62))), kerr.InvalidRecord, "value length"},
		{"record count 2^31-1 with one record", badBatch(1<<31-1, 0, good), kerr.InvalidRecord, "more records"},
		{"zstd bomb", badBatch(1, int16(rb.CodecZstd), bomb), kerr.MessageTooLarge, "inflates"},
	}
	rc := ts.raw(t)
	for _, c := range cases {
		p := rc.roundTrip(produceReq(9, "recs", 0, c.batch)).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
		msg := ""
		if p.ErrorMessage != nil {
			msg = *p.ErrorMessage
		}
		if p.ErrorCode != c.want.Code || !strings.Contains(msg, c.msg) {
			t.Errorf("%s: code %d %q, want %s with %q", c.name, p.ErrorCode, msg, c.want.Message, c.msg)
		}
	}
	lo, err := ts.admin(t).ListEndOffsets(ctx, "recs")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := lo.Lookup("recs", 0); o.Offset != 0 {
		t.Fatalf("end offset %d after refused produces", o.Offset)
	}
	// A real client produces and consumes as if nothing had been sent.
	cl := ts.client(t, kgo.DefaultProduceTopic("recs"), kgo.ConsumeTopics("recs"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	fs := cl.PollFetches(ctx)
	if errs := fs.Errors(); len(errs) > 0 {
		t.Fatalf("fetch errors: %v", errs)
	}
	recs := fs.Records()
	if len(recs) != 1 || string(recs[0].Value) != "after" || recs[0].Offset != 0 {
		t.Fatalf("consumed %v", recs)
	}
}

// TestProduceAcceptsEveryCodec: real clients' compressed batches pass the record check.
func TestProduceAcceptsEveryCodec(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	ctx := testCtx(t)
	for _, c := range []kgo.CompressionCodec{kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()} {
		cl := ts.client(t, kgo.DefaultProduceTopic("codecs"), kgo.ProducerBatchCompression(c), kgo.AllowAutoTopicCreation())
		var rs []*kgo.Record
		for i := range 50 {
			rs = append(rs, &kgo.Record{Key: []byte{byte(i)}, Value: bytes.Repeat([]byte("abc"), 100), Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("v")}}})
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatalf("%v: %v", c, err)
		}
	}
}
