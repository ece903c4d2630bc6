package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// fill sets every field of a method struct to a value derived from seed, so that round trips
// exercise every argument (bits alternate so packing errors show).
func fill(m Method, seed int) {
	v := reflect.ValueOf(m).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Bool:
			f.SetBool((i+seed)%2 == 0)
		case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			f.SetUint(uint64(i*37 + seed + 1))
		case reflect.String:
			f.SetString(fmt.Sprintf("field-%d-%d", i, seed))
		case reflect.Map:
			f.Set(reflect.ValueOf(Table{"k": int32(seed), "s": "v"}))
		}
	}
}

func TestMethodRoundTrip(t *testing.T) {
	t.Parallel()
	if len(methodIDs) < 50 {
		t.Fatalf("only %d methods generated", len(methodIDs))
	}
	for _, id := range methodIDs {
		for seed := 0; seed < 2; seed++ {
			m := newMethod(id)
			fill(m, seed)
			enc := m.AppendTo(nil)
			got, err := DecodeMethod(enc)
			if err != nil {
				t.Fatalf("%s: %v", m.Name(), err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Fatalf("%s: round trip %#v != %#v", m.Name(), got, m)
			}
		}
	}
}

func TestBitPacking(t *testing.T) {
	t.Parallel()
	m := &BasicConsume{Queue: "q", ConsumerTag: "c", NoLocal: false, NoAck: true, Exclusive: true, Nowait: false}
	enc := m.AppendTo(nil)
	// class 60, method 20, ticket 0, "q", "c", one octet of bits, empty table.
	want := []byte{0, 60, 0, 20, 0, 0, 1, 'q', 1, 'c', 0b0110, 0, 0, 0, 0}
	if !bytes.Equal(enc, want) {
		t.Fatalf("got %v want %v", enc, want)
	}
	nack := (&BasicNack{DeliveryTag: 7, Multiple: true, Requeue: true}).AppendTo(nil)
	if nack[len(nack)-1] != 0b11 {
		t.Fatalf("nack bits %08b", nack[len(nack)-1])
	}
}

func TestTableAllTypes(t *testing.T) {
	t.Parallel()
	in := Table{
		"t": true, "b": int8(-3), "B": uint8(200), "s": int16(-300), "u": uint16(60000),
		"I": int32(-70000), "i": uint32(4000000000), "l": int64(-1 << 40), "f": float32(1.5),
		"d": 2.25, "D": Decimal{Scale: 2, Value: 12345}, "S": "long string", "x": []byte{0, 1, 2},
		"A": []any{int32(1), "two", []any{}, Table{"n": nil}}, "T": time.Unix(1700000000, 0),
		"F": Table{"inner": true}, "V": nil,
	}
	enc := AppendTable(nil, in)
	out, err := DecodeTable(enc)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%#v", out) != fmt.Sprintf("%#v", in) {
		t.Fatalf("round trip\n%#v\n%#v", out, in)
	}
	if _, err := DecodeTable(append(enc[:len(enc):len(enc)], 0)[:len(enc)-1]); err == nil {
		t.Fatal("truncated table decoded")
	}
	bad := []byte{0, 0, 0, 3, 1, 'k', 'Z'}
	if _, err := DecodeTable(bad); !errors.Is(err, ErrBadFieldType) {
		t.Fatalf("unknown type: %v", err)
	}
}

func TestProperties(t *testing.T) {
	t.Parallel()
	p := BasicProperties{
		Flags:       FlagBasicContentType | FlagBasicHeaders | FlagBasicDeliveryMode | FlagBasicTimestamp | FlagBasicAppId,
		ContentType: "text/plain", Headers: Table{"a": int64(1)}, DeliveryMode: 2, Timestamp: 99, AppId: "app",
	}
	enc := p.AppendTo(nil)
	var q BasicProperties
	if err := q.Decode(enc); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p, q) {
		t.Fatalf("%#v != %#v", p, q)
	}
	if err := q.Decode(enc[:len(enc)-1]); err == nil {
		t.Fatal("truncated properties decoded")
	}
}

