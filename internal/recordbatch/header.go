// Package recordbatch is yard's one codec for Kafka's RecordBatch v2, the unit every log of
// yard stores (Kafka partitions, AMQP streams, durable queues, the committed-offsets log): the
// fixed header (parse, validate, stamp), its CRC-32C, a builder that appends batches and
// records to a caller's buffer, an iterator over the records of a batch, and decompression
// bounded by a caller-given size.
//
// It imports nothing of yard's, so the storage engine (internal/log) can use it.
//
// A batch, big-endian, as Kafka defines it (KIP-98):
//
//	offset  size  field
//	 0      8     baseOffset            int64, assigned by the log (outside the CRC)
//	 8      4     batchLength           int32, bytes after this field (whole = 12 + batchLength)
//	12      4     partitionLeaderEpoch  int32, set by the broker (outside the CRC)
//	16      1     magic                 int8, 2
//	17      4     crc                   uint32, CRC-32C (Castagnoli) of bytes 21..end
//	21      2     attributes            int16: bits 0-2 codec (0 none, 1 gzip, 2 snappy,
//	                                    3 lz4, 4 zstd), bit 3 timestamp type (1 =
//	                                    LogAppendTime), bit 4 transactional, bit 5 control
//	23      4     lastOffsetDelta       int32, last offset = baseOffset + lastOffsetDelta
//	27      8     baseTimestamp         int64, ms
//	35      8     maxTimestamp          int64, ms; the append time for LogAppendTime
//	43      8     producerId            int64, -1 = not idempotent
//	51      2     producerEpoch         int16
//	53      4     baseSequence          int32
//	57      4     recordCount           int32
//	61      ...   records (see record.go), compressed as a whole when the codec is not 0
//
// Because baseOffset and partitionLeaderEpoch are outside the CRC, the log assigns offsets
// and the broker sets the epoch without recomputing it.
package recordbatch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Sizes and field positions of the header.
const (
	HeaderLen   = 61 // the fixed header; records follow
	LogOverhead = 12 // baseOffset and batchLength, which batchLength does not count
	// PrefixLen is enough of the header for what the storage engine indexes: offsets,
	// length and max timestamp.
	PrefixLen = 43
	MagicV2   = 2
	// MaxBatchBytes is a sanity bound on one whole batch: no producer sends more.
	MaxBatchBytes = 1 << 30

	OffBaseOffset      = 0
	OffLength          = 8
	OffLeaderEpoch     = 12
	OffMagic           = 16
	OffCRC             = 17
	OffAttributes      = 21
	OffLastOffsetDelta = 23
	OffBaseTimestamp   = 27
	OffMaxTimestamp    = 35
	OffProducerID      = 43
	OffProducerEpoch   = 51
	OffBaseSequence    = 53
	OffRecordCount     = 57
)

// Attribute bits.
const (
	AttrCodecMask     = 0x7
	AttrLogAppendTime = 1 << 3
	AttrTransactional = 1 << 4
	AttrControl       = 1 << 5
	// AttrDeleteHorizon (KIP-534): the log cleaner set the batch's delete horizon, held in
	// its baseTimestamp; its tombstones and a removable marker go once it is past.
	AttrDeleteHorizon = 1 << 6
)

// Codec is the compression of a batch's records (attributes bits 0-2).
type Codec int8

// Codecs Kafka defines; 5-7 are invalid.
const (
	CodecNone   Codec = 0
	CodecGzip   Codec = 1
	CodecSnappy Codec = 2
	CodecLZ4    Codec = 3
	CodecZstd   Codec = 4
)

// ErrCorruptBatch marks bytes that are not a well-formed batch: bad header, length, magic,
// CRC, compression or records. Every package of yard reports malformed batches with it.
var ErrCorruptBatch = errors.New("corrupt record batch")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Header is the parsed fixed header of a batch.
type Header struct {
	BaseOffset      int64
	Length          int // whole batch, including baseOffset and batchLength
	LeaderEpoch     int32
	CRC             uint32
	Attributes      int16
	LastOffsetDelta int32
	BaseTimestamp   int64
	MaxTimestamp    int64
	ProducerID      int64
	ProducerEpoch   int16
	BaseSequence    int32
	RecordCount     int32
}

// Codec is the compression of the records.
func (h *Header) Codec() Codec { return Codec(h.Attributes & AttrCodecMask) }

