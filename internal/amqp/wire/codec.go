package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Errors returned by the decoders; each is errors.Is-able through the wrapping.
var (
	ErrShortInput           = errors.New("input too short")
	ErrUnknownMethod        = errors.New("unknown class or method")
	ErrTrailingBytes        = errors.New("trailing bytes after method arguments")
	ErrBadFieldType         = errors.New("unknown field value type")
	ErrTableTooDeep         = errors.New("field table nesting too deep")
	ErrPropertyContinuation = errors.New("property flag continuation not supported")
)

// Method is an AMQP method: generated for every method in the specification.
type Method interface {
	// ID is the class ID in the high 16 bits and the method ID in the low 16.
	ID() uint32
	// Name is "class.method" as in the specification, e.g. "basic.publish".
	Name() string
	// HasContent reports whether a content header and body frames follow the method.
	HasContent() bool
	// Synchronous reports whether the method expects a reply.
	Synchronous() bool
	// AppendTo appends the method frame payload (class ID, method ID, arguments).
	AppendTo(dst []byte) []byte
	decode(d *decoder)
}

// ClassOf and MethodOf split a method ID.
func ClassOf(id uint32) uint16  { return uint16(id >> 16) }
func MethodOf(id uint32) uint16 { return uint16(id) }

// MethodIDs lists every method of the specification (class ID high, method ID low); the
// caller must not modify it.
func MethodIDs() []uint32 { return methodIDs }

// MethodName is the "class.method" name of a method ID, or "" if it is unknown.
func MethodName(id uint32) string {
	if m := newMethod(id); m != nil {
		return m.Name()
	}
	return ""
}

// DecodeMethod decodes a method frame payload. The returned method does not alias payload.
func DecodeMethod(payload []byte) (Method, error) {
	if len(payload) < 4 {
		return nil, fmt.Errorf("cannot decode method: %w", ErrShortInput)
	}
	id := binary.BigEndian.Uint32(payload)
	m := newMethod(id)
	if m == nil {
		return nil, fmt.Errorf("cannot decode method %d.%d: %w", ClassOf(id), MethodOf(id), ErrUnknownMethod)
	}
	d := decoder{b: payload, off: 4}
	m.decode(&d)
	if d.err != nil {
		return nil, fmt.Errorf("cannot decode %s: %w", m.Name(), d.err)
	}
	if d.off != len(payload) {
		return nil, fmt.Errorf("cannot decode %s: %w", m.Name(), ErrTrailingBytes)
	}
	return m, nil
}

// IsHardError reports whether the specification makes a reply code a connection error.
func IsHardError(code uint16) bool { return hardErrors[code] }

// ReplyName is the upper-case name of a reply code ("NOT_FOUND"), or "" if unknown.
func ReplyName(code uint16) string { return replyNames[code] }

// decoder reads primitives from b at off. On underflow it records ErrShortInput, stops
// advancing and returns zero values, so generated decoders need no per-field checks.
type decoder struct {
	b     []byte
	off   int
	err   error
	depth int
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || len(d.b)-d.off < n {
		d.err = ErrShortInput
		return nil
	}
	s := d.b[d.off : d.off+n]
	d.off += n
	return s
}

func (d *decoder) octet() uint8 {
	if s := d.take(1); s != nil {
		return s[0]
	}
	return 0
}

func (d *decoder) short() uint16 {
	if s := d.take(2); s != nil {
		return binary.BigEndian.Uint16(s)
	}
	return 0
}

func (d *decoder) long() uint32 {
	if s := d.take(4); s != nil {
		return binary.BigEndian.Uint32(s)
	}
	return 0
}

func (d *decoder) longlong() uint64 {
	if s := d.take(8); s != nil {
		return binary.BigEndian.Uint64(s)
	}
	return 0
}

func (d *decoder) timestamp() uint64 { return d.longlong() }

func (d *decoder) shortstr() string {
	n := int(d.octet())
	return string(d.take(n))
}

func (d *decoder) longstr() string {
	n := d.long()
	if uint64(n) > uint64(len(d.b)-d.off) {
		d.fail(ErrShortInput)
		return ""
	}
	return string(d.take(int(n)))
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func appendOctet(dst []byte, v uint8) []byte      { return append(dst, v) }
func appendShort(dst []byte, v uint16) []byte     { return binary.BigEndian.AppendUint16(dst, v) }
func appendLong(dst []byte, v uint32) []byte      { return binary.BigEndian.AppendUint32(dst, v) }
func appendLonglong(dst []byte, v uint64) []byte  { return binary.BigEndian.AppendUint64(dst, v) }
func appendTimestamp(dst []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(dst, v) }

// appendShortstr writes at most 255 bytes: every short string yard sends is either its own
// (short by construction) or one it decoded from a short string, so truncation never happens
// on a valid path; it only keeps a malformed caller from corrupting the frame.
func appendShortstr(dst []byte, s string) []byte {
	if len(s) > 255 {
		s = s[:255]
	}
	dst = append(dst, uint8(len(s)))
	return append(dst, s...)
}

func appendLongstr(dst []byte, s string) []byte {
	dst = appendLong(dst, uint32(len(s)))
	return append(dst, s...)
}