func TestFrames(t *testing.T) {
	t.Parallel()
	var b []byte
	b = AppendMethodFrame(b, 3, &BasicPublish{Exchange: "x", RoutingKey: "rk", Mandatory: true})
	props := (&BasicProperties{Flags: FlagBasicDeliveryMode, DeliveryMode: 1}).AppendTo(nil)
	body := bytes.Repeat([]byte("z"), 10000)
	b = AppendHeaderFrame(b, 3, ClassBasic, uint64(len(body)), props)
	b = AppendBodyFrames(b, 3, body, FrameMinSize)
	b = AppendHeartbeat(b)
	fr := NewFrameReader(bytes.NewReader(b), 4096)
	f, err := fr.ReadFrame()
	if err != nil || f.Type != FrameMethod || f.Channel != 3 {
		t.Fatalf("method frame %+v %v", f, err)
	}
	m, err := DecodeMethod(f.Payload)
	if err != nil || m.(*BasicPublish).RoutingKey != "rk" || !m.(*BasicPublish).Mandatory {
		t.Fatalf("publish %#v %v", m, err)
	}
	f, _ = fr.ReadFrame()
	ch, err := DecodeContentHeader(f.Payload)
	if err != nil || ch.BodySize != 10000 || !bytes.Equal(ch.Properties, props) {
		t.Fatalf("header %+v %v", ch, err)
	}
	var got []byte
	for len(got) < len(body) {
		f, err = fr.ReadFrame()
		if err != nil || f.Type != FrameBody || len(f.Payload)+FrameOverhead > FrameMinSize {
			t.Fatalf("body frame %v len %d", err, len(f.Payload))
		}
		got = append(got, f.Payload...)
	}
	if !bytes.Equal(got, body) {
		t.Fatal("body differs")
	}
	if f, err = fr.ReadFrame(); err != nil || f.Type != FrameHeartbeat {
		t.Fatalf("heartbeat %v", err)
	}
}

func TestFrameErrors(t *testing.T) {
	t.Parallel()
	big := AppendBodyFrames(nil, 1, make([]byte, 5000), 0)
	fr := NewFrameReader(bytes.NewReader(big), 4096)
	if _, err := fr.ReadFrame(); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversized: %v", err)
	}
	bad := AppendHeartbeat(nil)
	bad[len(bad)-1] = 0
	fr = NewFrameReader(bytes.NewReader(bad), 4096)
	if _, err := fr.ReadFrame(); !errors.Is(err, ErrFrameEnd) {
		t.Fatalf("bad end: %v", err)
	}
	if _, err := DecodeMethod([]byte{0, 99, 0, 1}); !errors.Is(err, ErrUnknownMethod) {
		t.Fatalf("unknown method: %v", err)
	}
	if _, err := DecodeMethod([]byte{0, 60, 0, 40, 0}); !errors.Is(err, ErrShortInput) {
		t.Fatalf("short publish: %v", err)
	}
}

func TestReplyCodes(t *testing.T) {
	t.Parallel()
	if !IsHardError(FrameError) || IsHardError(NotFound) || ReplyName(NotFound) != "NOT_FOUND" || ReplyName(ReplySuccess) != "REPLY_SUCCESS" {
		t.Fatal("reply code tables wrong")
	}
}

// TestFrameBufferGrowsAsBytesArrive: a frame header announcing a large payload gets memory for
// the bytes that came, not for the announcement; a large frame that does come whole reads
// back intact.
func TestFrameBufferGrowsAsBytesArrive(t *testing.T) {
	const announced = 100 << 20
	hdr := binary.BigEndian.AppendUint32([]byte{FrameBody, 0, 1}, announced)
	in := append(hdr, bytes.Repeat([]byte{'x'}, 1000)...) // then EOF
	fr := NewFrameReader(bytes.NewReader(in), 4096)
	fr.SetFrameMax(0)
	if _, err := fr.ReadFrame(); err == nil {
		t.Fatal("a truncated frame read without error")
	}
	if c := cap(fr.buf); c > 1<<20 {
		t.Fatalf("a frame announcing %d bytes of which 1000 came holds a %d-byte buffer", announced, c)
	}

	payload := make([]byte, 3<<20+5)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	whole := AppendBodyFrames(nil, 1, payload, 0)
	fr = NewFrameReader(bytes.NewReader(whole), 4096)
	fr.SetFrameMax(0)
	f, err := fr.ReadFrame()
	if err != nil || !bytes.Equal(f.Payload, payload) {
		t.Fatalf("large frame read back wrong (err %v, %d bytes)", err, len(f.Payload))
	}
}
