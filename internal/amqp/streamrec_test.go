package amqp

import (
	"testing"

	"github.com/yardmq/yard/internal/amqp/wire"
	rb "github.com/yardmq/yard/internal/recordbatch"
	"github.com/yardmq/yard/internal/stream"
)

func TestStreamRecordRoundTrip(t *testing.T) {
	t.Parallel()
	p := wire.BasicProperties{Flags: wire.FlagBasicHeaders | wire.FlagBasicContentType | wire.FlagBasicDeliveryMode,
		ContentType: "text/plain", DeliveryMode: 2, Headers: wire.Table{"a": "b", "n": int32(3), "x": 1.5}}
	props := p.AppendTo(nil)
	if deliveryMode(props) != 2 {
		t.Fatalf("deliveryMode = %d, want 2", deliveryMode(props))
	}
	b := appendStreamBatch(nil, 1234, "rk", props, []byte("body"))
	got, err := decodeStreamBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || string(got[0].Key) != "rk" || string(got[0].Value) != "body" || got[0].Timestamp != 1234 {
		t.Fatalf("records %+v", got)
	}
	hdrs := map[string]string{}
	for _, h := range got[0].Headers {
		hdrs[string(h.Key)] = string(h.Value)
	}
	if hdrs["a"] != "b" || hdrs["n"] != "3" || hdrs[amqpPropertiesHeader] != string(props) {
		t.Fatalf("headers %v", hdrs)
	}
	got[0].Offset = 7
	var back wire.BasicProperties
	if err := back.Decode(deliveryProperties(&got[0], 3)); err != nil {
		t.Fatal(err)
	}
	if back.ContentType != "text/plain" || back.Headers["x-stream-offset"] != int64(7) || back.Headers["x-stream-partition"] != int32(3) || back.Headers["a"] != "b" {
		t.Fatalf("delivery properties %+v", back)
	}
}

// decodeStreamBatch decodes one batch as a stream consumer's reader does.
func decodeStreamBatch(b []byte) ([]stream.Record, error) {
	batch, _, h, err := rb.Split(b)
	if err != nil {
		return nil, err
	}
	body, err := rb.Body(batch, &h, nil, 1<<20)
	if err != nil {
		return nil, err
	}
	var out []stream.Record
	it := rb.NewRecords(body, h.RecordCount)
	var r stream.Record
	for it.Next(&r.Record) {
		r.Offset, r.Timestamp = h.BaseOffset+int64(r.OffsetDelta), h.BaseTimestamp+r.TimestampDelta
		c := r
		c.Headers = append([]rb.RecordHeader(nil), r.Headers...)
		out = append(out, c)
	}
	return out, it.Err()
}

// FuzzStreamRecords: whatever records a batch decodes to map to AMQP properties without a
// panic.
func FuzzStreamRecords(f *testing.F) {
	f.Add(appendStreamBatch(nil, 1, "k", []byte{0x20, 0, 0, 0, 0, 0}, []byte("v")))
	f.Add(appendStreamBatch(nil, 1, "", nil, nil))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, _ := decodeStreamBatch(b[:len(b):len(b)])
		for i := range recs {
			_ = deliveryProperties(&recs[i], 0)
		}
		_ = deliveryMode(b)
	})
}
