package recordbatch

// Records of a batch, after its header (decompressed first when the codec is not 0), each as
// Kafka defines it; varint and varlong are zigzag-encoded (encoding/binary's Varint):
//
//	length          varint   bytes of the record after this field
//	attributes      int8     unused, 0
//	timestampDelta  varlong  timestamp - baseTimestamp
//	offsetDelta     varint   offset - baseOffset
//	keyLength       varint   -1 = null key
//	key             bytes
//	valueLength     varint   -1 = null value
//	value           bytes
//	headerCount     varint   >= 0
//	headers         headerCount times:
//	                  keyLength varint (>= 0), key bytes (UTF-8),
//	                  valueLength varint (-1 = null), value bytes
//
// The encoders below append to a caller's buffer and compute each length before writing, so
// a record is written once, in place (no intermediate buffer).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// ErrInvalidRecord marks a batch whose header and CRC are sound but whose records are not
// (Kafka's InvalidRecordException): wrong lengths, counts or structure.
var ErrInvalidRecord = errors.New("invalid record")

// Record is one record. Slices alias the batch (or the decompressed body) they were read from.
type Record struct {
	Attributes     int8
	TimestampDelta int64
	OffsetDelta    int32
	Key, Value     []byte // nil = null
	Headers        []RecordHeader
}

// RecordHeader is one record header.
type RecordHeader struct {
	Key   []byte
	Value []byte // nil = null
}

func varintLen(v int64) int {
	u := uint64(v<<1) ^ uint64(v>>63)
	n := 1
	for ; u >= 0x80; u >>= 7 {
		n++
	}
	return n
}

func bytesLen(b []byte) int {
	if b == nil {
		return varintLen(-1)
	}
	return varintLen(int64(len(b))) + len(b)
}

func appendBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

// headersLen is the encoded size of a header count and headers.
func headersLen(hs []RecordHeader) int {
	n := varintLen(int64(len(hs)))
	for i := range hs {
		n += varintLen(int64(len(hs[i].Key))) + len(hs[i].Key) + bytesLen(hs[i].Value)
	}
	return n
}

// headLen is the size of r after its length field, with a value of valueLen bytes.
func (r *Record) bodyLen(valueLen int) int {
	n := 1 + varintLen(r.TimestampDelta) + varintLen(int64(r.OffsetDelta)) + bytesLen(r.Key)
	if valueLen < 0 {
		n += varintLen(-1)
	} else {
		n += varintLen(int64(valueLen)) + valueLen
	}
	return n + headersLen(r.Headers)
}

// AppendTo appends r, with its length, to dst.
func (r *Record) AppendTo(dst []byte) []byte {
	vl := len(r.Value)
	if r.Value == nil {
		vl = -1
	}
	dst = r.AppendHead(dst, vl)
	dst = append(dst, r.Value...)
	return r.AppendTail(dst)
}

// AppendHead appends r up to its value, whose length is valueLen (-1 = null) and which the
// caller appends next, followed by AppendTail: a value can so be encoded straight into dst.
// r.Value is ignored.
func (r *Record) AppendHead(dst []byte, valueLen int) []byte {
	dst = binary.AppendVarint(dst, int64(r.bodyLen(valueLen)))
	dst = append(dst, byte(r.Attributes))
	dst = binary.AppendVarint(dst, r.TimestampDelta)
	dst = binary.AppendVarint(dst, int64(r.OffsetDelta))
	dst = appendBytes(dst, r.Key)
	return binary.AppendVarint(dst, int64(valueLen))
}

// AppendTail appends r's headers, after its value.
func (r *Record) AppendTail(dst []byte) []byte {
	dst = binary.AppendVarint(dst, int64(len(r.Headers)))
	for i := range r.Headers {
		dst = binary.AppendVarint(dst, int64(len(r.Headers[i].Key)))
		dst = append(dst, r.Headers[i].Key...)
		dst = appendBytes(dst, r.Headers[i].Value)
	}
	return dst
}

// AppendHeader appends a batch header from h to dst; batchLength and crc are left zero for
// Finish. h.Length and h.CRC are ignored.
func AppendHeader(dst []byte, h *Header) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(h.BaseOffset))
	dst = binary.BigEndian.AppendUint32(dst, 0) // batchLength, set by Finish
	dst = binary.BigEndian.AppendUint32(dst, uint32(h.LeaderEpoch))
	dst = append(dst, MagicV2)
	dst = binary.BigEndian.AppendUint32(dst, 0) // crc, set by Finish
	dst = binary.BigEndian.AppendUint16(dst, uint16(h.Attributes))
	dst = binary.BigEndian.AppendUint32(dst, uint32(h.LastOffsetDelta))
	dst = binary.BigEndian.AppendUint64(dst, uint64(h.BaseTimestamp))
	dst = binary.BigEndian.AppendUint64(dst, uint64(h.MaxTimestamp))
	dst = binary.BigEndian.AppendUint64(dst, uint64(h.ProducerID))
	dst = binary.BigEndian.AppendUint16(dst, uint16(h.ProducerEpoch))
	dst = binary.BigEndian.AppendUint32(dst, uint32(h.BaseSequence))
	return binary.BigEndian.AppendUint32(dst, uint32(h.RecordCount))
}

// NewHeader is the header of a batch a broker writes itself: count uncompressed records with
// offset deltas 0..count-1, all stamped tsMs, no producer.
func NewHeader(count int32, tsMs int64) Header {
	return Header{LastOffsetDelta: count - 1, BaseTimestamp: tsMs, MaxTimestamp: tsMs,
		ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, RecordCount: count}
}

