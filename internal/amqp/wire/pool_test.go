package wire

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"
)

// TestPooledFrameReader: a pooled reader gives its buffer back while idle (Fill) and reads
// the same frames as an unpooled one, however the bytes are split.
func TestPooledFrameReader(t *testing.T) {
	t.Parallel()
	var in []byte
	in = append(in, ProtocolHeader...)
	in = AppendMethodFrame(in, 0, &ConnectionStartOk{Mechanism: "PLAIN", Response: "\x00a\x00b", Locale: "en_US"})
	in = AppendHeartbeat(in)
	in = AppendBodyFrames(in, 1, bytes.Repeat([]byte("x"), 300_000), 0)
	in = AppendHeartbeat(in)
	pool := NewReaderPool(4096)
	for name, src := range map[string]io.Reader{
		"whole":    bytes.NewReader(in),
		"one byte": iotest.OneByteReader(bytes.NewReader(in)),
		"halves":   iotest.HalfReader(bytes.NewReader(in)),
	} {
		fr := NewPooledFrameReader(src, pool)
		fr.SetFrameMax(0)
		if err := fr.Fill(true); err != nil {
			t.Fatal(err)
		}
		if fr.r != nil {
			t.Fatalf("%s: Fill held a buffer while waiting", name)
		}
		hdr := make([]byte, len(ProtocolHeader))
		if err := fr.ReadFull(hdr); err != nil || !bytes.Equal(hdr, ProtocolHeader) {
			t.Fatalf("%s: protocol header %q, %v", name, hdr, err)
		}
		var types []uint8
		var bodyBytes int
		for {
			if err := fr.Fill(true); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			fr.Ready() // must not disturb an early header
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatalf("%s: frame %d: %v", name, len(types), err)
			}
			types = append(types, f.Type)
			if f.Type == FrameBody {
				bodyBytes += len(f.Payload)
			}
		}
		if len(types) != 4 || types[0] != FrameMethod || types[1] != FrameHeartbeat || types[2] != FrameBody || types[3] != FrameHeartbeat || bodyBytes != 300_000 {
			t.Fatalf("%s: frames %v, body %d bytes", name, types, bodyBytes)
		}
		fr.Release()
	}
}

func TestPooledReadyWithEarlyHeader(t *testing.T) {
	t.Parallel()
	in := AppendHeartbeat(nil)
	in = AppendHeartbeat(in)
	fr := NewPooledFrameReader(iotest.HalfReader(bytes.NewReader(in)), NewReaderPool(4096))
	if err := fr.Fill(true); err != nil {
		t.Fatal(err)
	}
	if fr.Ready() {
		t.Fatal("Ready with only part of a header")
	}
	if _, err := fr.ReadFrame(); err != nil {
		t.Fatal(err)
	}
	if _, err := fr.ReadFrame(); err != nil {
		t.Fatal(err)
	}
}
