package wire

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// Table is an AMQP field table. Values decode to, and encode from, these Go types, chosen so
// that decode(encode(t)) == t:
//
//	't' bool     'b' int8     'B' uint8    's' int16   'u' uint16  'I' int32  'i' uint32
//	'l' int64    'f' float32  'd' float64  'D' Decimal 'S' string  'x' []byte 'A' []any
//	'T' time.Time (seconds)   'F' Table    'V' nil
//
// 's' is a signed 16-bit integer, as RabbitMQ and every client in use read it (the 0-9-1
// document's "short string" meaning for 's' was never implemented). When encoding, int is
// written as 'l' and uint64 as 'l' (two's complement). Table is a plain map (an alias), so that
// code outside the codec (internal/vhost's x-death headers) reads nested tables without it.
type Table = map[string]any

// Decimal is the 'D' field type: Value × 10^-Scale.
type Decimal struct {
	Scale uint8
	Value int32
}

// maxTableDepth bounds nesting of tables and arrays so that a hostile frame cannot make the
// decoder recurse without limit.
const maxTableDepth = 64

func (d *decoder) table() Table {
	n := d.long()
	if d.err != nil {
		return nil
	}
	if uint64(n) > uint64(len(d.b)-d.off) {
		d.fail(ErrShortInput)
		return nil
	}
	sub := decoder{b: d.b[:d.off+int(n)], off: d.off, depth: d.depth + 1}
	d.off += int(n)
	if sub.depth > maxTableDepth {
		d.fail(ErrTableTooDeep)
		return nil
	}
	t := Table{}
	for sub.err == nil && sub.off < len(sub.b) {
		key := sub.shortstr()
		v := sub.fieldValue()
		if sub.err == nil {
			t[key] = v
		}
	}
	if sub.err != nil {
		d.fail(sub.err)
		return nil
	}
	return t
}

func (d *decoder) array() []any {
	n := d.long()
	if d.err != nil {
		return nil
	}
	if uint64(n) > uint64(len(d.b)-d.off) {
		d.fail(ErrShortInput)
		return nil
	}
	sub := decoder{b: d.b[:d.off+int(n)], off: d.off, depth: d.depth + 1}
	d.off += int(n)
	if sub.depth > maxTableDepth {
		d.fail(ErrTableTooDeep)
		return nil
	}
	a := []any{}
	for sub.err == nil && sub.off < len(sub.b) {
		v := sub.fieldValue()
		if sub.err == nil {
			a = append(a, v)
		}
	}
	if sub.err != nil {
		d.fail(sub.err)
		return nil
	}
	return a
}

func (d *decoder) fieldValue() any {
	switch typ := d.octet(); typ {
	case 't':
		return d.octet() != 0
	case 'b':
		return int8(d.octet())
	case 'B':
		return d.octet()
	case 's':
		return int16(d.short())
	case 'u':
		return d.short()
	case 'I':
		return int32(d.long())
	case 'i':
		return d.long()
	case 'l':
		return int64(d.longlong())
	case 'f':
		return math.Float32frombits(d.long())
	case 'd':
		return math.Float64frombits(d.longlong())
	case 'D':
		scale := d.octet()
		return Decimal{Scale: scale, Value: int32(d.long())}
	case 'S':
		return d.longstr()
	case 'x':
		return []byte(d.longstr())
	case 'A':
		return d.array()
	case 'T':
		return time.Unix(int64(d.longlong()), 0)
	case 'F':
		return d.table()
	case 'V':
		return nil
	default:
		d.fail(fmt.Errorf("%w %q", ErrBadFieldType, typ))
		return nil
	}
}

// DecodeTable decodes a table including its 4-byte length prefix.
func DecodeTable(b []byte) (Table, error) {
	d := decoder{b: b}
	t := d.table()
	if d.err != nil {
		return nil, fmt.Errorf("cannot decode table: %w", d.err)
	}
	return t, nil
}

// appendTable writes the 4-byte length and the fields. Values of a type outside the list in
// Table's comment are written as void ('V'): the encoder cannot fail, and yard only encodes
// tables it built or decoded.
func appendTable(dst []byte, t Table) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	for k, v := range t {
		dst = appendShortstr(dst, k)
		dst = appendFieldValue(dst, v)
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// AppendTable appends t as a length-prefixed field table.
func AppendTable(dst []byte, t Table) []byte { return appendTable(dst, t) }

func appendArray(dst []byte, a []any) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	for _, v := range a {
		dst = appendFieldValue(dst, v)
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

func appendFieldValue(dst []byte, v any) []byte {
	switch v := v.(type) {
	case bool:
		b := uint8(0)
		if v {
			b = 1
		}
		return append(dst, 't', b)
	case int8:
		return append(dst, 'b', uint8(v))
	case uint8:
		return append(dst, 'B', v)
	case int16:
		return appendShort(append(dst, 's'), uint16(v))
	case uint16:
		return appendShort(append(dst, 'u'), v)
	case int32:
		return appendLong(append(dst, 'I'), uint32(v))
	case uint32:
		return appendLong(append(dst, 'i'), v)
	case int64:
		return appendLonglong(append(dst, 'l'), uint64(v))
	case int:
		return appendLonglong(append(dst, 'l'), uint64(v))
	case uint64:
		return appendLonglong(append(dst, 'l'), v)
	case float32:
		return appendLong(append(dst, 'f'), math.Float32bits(v))
	case float64:
		return appendLonglong(append(dst, 'd'), math.Float64bits(v))
	case Decimal:
		return appendLong(append(dst, 'D', v.Scale), uint32(v.Value))
	case string:
		return appendLongstr(append(dst, 'S'), v)
	case []byte:
		dst = appendLong(append(dst, 'x'), uint32(len(v)))
		return append(dst, v...)
	case []any:
		return appendArray(append(dst, 'A'), v)
	case time.Time:
		return appendLonglong(append(dst, 'T'), uint64(v.Unix()))
	case Table:
		return appendTable(append(dst, 'F'), v)
	default:
		return append(dst, 'V')
	}
}
