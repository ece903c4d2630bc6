package recordbatch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy/xerial"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

func sampleRecords() []Record {
	return []Record{
		{TimestampDelta: 0, OffsetDelta: 0, Key: []byte("k"), Value: []byte("v")},
		{TimestampDelta: 5, OffsetDelta: 1, Key: nil, Value: nil},
		{TimestampDelta: -3, OffsetDelta: 2, Key: []byte{}, Value: bytes.Repeat([]byte("x"), 300),
			Headers: []RecordHeader{{Key: []byte("h1"), Value: []byte("a")}, {Key: []byte(""), Value: nil}}},
	}
}

// buildBatch encodes recs (compressed with c) as one batch.
func buildBatch(t testing.TB, c Codec, recs []Record) []byte {
	var body []byte
	for i := range recs {
		body = recs[i].AppendTo(body)
	}
	body = compress(t, c, body)
	h := NewHeader(int32(len(recs)), 1000)
	h.Attributes = int16(c)
	b := AppendHeader([]byte("prefix"), &h)
	b = append(b, body...)
	return Finish(b, 6)[6:]
}

func compress(t testing.TB, c Codec, b []byte) []byte {
	var buf bytes.Buffer
	switch c {
	case CodecNone:
		return b
	case CodecGzip:
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
	case CodecSnappy:
		return xerial.Encode(nil, b)
	case CodecLZ4:
		w := lz4.NewWriter(&buf)
		w.Write(b)
		w.Close()
	case CodecZstd:
		e, _ := zstd.NewWriter(nil)
		return e.EncodeAll(b, nil)
	default:
		t.Fatalf("codec %d", c)
	}
	return buf.Bytes()
}

func readAll(t testing.TB, batch []byte, limit int) ([]Record, error) {
	h, err := ParseHeader(batch)
	if err != nil {
		return nil, err
	}
	if err := CheckCRC(batch[:h.Length]); err != nil {
		return nil, err
	}
	body, err := Body(batch, &h, nil, limit)
	if err != nil {
		return nil, err
	}
	var out []Record
	it := NewRecords(body, h.RecordCount)
	var r Record
	for it.Next(&r) {
		c := r
		c.Headers = append([]RecordHeader(nil), r.Headers...)
		out = append(out, c)
	}
	return out, it.Err()
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, c := range []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd} {
		t.Run(c.String(), func(t *testing.T) {
			recs := sampleRecords()
			b := buildBatch(t, c, recs)
			h, err := ParseHeader(b)
			if err != nil || h.Length != len(b) || h.Codec() != c || h.RecordCount != 3 || h.LastOffsetDelta != 2 {
				t.Fatalf("header %+v, %v", h, err)
			}
			got, err := readAll(t, b, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(recs) {
				t.Fatalf("%d records, want %d", len(got), len(recs))
			}
			for i := range recs {
				if g, w := fmt.Sprintf("%+v", got[i]), fmt.Sprintf("%+v", recs[i]); g != w {
					t.Errorf("record %d: got %s, want %s", i, g, w)
				}
				if (got[i].Key == nil) != (recs[i].Key == nil) || (got[i].Value == nil) != (recs[i].Value == nil) {
					t.Errorf("record %d: null key/value not kept", i)
				}
			}
			if n, err := Validate(append(append([]byte(nil), b...), b...)); n != 2 || err != nil {
				t.Fatalf("Validate: %d, %v", n, err)
			}
		})
	}
}

func TestStamp(t *testing.T) {
	t.Parallel()
	b := buildBatch(t, CodecNone, sampleRecords())
	Stamp(b, 7, -1)
	if h, _ := ParseHeader(b); h.LeaderEpoch != 7 || h.LogAppendTime() || CheckCRC(b) != nil {
		t.Fatalf("stamp without append time: %+v", h)
	}
	Stamp(b, 0, 99)
	if h, _ := ParseHeader(b); h.MaxTimestamp != 99 || !h.LogAppendTime() || CheckCRC(b) != nil {
		t.Fatalf("stamp with append time: %+v %v", h, CheckCRC(b))
	}
}

func TestInPlaceValue(t *testing.T) {
	t.Parallel()
	r := Record{OffsetDelta: 0, Value: []byte("hello"), Headers: []RecordHeader{{Key: []byte("a")}}}
	want := r.AppendTo(nil)
	got := r.AppendHead(nil, 5)
	got = r.AppendTail(append(got, "hello"...))
	if !bytes.Equal(got, want) {
		t.Fatalf("AppendHead+value+AppendTail = %x, AppendTo = %x", got, want)
	}
}

