package wire

import (
	"bytes"
	"fmt"
	"testing"
)

func FuzzDecodeMethod(f *testing.F) {
	for i, id := range methodIDs {
		m := newMethod(id)
		fill(m, i)
		f.Add(m.AppendTo(nil))
	}
	f.Add([]byte{0, 60, 0, 40})
	f.Fuzz(func(t *testing.T, b []byte) {
		in := append([]byte(nil), b...)
		m, err := DecodeMethod(b)
		if !bytes.Equal(in, b) {
			t.Fatal("decoder modified its input")
		}
		if err != nil {
			return
		}
		enc := m.AppendTo(nil)
		m2, err := DecodeMethod(enc)
		if err != nil {
			t.Fatalf("re-decode of %s: %v", m.Name(), err)
		}
		if fmt.Sprintf("%#v", m) != fmt.Sprintf("%#v", m2) {
			t.Fatalf("round trip %#v != %#v", m, m2)
		}
	})
}

func FuzzReadFrame(f *testing.F) {
	f.Add(AppendMethodFrame(nil, 1, &ChannelOpen{}))
	f.Add(AppendHeartbeat(nil))
	f.Add(AppendHeaderFrame(nil, 1, ClassBasic, 3, (&BasicProperties{}).AppendTo(nil)))
	f.Add(AppendBodyFrames(nil, 1, []byte("abc"), 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr := NewFrameReader(bytes.NewReader(b), 4096)
		for i := 0; i < 8; i++ {
			fr2, err := fr.ReadFrame()
			if err != nil {
				return
			}
			if len(fr2.Payload)+FrameOverhead > FrameMinSize {
				t.Fatalf("frame of %d bytes accepted", len(fr2.Payload))
			}
			_, _ = DecodeMethod(fr2.Payload)
			if h, err := DecodeContentHeader(fr2.Payload); err == nil {
				var p BasicProperties
				if p.Decode(h.Properties) == nil {
					var p2 BasicProperties
					if err := p2.Decode(p.AppendTo(nil)); err != nil {
						t.Fatalf("properties re-decode: %v", err)
					}
					if fmt.Sprintf("%#v", p) != fmt.Sprintf("%#v", p2) {
						t.Fatalf("properties round trip %#v != %#v", p, p2)
					}
				}
			}
		}
	})
}

func FuzzDecodeTable(f *testing.F) {
	f.Add(AppendTable(nil, Table{"a": int32(1), "b": []any{"x", Table{"c": 1.5}}, "t": true}))
	f.Fuzz(func(t *testing.T, b []byte) {
		tb, err := DecodeTable(b)
		if err != nil {
			return
		}
		tb2, err := DecodeTable(AppendTable(nil, tb))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if fmt.Sprintf("%#v", tb) != fmt.Sprintf("%#v", tb2) {
			t.Fatalf("round trip %#v != %#v", tb, tb2)
		}
	})
}
