package recordbatch

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy/xerial"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Compression, for the few batches the broker rewrites itself (the log cleaner rewrites a
// batch that loses records with the batch's own codec, as Kafka does). Each codec writes the
// format its Kafka counterpart writes: gzip; snappy xerial-framed (the Java client's
// SnappyOutputStream); lz4 frames with independent blocks; zstd frames.

// zstdEncoders holds zstd encoders for reuse (one is expensive to make); any one in it is idle.
var zstdEncoders = sync.Pool{New: func() any {
	e, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault),
		// The frame declares its content size as its window: a reader needs no more memory
		// than the records take.
		zstd.WithSingleSegment(true))
	if err != nil {
		panic("BUG: cannot make a zstd encoder: " + err.Error())
	}
	return e
}}

var gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}

var lz4Writers = sync.Pool{New: func() any { return lz4.NewWriter(nil) }}

// Compress appends the records src compressed with codec c to dst and returns it; CodecNone
// appends src as it is. An unknown codec is an error.
func Compress(dst []byte, c Codec, src []byte) ([]byte, error) {
	switch c {
	case CodecNone:
		return append(dst, src...), nil
	case CodecGzip:
		buf := bytes.NewBuffer(dst)
		w := gzipWriters.Get().(*gzip.Writer)
		defer gzipWriters.Put(w)
		w.Reset(buf)
		if _, err := w.Write(src); err != nil {
			return dst, fmt.Errorf("cannot compress records with gzip: %w", err)
		}
		if err := w.Close(); err != nil {
			return dst, fmt.Errorf("cannot compress records with gzip: %w", err)
		}
		return buf.Bytes(), nil
	case CodecSnappy:
		// xerial.Encode writes the stream header only into an empty dst: write it here.
		dst = append(dst, xerialHeader...)
		dst = append(dst, 0, 0, 0, 1, 0, 0, 0, 1) // version 1, compatible with version 1
		if len(src) == 0 {                        // one empty block, so that every reader sees a block
			return append(dst, 0, 0, 0, 1, 0), nil
		}
		return xerial.Encode(dst, src), nil
	case CodecLZ4:
		buf := bytes.NewBuffer(dst)
		w := lz4Writers.Get().(*lz4.Writer)
		defer lz4Writers.Put(w)
		w.Reset(buf)
		if _, err := w.Write(src); err != nil {
			return dst, fmt.Errorf("cannot compress records with lz4: %w", err)
		}
		if err := w.Close(); err != nil {
			return dst, fmt.Errorf("cannot compress records with lz4: %w", err)
		}
		return buf.Bytes(), nil
	case CodecZstd:
		e := zstdEncoders.Get().(*zstd.Encoder)
		defer zstdEncoders.Put(e)
		return e.EncodeAll(src, dst), nil
	}
	return dst, fmt.Errorf("cannot compress records: unknown compression codec %d", c)
}