// rawBatch wraps a hand-made body in a valid header and CRC.
func rawBatch(count int32, attrs int16, body []byte) []byte {
	h := NewHeader(count, 1)
	h.Attributes = attrs
	return Finish(append(AppendHeader(nil, &h), body...), 0)
}

func rec(fields ...[]byte) []byte {
	var body []byte
	for _, f := range fields {
		body = append(body, f...)
	}
	return append(binary.AppendVarint(nil, int64(len(body))), body...)
}

func vi(v int64) []byte { return binary.AppendVarint(nil, v) }

func TestBadRecords(t *testing.T) {
	t.Parallel()
	ok := rec([]byte{0}, vi(0), vi(0), vi(-1), vi(1), []byte("v"), vi(0))
	zeros := compress(t, CodecZstd, make([]byte, 4<<20))
	cases := []struct {
		name  string
		batch []byte
		want  error
	}{
		{"codec 7", rawBatch(1, 7, ok), ErrCorruptBatch},
		{"gzip that is not gzip", rawBatch(1, int16(CodecGzip), ok), ErrCorruptBatch},
		{"record length -1", rawBatch(1, 0, append(vi(-1), ok...)), ErrInvalidRecord},
		{"header count 2^31-1", rawBatch(1, 0, rec([]byte{0}, vi(0), vi(0), vi(-1), vi(-1), vi(1<<31-1))), ErrInvalidRecord},
		{"value length 2^62", rawBatch(1, 0, rec([]byte{0}, vi(0), vi(0), vi(-1), vi(1<<62))), ErrInvalidRecord},
		{"count 2^31-1, one record", rawBatch(1<<31-1, 0, ok), ErrInvalidRecord},
		{"count 2, one record", rawBatch(2, 0, ok), ErrInvalidRecord},
		{"trailing bytes", rawBatch(1, 0, append(ok, 0)), ErrInvalidRecord},
		{"negative header key", rawBatch(1, 0, rec([]byte{0}, vi(0), vi(0), vi(-1), vi(-1), vi(1), vi(-1), vi(-1))), ErrInvalidRecord},
		{"bytes after headers", rawBatch(1, 0, rec([]byte{0}, vi(0), vi(0), vi(-1), vi(-1), vi(0), []byte{1})), ErrInvalidRecord},
		{"zstd bomb", rawBatch(1, int16(CodecZstd), zeros), ErrTooLarge},
	}
	for _, c := range cases {
		if _, err := readAll(t, c.batch, 1<<20); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	if got, err := readAll(t, rawBatch(1, 0, ok), 1<<20); err != nil || len(got) != 1 || string(got[0].Value) != "v" {
		t.Fatalf("control case: %v %v", got, err)
	}
}

func TestBombsBounded(t *testing.T) {
	t.Parallel()
	zeros := make([]byte, 8<<20)
	for _, c := range []Codec{CodecGzip, CodecSnappy, CodecLZ4, CodecZstd} {
		src := compress(t, c, zeros)
		if _, err := Decompress(nil, c, src, 1<<20); !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: got %v, want ErrTooLarge", c, err)
		}
		if out, err := Decompress(nil, c, src, len(zeros)); err != nil || len(out) != len(zeros) {
			t.Errorf("%s at the limit: %d bytes, %v", c, len(out), err)
		}
	}
}

func TestInflateLimit(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want int }{{1 << 20, 64 << 20}, {1, decompressLimitMin}, {1 << 30, decompressLimitMax}} {
		if got := InflateLimit(c.in); got != c.want {
			t.Errorf("InflateLimit(%d) = %d, want %d", c.in, got, c.want)
		}
	}
}

