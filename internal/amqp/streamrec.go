package amqp

// Stream records: an AMQP message published to a stream queue becomes one Kafka record (the
// same log Kafka clients read), and any Kafka record becomes an AMQP delivery.
//
// AMQP -> Kafka: one RecordBatch v2 per publish (magic 2, no compression, CreateTime = publish
// time, producer id -1), one record: key = the routing key (null if empty), value = the body,
// headers = every entry of the AMQP "headers" table whose value is text, bytes or a number
// (as UTF-8 text), then "amqp-properties" = the AMQP content-header property list exactly as
// the publisher sent it, so that AMQP consumers get every property back losslessly.
//
// Kafka -> AMQP: body = value, routing key = key, exchange "". Properties are the
// "amqp-properties" header if the record has one; otherwise the record's headers become the
// AMQP headers table (values as long strings) and its timestamp the timestamp property. Either
// way the headers table gets "x-stream-offset" (long-long), the record's offset within its
// partition, as RabbitMQ streams do, and "x-stream-partition" (long), the partition.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/yardmq/yard/internal/amqp/wire"
)

const amqpPropertiesHeader = "amqp-properties"

var (
	castagnoli       = crc32.MakeTable(crc32.Castagnoli)
	errBadStreamData = errors.New("malformed record batch")
)

type recHeader struct {
	key   string
	value []byte
}

// streamRecord is one record read from a stream.
type streamRecord struct {
	offset  int64
	tsMs    int64
	key     []byte
	value   []byte
	headers []recHeader
}

// appendStreamBatch appends a one-record batch for an AMQP publish.
func appendStreamBatch(dst []byte, tsMs int64, routingKey string, props, body []byte) []byte {
	var hdrs []recHeader
	var p wire.BasicProperties
	if p.Decode(props) == nil {
		for k, v := range p.Headers {
			if s, ok := headerText(v); ok {
				hdrs = append(hdrs, recHeader{k, []byte(s)})
			}
		}
	}
	hdrs = append(hdrs, recHeader{amqpPropertiesHeader, props})
	rec := make([]byte, 0, len(body)+len(routingKey)+len(props)+64)
	rec = append(rec, 0)              // attributes
	rec = binary.AppendVarint(rec, 0) // timestampDelta
	rec = binary.AppendVarint(rec, 0) // offsetDelta
	if routingKey == "" {
		rec = binary.AppendVarint(rec, -1)
	} else {
		rec = binary.AppendVarint(rec, int64(len(routingKey)))
		rec = append(rec, routingKey...)
	}
	rec = binary.AppendVarint(rec, int64(len(body)))
	rec = append(rec, body...)
	rec = binary.AppendVarint(rec, int64(len(hdrs)))
	for _, h := range hdrs {
		rec = binary.AppendVarint(rec, int64(len(h.key)))
		rec = append(rec, h.key...)
		rec = binary.AppendVarint(rec, int64(len(h.value)))
		rec = append(rec, h.value...)
	}
	start := len(dst)
	dst = binary.BigEndian.AppendUint64(dst, 0)
	dst = binary.BigEndian.AppendUint32(dst, 0) // batchLength
	dst = binary.BigEndian.AppendUint32(dst, 0) // partitionLeaderEpoch
	dst = append(dst, 2)
	dst = binary.BigEndian.AppendUint32(dst, 0) // crc
	dst = binary.BigEndian.AppendUint16(dst, 0)
	dst = binary.BigEndian.AppendUint32(dst, 0) // lastOffsetDelta
	dst = binary.BigEndian.AppendUint64(dst, uint64(tsMs))
	dst = binary.BigEndian.AppendUint64(dst, uint64(tsMs))
	dst = binary.BigEndian.AppendUint64(dst, ^uint64(0))
	dst = binary.BigEndian.AppendUint16(dst, 0xffff)
	dst = binary.BigEndian.AppendUint32(dst, 0xffffffff)
	dst = binary.BigEndian.AppendUint32(dst, 1)
	dst = binary.AppendVarint(dst, int64(len(rec)))
	dst = append(dst, rec...)
	b := dst[start:]
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return dst
}

func headerText(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case []byte:
		return string(v), true
	case bool:
		return strconv.FormatBool(v), true
	}
	if n, ok := intArg(v); ok {
		return strconv.Itoa(n), true
	}
	return "", false
}

