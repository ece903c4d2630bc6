package recordbatch

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/snappy/xerial"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// ErrTooLarge: a batch's records inflate past the limit its reader allows. Kafka has no such
// limit; a broker that inflates what producers send needs one (a few kilobytes of zstd can
// claim gigabytes).
var ErrTooLarge = errors.New("record batch inflates past the limit")

// DecompressRatioMax is how many times max.message.bytes a batch may inflate to: with Kafka's
// default of 1 MiB, 64 MiB, far beyond what real producers' batches reach (batch.size is
// 16 KiB by default) and well within what a broker can hold in memory for one request.
const DecompressRatioMax = 64

// decompressLimitMin and decompressLimitMax clamp InflateLimit: a tiny max.message.bytes
// still admits ordinary compression ratios, and a huge one does not let one batch take
// gigabytes.
const (
	decompressLimitMin = 8 << 20
	decompressLimitMax = 1 << 30
)

// InflateLimit is the most the records of one batch may inflate to on a topic whose
// max.message.bytes is maxMessageBytes: every reader of a partition uses it.
func InflateLimit(maxMessageBytes int) int {
	return min(max(maxMessageBytes*DecompressRatioMax, decompressLimitMin), decompressLimitMax)
}

// zstdDecoders holds synchronous zstd decoders for reuse (a decoder is expensive to make);
// it is a cache, not state: any decoder in it is idle.
var zstdDecoders = sync.Pool{New: func() any {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		panic("BUG: cannot make a zstd decoder: " + err.Error())
	}
	return d
}}

var gzipReaders sync.Pool // *gzip.Reader

var lz4Readers = sync.Pool{New: func() any { return lz4.NewReader(nil) }}

// Decompress appends the records that src, compressed with codec c, inflates to to dst[:0]
// and returns it; the result holds at most limit bytes, or the error wraps ErrTooLarge.
// Malformed input or an unknown codec is an error wrapping ErrCorruptBatch. CodecNone
// returns src itself. Snappy is accepted raw or xerial-framed, as the Java client writes it;
// lz4 is the lz4 frame format.
func Decompress(dst []byte, c Codec, src []byte, limit int) ([]byte, error) {
	dst = dst[:0]
	var err error
	switch c {
	case CodecNone:
		return src, nil
	case CodecGzip:
		dst, err = inflateGzip(dst, src, limit)
	case CodecSnappy:
		dst, err = inflateSnappy(dst, src, limit)
	case CodecLZ4:
		r := lz4Readers.Get().(*lz4.Reader)
		r.Reset(bytes.NewReader(src))
		dst, err = readLimited(dst, r, len(src), limit)
		r.Reset(nil)
		lz4Readers.Put(r)
	case CodecZstd:
		dst, err = inflateZstd(dst, src, limit)
	default:
		return nil, fmt.Errorf("%w: unknown compression codec %d", ErrCorruptBatch, c)
	}
	if errors.Is(err, ErrTooLarge) {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: cannot decompress %s records: %v", ErrCorruptBatch, c, err)
	}
	return dst, nil
}

func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "uncompressed"
	case CodecGzip:
		return "gzip"
	case CodecSnappy:
		return "snappy"
	case CodecLZ4:
		return "lz4"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec %d", int8(c))
}

// readLimited appends what r, inflating srcLen bytes, yields to dst, failing with
// ErrTooLarge past limit bytes.
func readLimited(dst []byte, r io.Reader, srcLen, limit int) ([]byte, error) {
	if want := min(4*srcLen+512, limit+1); cap(dst) < want {
		dst = make([]byte, 0, want)
	}
	for {
		if len(dst) == cap(dst) {
			if len(dst) > limit {
				return nil, ErrTooLarge
			}
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if len(dst) > limit {
			return nil, ErrTooLarge
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func inflateGzip(dst, src []byte, limit int) ([]byte, error) {
	r, _ := gzipReaders.Get().(*gzip.Reader)
	var err error
	if r == nil {
		r, err = gzip.NewReader(bytes.NewReader(src))
	} else {
		err = r.Reset(bytes.NewReader(src))
	}
	if err != nil {
		return nil, err
	}
	defer gzipReaders.Put(r)
	return readLimited(dst, r, len(src), limit)
}

// xerialHeader starts the framed snappy the Java client writes: magic, version, compatible
// version, then chunks of a 4-byte length and a raw snappy block.
var xerialHeader = []byte{130, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// inflateSnappy sums the decoded lengths every block declares before allocating anything.
func inflateSnappy(dst, src []byte, limit int) ([]byte, error) {
	total := 0
	if len(src) >= 16 && bytes.Equal(src[:8], xerialHeader) {
		for pos := 16; pos < len(src); {
			if len(src)-pos < 4 {
				return nil, xerial.ErrMalformed
			}
			n := int(uint32(src[pos])<<24 | uint32(src[pos+1])<<16 | uint32(src[pos+2])<<8 | uint32(src[pos+3]))
			pos += 4
			if n < 0 || n > len(src)-pos {
				return nil, xerial.ErrMalformed
			}
			l, err := s2.DecodedLen(src[pos : pos+n])
			if err != nil {
				return nil, err
			}
			if total += l; total > limit {
				return nil, ErrTooLarge
			}
			pos += n
		}
	} else {
		l, err := s2.DecodedLen(src)
		if err != nil {
			return nil, err
		}
		total = l
	}
	if total > limit {
		return nil, ErrTooLarge
	}
	// DecodeCapped refuses a zero-capacity buffer even for a stream that inflates to nothing.
	if c := max(total, 1); cap(dst) < c {
		dst = make([]byte, 0, c)
	}
	return xerial.DecodeCapped(dst[:0:max(total, 1)], src)
}

func inflateZstd(dst, src []byte, limit int) ([]byte, error) {
	d := zstdDecoders.Get().(*zstd.Decoder)
	defer zstdDecoders.Put(d)
	if err := d.ResetWithOptions(nil, zstd.WithDecoderMaxMemory(uint64(limit)+1)); err != nil {
		return nil, err
	}
	out, err := d.DecodeAll(src, dst)
	if errors.Is(err, zstd.ErrDecoderSizeExceeded) || len(out) > limit {
		return nil, ErrTooLarge
	}
	return out, err
}

// Body is the records of a whole batch with header h: the bytes after the header, or what
// they inflate to (appended to scratch[:0], at most limit bytes) for a compressed batch.
func Body(batch []byte, h *Header, scratch []byte, limit int) ([]byte, error) {
	if h.Length > len(batch) || h.Length < HeaderLen {
		return nil, fmt.Errorf("%w: batch length %d, %d bytes given", ErrCorruptBatch, h.Length, len(batch))
	}
	return Decompress(scratch, h.Codec(), batch[HeaderLen:h.Length], limit)
}