func FuzzBatch(f *testing.F) {
	for _, c := range []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd} {
		f.Add(buildBatch(f, c, sampleRecords()))
	}
	f.Add(rawBatch(2, 0, rec([]byte{0}, vi(0), vi(0), vi(-1), vi(-1), vi(0))))
	f.Fuzz(func(t *testing.T, data []byte) {
		b := data[:len(data):len(data)] // appends must not write past the input
		_, _ = Validate(b)
		_, _ = ParsePrefix(b)
		batch, _, h, err := Split(b)
		if err != nil {
			return
		}
		if _, err := CheckRecords(batch, &h, nil, 1<<20); err == nil && h.RecordCount > 0 {
			if _, err := Body(batch, &h, nil, 1<<20); err != nil {
				t.Fatalf("CheckRecords accepted what Body refuses: %v", err)
			}
		}
		body, err := Body(batch, &h, nil, 1<<20)
		if err != nil {
			return
		}
		// What the broker compresses itself (the log cleaner) inflates back to the same bytes.
		for _, c := range []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd} {
			z, err := Compress([]byte("prefix"), c, body)
			if err != nil {
				t.Fatalf("compress with %s: %v", c, err)
			}
			if !bytes.HasPrefix(z, []byte("prefix")) {
				t.Fatalf("compress with %s did not append", c)
			}
			back, err := Decompress(nil, c, z[len("prefix"):], 1<<20)
			if err != nil || !bytes.Equal(back, body) {
				t.Fatalf("%s round trip: %v", c, err)
			}
		}
		it := NewRecords(body, h.RecordCount)
		var r Record
		var again []byte
		for it.Next(&r) {
			again = r.AppendTo(again)
		}
		if it.Err() == nil && h.Codec() == CodecNone && !bytes.Equal(again, batch[HeaderLen:]) {
			// Varints have one shortest encoding, but a producer may write longer ones;
			// re-encoding must then at least decode to the same records.
			it2 := NewRecords(again, h.RecordCount)
			var r2 Record
			it.b, it.left, it.err = body, h.RecordCount, nil
			for it.Next(&r) {
				if !it2.Next(&r2) || fmt.Sprint(r) != fmt.Sprint(r2) {
					t.Fatalf("re-encoded records differ")
				}
			}
		}
	})
}

// Stamp's CRC update equals a full recomputation, for any batch size and stamp.
func TestStampCRCUpdate(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 7, 100, 4096, 1 << 20} {
		b := rawBatch(1, 0, bytes.Repeat([]byte{0xa5, 0x3c, 0x00}, n/3+1)[:n])
		for _, ts := range []int64{0, 1, -1 << 40, 1<<62 + 12345} {
			c := append([]byte(nil), b...)
			Stamp(c, 3, ts)
			if ts >= 0 {
				if err := CheckCRC(c); err != nil {
					t.Fatalf("%d-byte body stamped %d: %v", n, ts, err)
				}
			}
		}
	}
}

func FuzzStampCRC(f *testing.F) {
	f.Add([]byte("records"), int64(5), int16(0))
	f.Fuzz(func(t *testing.T, body []byte, ts int64, attrs int16) {
		if ts < 0 {
			ts = -ts - 1
		}
		b := rawBatch(1, attrs, body)
		Stamp(b, 0, ts)
		if err := CheckCRC(b); err != nil {
			t.Fatal(err)
		}
	})
}

// benchBatch is what a producer with the default batch.size sends: 16 records of 1 KiB.
func benchBatch(b *testing.B, c Codec) []byte {
	recs := make([]Record, 16)
	for i := range recs {
		recs[i] = Record{OffsetDelta: int32(i), Value: bytes.Repeat([]byte{byte(i)}, 1024)}
	}
	return buildBatch(b, c, recs)
}

// BenchmarkProduceChecks: the per-batch work of the produce path (CRC check, record walk,
// stamp), against the CRC alone.
func BenchmarkProduceChecks(b *testing.B) {
	for _, c := range []Codec{CodecNone, CodecZstd} {
		batch := benchBatch(b, c)
		h, _ := ParseHeader(batch)
		b.Run("crc/"+c.String(), func(b *testing.B) {
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			for b.Loop() {
				if err := CheckCRC(batch); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("records/"+c.String(), func(b *testing.B) {
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			var scratch []byte
			for b.Loop() {
				var err error
				if scratch, err = CheckRecords(batch, &h, scratch, 64<<20); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("stamp-logappendtime/"+c.String(), func(b *testing.B) {
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			for b.Loop() {
				Stamp(batch, 0, 12345)
			}
		})
	}
}

// Compress writes what Decompress reads back, for every codec, empty input included.
func TestCompressRoundTrip(t *testing.T) {
	t.Parallel()
	body := bytes.Repeat([]byte("records of a batch "), 1000)
	for _, c := range []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd} {
		for _, in := range [][]byte{body, {}, []byte("x")} {
			z, err := Compress(nil, c, in)
			if err != nil {
				t.Fatalf("%s: %v", c, err)
			}
			if c != CodecNone && len(in) == len(body) && len(z) >= len(body)/4 {
				t.Errorf("%s: %d bytes compressed to %d", c, len(in), len(z))
			}
			back, err := Decompress(nil, c, z, 1<<20)
			if err != nil || !bytes.Equal(back, in) {
				t.Fatalf("%s round trip of %d bytes: %v", c, len(in), err)
			}
		}
	}
	if _, err := Compress(nil, Codec(5), body); err == nil {
		t.Fatal("codec 5 compressed")
	}
}