// Finish sets batchLength and crc of the batch that starts at start in dst (its header by
// AppendHeader, then its records) and returns dst.
func Finish(dst []byte, start int) []byte {
	b := dst[start:]
	if len(b) < HeaderLen || len(b)-LogOverhead > math.MaxInt32 {
		panic(fmt.Sprintf("BUG: finishing a batch of %d bytes", len(b)))
	}
	binary.BigEndian.PutUint32(b[OffLength:], uint32(len(b)-LogOverhead))
	binary.BigEndian.PutUint32(b[OffCRC:], Checksum(b))
	return dst
}

// Records iterates over the records of a batch body (decompressed), checking every length
// against the bytes that remain: it never reads past the body. The body must hold exactly
// the declared count of records; a shortfall or trailing bytes are errors wrapping
// ErrInvalidRecord, as in Kafka.
type Records struct {
	b           []byte
	left        int32
	index       int32
	err         error
	skipHeaders bool // check headers but do not collect them (CheckRecords)
}

// NewRecords iterates over count records in body.
func NewRecords(body []byte, count int32) Records {
	r := Records{b: body, left: count}
	if count < 0 {
		r.err = fmt.Errorf("%w: negative record count %d", ErrInvalidRecord, count)
	}
	return r
}

// Err is the error that stopped Next, nil at a clean end.
func (it *Records) Err() error { return it.err }

// Next decodes the next record into r (reusing r.Headers' storage) and reports whether there
// was one; at the end, or on an error, it returns false (see Err).
func (it *Records) Next(r *Record) bool {
	if it.err != nil {
		return false
	}
	if it.left == 0 {
		if len(it.b) != 0 {
			it.err = fmt.Errorf("%w: %d bytes after the last declared record", ErrInvalidRecord, len(it.b))
		}
		return false
	}
	if err := it.decode(r); err != nil {
		it.err = fmt.Errorf("%w: record %d: %s", ErrInvalidRecord, it.index, err)
		return false
	}
	it.left--
	it.index++
	return true
}

// cursor reads fields of one record without reading past it.
type cursor struct {
	b   []byte
	bad string
}

func (c *cursor) varint(what string) int64 {
	if c.bad != "" {
		return 0
	}
	v, k := binary.Varint(c.b)
	if k <= 0 {
		c.bad = "bad " + what
		return 0
	}
	c.b = c.b[k:]
	return v
}

// bytes reads a length-prefixed field; null (-1) only if nullable.
func (c *cursor) bytes(what string, nullable bool) []byte {
	n := c.varint(what + " length")
	if c.bad != "" {
		return nil
	}
	if n == -1 && nullable {
		return nil
	}
	if n < 0 || n > int64(len(c.b)) {
		c.bad = fmt.Sprintf("%s length %d with %d bytes left", what, n, len(c.b))
		return nil
	}
	v := c.b[:n:n]
	c.b = c.b[n:]
	return v
}

func (it *Records) decode(r *Record) error {
	if len(it.b) == 0 {
		return fmt.Errorf("batch declares %d more records than it holds", it.left)
	}
	n, k := binary.Varint(it.b)
	if k <= 0 || n < 1 || n > int64(len(it.b)-k) {
		return fmt.Errorf("record length %d with %d bytes left", n, len(it.b)-max(k, 0))
	}
	c := cursor{b: it.b[k : k+int(n)]}
	it.b = it.b[k+int(n):]
	r.Attributes = int8(c.b[0])
	c.b = c.b[1:]
	r.TimestampDelta = c.varint("timestamp delta")
	od := c.varint("offset delta")
	if od < math.MinInt32 || od > math.MaxInt32 {
		return fmt.Errorf("offset delta %d out of range", od)
	}
	r.OffsetDelta = int32(od)
	r.Key = c.bytes("key", true)
	r.Value = c.bytes("value", true)
	nh := c.varint("header count")
	if c.bad != "" {
		return errors.New(c.bad)
	}
	// A header takes at least two bytes (two lengths): a larger count cannot fit.
	if nh < 0 || nh > int64(len(c.b))/2 {
		return fmt.Errorf("header count %d with %d bytes left", nh, len(c.b))
	}
	r.Headers = r.Headers[:0]
	for range nh {
		hk := c.bytes("header key", false)
		hv := c.bytes("header value", true)
		if c.bad != "" {
			return errors.New(c.bad)
		}
		if !it.skipHeaders {
			r.Headers = append(r.Headers, RecordHeader{Key: hk, Value: hv})
		}
	}
	if len(c.b) != 0 {
		return fmt.Errorf("%d bytes after the record's headers, within its length", len(c.b))
	}
	return nil
}

// Index is how many records Next has returned.
func (it *Records) Index() int32 { return it.index }

// CheckRecords walks every record of a whole batch with header h (CRC already checked) as
// Kafka does when a producer sends it: the records are decompressed within limit bytes
// (into scratch, returned for reuse), every length is checked against the bytes that remain,
// the batch must hold exactly h.RecordCount records, and every offset delta must lie within
// the batch. Errors wrap ErrCorruptBatch (unknown codec, data that does not decompress),
// ErrTooLarge, or ErrInvalidRecord (the records themselves).
func CheckRecords(batch []byte, h *Header, scratch []byte, limit int) ([]byte, error) {
	body, err := Body(batch, h, scratch, limit)
	if err != nil {
		return scratch, err
	}
	if h.Codec() != CodecNone {
		scratch = body[:0]
	}
	it := NewRecords(body, h.RecordCount)
	it.skipHeaders = true
	var r Record
	for it.Next(&r) {
		if r.OffsetDelta < 0 || r.OffsetDelta > h.LastOffsetDelta {
			return scratch, fmt.Errorf("%w: record %d: offset delta %d outside the batch's [0, %d]",
				ErrInvalidRecord, it.index-1, r.OffsetDelta, h.LastOffsetDelta)
		}
	}
	return scratch, it.Err()
}