// LastOffset is the offset of the batch's last record.
func (h *Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// LogAppendTime reports whether the records' timestamps are the batch's maxTimestamp.
func (h *Header) LogAppendTime() bool { return h.Attributes&AttrLogAppendTime != 0 }

// Control reports a control batch (transaction markers).
func (h *Header) Control() bool { return h.Attributes&AttrControl != 0 }

// Transactional reports a batch written in a transaction.
func (h *Header) Transactional() bool { return h.Attributes&AttrTransactional != 0 }

// DeleteHorizon is the delete horizon the log cleaner wrote into the batch (KIP-534), if any.
func (h *Header) DeleteHorizon() (int64, bool) {
	return h.BaseTimestamp, h.Attributes&AttrDeleteHorizon != 0
}

// Prefix is what the first PrefixLen bytes of a header tell.
type Prefix struct {
	BaseOffset      int64
	Size            int64 // whole batch, including the 12-byte log overhead
	LastOffsetDelta int64 // >= 0
	MaxTimestamp    int64
}

// LastOffset is the offset of the batch's last record.
func (p Prefix) LastOffset() int64 { return p.BaseOffset + p.LastOffsetDelta }

// ParsePrefix decodes and sanity-checks the first PrefixLen bytes of a header: a length
// between a bare header and MaxBatchBytes, magic 2, a non-negative lastOffsetDelta. It reads
// nothing past b and does not check the CRC (that needs the whole batch).
func ParsePrefix(b []byte) (Prefix, error) {
	if len(b) < PrefixLen {
		return Prefix{}, fmt.Errorf("%w: header truncated (%d bytes)", ErrCorruptBatch, len(b))
	}
	length := int64(int32(binary.BigEndian.Uint32(b[OffLength:])))
	if length < HeaderLen-LogOverhead || length > MaxBatchBytes {
		return Prefix{}, fmt.Errorf("%w: batch length %d out of range", ErrCorruptBatch, length)
	}
	if b[OffMagic] != MagicV2 {
		return Prefix{}, fmt.Errorf("%w: magic %d, only 2 is supported", ErrCorruptBatch, int8(b[OffMagic]))
	}
	delta := int64(int32(binary.BigEndian.Uint32(b[OffLastOffsetDelta:])))
	if delta < 0 {
		return Prefix{}, fmt.Errorf("%w: negative lastOffsetDelta %d", ErrCorruptBatch, delta)
	}
	return Prefix{
		BaseOffset:      int64(binary.BigEndian.Uint64(b)),
		Size:            length + LogOverhead,
		LastOffsetDelta: delta,
		MaxTimestamp:    int64(binary.BigEndian.Uint64(b[OffMaxTimestamp:])),
	}, nil
}

// ParseHeader decodes the fixed header at the start of b (at least HeaderLen bytes; the
// records need not follow) with ParsePrefix's checks. It does not check the CRC.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, fmt.Errorf("%w: %d bytes is shorter than a batch header", ErrCorruptBatch, len(b))
	}
	p, err := ParsePrefix(b)
	if err != nil {
		return Header{}, err
	}
	return Header{
		BaseOffset:      p.BaseOffset,
		Length:          int(p.Size),
		LeaderEpoch:     int32(binary.BigEndian.Uint32(b[OffLeaderEpoch:])),
		CRC:             binary.BigEndian.Uint32(b[OffCRC:]),
		Attributes:      int16(binary.BigEndian.Uint16(b[OffAttributes:])),
		LastOffsetDelta: int32(p.LastOffsetDelta),
		BaseTimestamp:   int64(binary.BigEndian.Uint64(b[OffBaseTimestamp:])),
		MaxTimestamp:    p.MaxTimestamp,
		ProducerID:      int64(binary.BigEndian.Uint64(b[OffProducerID:])),
		ProducerEpoch:   int16(binary.BigEndian.Uint16(b[OffProducerEpoch:])),
		BaseSequence:    int32(binary.BigEndian.Uint32(b[OffBaseSequence:])),
		RecordCount:     int32(binary.BigEndian.Uint32(b[OffRecordCount:])),
	}, nil
}

// Checksum is the CRC-32C of a whole batch as its crc field should hold it.
func Checksum(batch []byte) uint32 { return crc32.Checksum(batch[OffAttributes:], castagnoli) }

// CheckCRC verifies the crc field of a whole batch (len(batch) == its length, at least
// HeaderLen).
func CheckCRC(batch []byte) error {
	want := binary.BigEndian.Uint32(batch[OffCRC:])
	if got := Checksum(batch); got != want {
		return fmt.Errorf("%w: crc %08x, header says %08x", ErrCorruptBatch, got, want)
	}
	return nil
}

// Split returns the whole batch at the start of b (header checked, CRC not) and what follows.
// A b that ends inside the batch is an error wrapping ErrCorruptBatch.
func Split(b []byte) (batch, rest []byte, h Header, err error) {
	if h, err = ParseHeader(b); err != nil {
		return nil, nil, h, err
	}
	if h.Length > len(b) {
		return nil, nil, h, fmt.Errorf("%w: batch length %d exceeds the %d bytes given", ErrCorruptBatch, h.Length, len(b))
	}
	return b[:h.Length], b[h.Length:], h, nil
}