// batchesEnd is the offset after the last batch in b (whole batches as the log stores them),
// or -1 if b holds none: a reader moves past batches that deliver nothing (transaction markers,
// offsets removed by compaction, records filtered out) by it.
func batchesEnd(b []byte) int64 {
	end := int64(-1)
	for len(b) >= 61 {
		n := int64(binary.BigEndian.Uint32(b[8:])) + 12
		if n < 61 || n > int64(len(b)) {
			break
		}
		end = int64(binary.BigEndian.Uint64(b)) + int64(int32(binary.BigEndian.Uint32(b[23:]))) + 1
		b = b[n:]
	}
	return end
}

// parseStreamBatches calls fn for every record in b (whole batches as the log stores them),
// decompressing as needed; control batches are skipped. It never reads past b.
func parseStreamBatches(b []byte, dec kgo.Decompressor, fn func(r *streamRecord) bool) error {
	for len(b) > 0 {
		if len(b) < 61 {
			return errBadStreamData
		}
		n := int64(binary.BigEndian.Uint32(b[8:])) + 12
		if n < 61 || n > int64(len(b)) || b[16] != 2 {
			return errBadStreamData
		}
		batch := b[:n]
		b = b[n:]
		base := int64(binary.BigEndian.Uint64(batch))
		attrs := binary.BigEndian.Uint16(batch[21:])
		baseTs := int64(binary.BigEndian.Uint64(batch[27:]))
		count := int(int32(binary.BigEndian.Uint32(batch[57:])))
		if attrs&(1<<5) != 0 { // control batch (transaction markers)
			continue
		}
		recs := batch[61:]
		if codec := attrs & 7; codec != 0 {
			out, err := dec.Decompress(recs, kgo.CompressionCodecType(codec))
			if err != nil {
				return fmt.Errorf("cannot decompress batch at %d: %w", base, err)
			}
			recs = out
		}
		for i := 0; i < count; i++ {
			var r streamRecord
			rest, err := parseRecord(recs, &r)
			if err != nil {
				return fmt.Errorf("batch at %d: %w", base, err)
			}
			recs = rest
			r.offset += base
			r.tsMs += baseTs
			if !fn(&r) {
				return nil
			}
		}
	}
	return nil
}

func parseRecord(b []byte, r *streamRecord) ([]byte, error) {
	l, k := binary.Varint(b)
	if k <= 0 || l < 0 || l > int64(len(b)-k) {
		return nil, errBadStreamData
	}
	rest := b[k+int(l):]
	b = b[k : k+int(l)]
	if len(b) < 1 {
		return nil, errBadStreamData
	}
	b = b[1:]
	varint := func() (int64, bool) {
		v, k := binary.Varint(b)
		if k <= 0 {
			return 0, false
		}
		b = b[k:]
		return v, true
	}
	bytesField := func() ([]byte, bool) {
		n, ok := varint()
		if !ok || n > int64(len(b)) {
			return nil, false
		}
		if n < 0 {
			return nil, true
		}
		v := b[:n]
		b = b[n:]
		return v, true
	}
	var ok bool
	if r.tsMs, ok = varint(); !ok {
		return nil, errBadStreamData
	}
	if r.offset, ok = varint(); !ok {
		return nil, errBadStreamData
	}
	if r.key, ok = bytesField(); !ok {
		return nil, errBadStreamData
	}
	if r.value, ok = bytesField(); !ok {
		return nil, errBadStreamData
	}
	nh, ok := varint()
	if !ok || nh < 0 || nh > int64(len(b)) {
		return nil, errBadStreamData
	}
	for i := int64(0); i < nh; i++ {
		hk, ok1 := bytesField()
		hv, ok2 := bytesField()
		if !ok1 || !ok2 {
			return nil, errBadStreamData
		}
		r.headers = append(r.headers, recHeader{string(hk), hv})
	}
	return rest, nil
}

// deliveryProperties builds the AMQP property list for a record of the given partition.
func deliveryProperties(r *streamRecord, partition int32) []byte {
	var p wire.BasicProperties
	decoded := false
	for _, h := range r.headers {
		if h.key == amqpPropertiesHeader && p.Decode(h.value) == nil {
			decoded = true
			break
		}
	}
	if !decoded {
		p = wire.BasicProperties{}
		if len(r.headers) > 0 {
			p.Headers = wire.Table{}
			for _, h := range r.headers {
				p.Headers[h.key] = string(h.value)
			}
		}
		if r.tsMs >= 0 {
			p.Timestamp = uint64(r.tsMs / 1000)
			p.Flags |= wire.FlagBasicTimestamp
		}
	}
	if p.Headers == nil {
		p.Headers = wire.Table{}
	}
	p.Headers["x-stream-offset"] = r.offset
	p.Headers["x-stream-partition"] = partition
	p.Flags |= wire.FlagBasicHeaders
	return p.AppendTo(nil)
}
