package amqp

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/yardmq/yard/internal/amqp/wire"
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
	var got []streamRecord
	if err := parseStreamBatches(b, new([]byte), 1<<20, func(r *streamRecord) bool { got = append(got, *r); return true }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || string(got[0].Key) != "rk" || string(got[0].Value) != "body" || got[0].tsMs != 1234 {
		t.Fatalf("records %+v", got)
	}
	hdrs := map[string]string{}
	for _, h := range got[0].Headers {
		hdrs[string(h.Key)] = string(h.Value)
	}
	if hdrs["a"] != "b" || hdrs["n"] != "3" || hdrs[amqpPropertiesHeader] != string(props) {
		t.Fatalf("headers %v", hdrs)
	}
	got[0].offset = 7
	var back wire.BasicProperties
	if err := back.Decode(deliveryProperties(&got[0], 3)); err != nil {
		t.Fatal(err)
	}
	if back.ContentType != "text/plain" || back.Headers["x-stream-offset"] != int64(7) || back.Headers["x-stream-partition"] != int32(3) || back.Headers["a"] != "b" {
		t.Fatalf("delivery properties %+v", back)
	}
}

func FuzzStreamBatches(f *testing.F) {
	f.Add(appendStreamBatch(nil, 1, "k", []byte{0x20, 0, 0, 0, 0, 0}, []byte("v")))
	f.Add(appendStreamBatch(nil, 1, "", nil, nil))
	f.Add(appendStreamBatch(appendStreamBatch(nil, 1, "a", nil, []byte("x")), 2, "b", nil, []byte("y")))
	f.Add([]byte{})
	var scratch []byte
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = parseStreamBatches(b[:len(b):len(b)], &scratch, 1<<20, func(r *streamRecord) bool {
			_ = deliveryProperties(r, 0)
			return true
		})
		_ = batchesEnd(b)
		_ = deliveryMode(b)
		if bytes.HasPrefix(b, []byte{0x10}) {
			_ = deliveryMode(b)
		}
	})
}

// batchesEnd moves a reader past whole batches, including ones that deliver nothing.
func TestBatchesEnd(t *testing.T) {
	t.Parallel()
	first := appendStreamBatch(nil, 1, "a", nil, nil)
	b := appendStreamBatch(append([]byte(nil), first...), 2, "b", nil, nil)
	binary.BigEndian.PutUint64(b[len(first):], 41) // second batch's base offset
	if got := batchesEnd(b); got != 42 {
		t.Fatalf("batchesEnd = %d, want 42", got)
	}
	if got := batchesEnd(b[:len(first)+10]); got != 1 {
		t.Fatalf("batchesEnd with a torn second batch = %d, want 1", got)
	}
	if got := batchesEnd(nil); got != -1 {
		t.Fatalf("batchesEnd(nil) = %d", got)
	}
}