// Validate checks that b is a non-empty concatenation of whole batches with valid headers
// and CRCs, and returns how many there are.
func Validate(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, fmt.Errorf("%w: no batch", ErrCorruptBatch)
	}
	n := 0
	for pos := 0; pos < len(b); n++ {
		p, err := ParsePrefix(b[pos:])
		if err == nil && p.Size > int64(len(b)-pos) {
			err = fmt.Errorf("%w: length %d exceeds the %d bytes given", ErrCorruptBatch, p.Size, len(b)-pos)
		}
		if err == nil {
			err = CheckCRC(b[pos : pos+int(p.Size)])
		}
		if err != nil {
			return 0, fmt.Errorf("cannot validate batch %d at byte %d: %w", n, pos, err)
		}
		pos += int(p.Size)
	}
	return n, nil
}

// SetBaseOffset rewrites a batch's baseOffset (outside the CRC).
func SetBaseOffset(batch []byte, offset int64) {
	binary.BigEndian.PutUint64(batch[OffBaseOffset:], uint64(offset))
}

// Stamp prepares a checked batch for the log as a broker does: its partition leader epoch,
// and for LogAppendTime topics (logAppendTimeMs >= 0) the append time in maxTimestamp with the
// timestamp-type bit set (the records keep their deltas; readers use maxTimestamp). The CRC
// covers attributes and timestamps, so it is updated when they change, from the old CRC and
// the changed bytes alone, without reading the records again (see crcShift): a valid batch
// stays valid (and an invalid one invalid).
func Stamp(batch []byte, leaderEpoch int32, logAppendTimeMs int64) {
	binary.BigEndian.PutUint32(batch[OffLeaderEpoch:], uint32(leaderEpoch))
	if logAppendTimeMs < 0 {
		return
	}
	head := batch[OffAttributes : OffAttributes+stampedLen]
	var old [stampedLen]byte
	copy(old[:], head)
	attrs := binary.BigEndian.Uint16(head) | AttrLogAppendTime
	binary.BigEndian.PutUint16(head, attrs)
	binary.BigEndian.PutUint64(batch[OffMaxTimestamp:], uint64(logAppendTimeMs))
	// A CRC is affine in its input: for messages of equal length, crc(A) ^ crc(B) is the CRC
	// of A ^ B with zero initial and final values, which is crc(A ^ B) ^ crc(zeros). A ^ B is
	// nonzero only in head; the bytes after it multiply that CRC by x^(8 * their count).
	for i := range head {
		head[i] ^= old[i]
	}
	raw := crc32.Checksum(head, castagnoli) ^ crcStampedZeros
	for i := range head {
		head[i] ^= old[i]
	}
	crc := binary.BigEndian.Uint32(batch[OffCRC:]) ^ crcShift(raw, len(batch)-OffAttributes-stampedLen)
	binary.BigEndian.PutUint32(batch[OffCRC:], crc)
}

// stampedLen is the span of the CRC's range that Stamp may change: attributes to
// maxTimestamp.
const stampedLen = OffMaxTimestamp + 8 - OffAttributes

var crcStampedZeros = crc32.Checksum(make([]byte, stampedLen), castagnoli)

// castagnoliReversed is the CRC-32C polynomial, bit-reversed as the table-driven CRC uses it:
// bit 31 is x^0 and bit 0 is x^31.
const castagnoliReversed = 0x82f63b78

// gfMul multiplies a and b modulo the polynomial, in the reversed representation.
func gfMul(a, b uint32) uint32 {
	var p uint32
	for m := uint32(1) << 31; m != 0 && a != 0; m >>= 1 {
		if a&m != 0 {
			p ^= b
			a &^= m
		}
		if b&1 != 0 {
			b = b>>1 ^ castagnoliReversed
		} else {
			b >>= 1
		}
	}
	return p
}

// x8pow2 holds x^(8 * 2^k) modulo the polynomial for k = 0..62.
var x8pow2 = func() (t [63]uint32) {
	t[0] = 1 << (31 - 8) // x^8
	for k := 1; k < len(t); k++ {
		t[k] = gfMul(t[k-1], t[k-1])
	}
	return t
}()

// crcShift is what a zero-initialised, unfinalised CRC c becomes after n more zero bytes:
// c * x^(8n) modulo the polynomial, in O(log n).
func crcShift(c uint32, n int) uint32 {
	for k := 0; n > 0; k, n = k+1, n>>1 {
		if n&1 != 0 {
			c = gfMul(x8pow2[k], c)
		}
	}
	return c
}

// CRC32C is the CRC-32C (Castagnoli) of b, the checksum of batches and of yard's own small
// files: one table for all of them.
func CRC32C(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
