package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Frame layout (all big-endian):
//
//	type uint8 | channel uint16 | size uint32 | payload [size]byte | frame-end 0xCE
//
// frame_max, as negotiated in connection.tune, bounds the whole frame: 7 header bytes,
// the payload and the end octet.
const (
	FrameHeaderSize   = 7
	FrameOverhead     = FrameHeaderSize + 1
	contentHeaderSize = 12 // class, weight, body size
)

// ProtocolHeader is what a 0-9-1 client sends first, and what yard answers a wrong one with.
var ProtocolHeader = []byte{'A', 'M', 'Q', 'P', 0, 0, 9, 1}

// Frame errors. Both map to 501 FRAME_ERROR.
var (
	ErrFrameTooLarge = errors.New("frame larger than frame_max")
	ErrFrameEnd      = errors.New("frame does not end with 0xCE")
)

// Frame is one frame as read. Payload aliases the reader's buffer and is valid only until the
// next ReadFrame.
type Frame struct {
	Type    uint8
	Channel uint16
	Payload []byte
}

// FrameReader reads frames from a buffered stream, rejecting frames over frame_max.
type FrameReader struct {
	r        *bufio.Reader
	frameMax uint32
	buf      []byte
	hdr      [FrameHeaderSize]byte // a field: a local would escape through io.ReadFull
}

// NewFrameReader reads from r with a read buffer of bufSize bytes. frameMax starts at
// FrameMinSize, as the specification requires before tuning.
func NewFrameReader(r io.Reader, bufSize int) *FrameReader {
	return &FrameReader{r: bufio.NewReaderSize(r, bufSize), frameMax: FrameMinSize}
}

// SetFrameMax sets the largest accepted frame, overhead included; 0 means no limit.
func (fr *FrameReader) SetFrameMax(n uint32) { fr.frameMax = n }

// Ready reports whether a whole frame is buffered, so that ReadFrame will not touch the
// network.
func (fr *FrameReader) Ready() bool {
	n := fr.r.Buffered()
	if n < FrameHeaderSize {
		return false
	}
	hdr, _ := fr.r.Peek(FrameHeaderSize)
	return uint64(n) >= uint64(binary.BigEndian.Uint32(hdr[3:]))+FrameOverhead
}

// Buffered is the number of bytes read from the stream and not yet consumed.
func (fr *FrameReader) Buffered() int { return fr.r.Buffered() }

// Fill waits until at least one byte is buffered (the start of the next frame), so that a
// caller can bound the wait for a frame and the reading of it separately.
func (fr *FrameReader) Fill() error {
	_, err := fr.r.Peek(1)
	return err
}

// ReadFull reads exactly len(p) bytes (used for the protocol header).
func (fr *FrameReader) ReadFull(p []byte) error {
	_, err := io.ReadFull(fr.r, p)
	return err
}

// ReadFrame reads one frame.
func (fr *FrameReader) ReadFrame() (Frame, error) {
	hdr := fr.hdr[:]
	if _, err := io.ReadFull(fr.r, hdr); err != nil {
		return Frame{}, err
	}
	f := Frame{Type: hdr[0], Channel: binary.BigEndian.Uint16(hdr[1:])}
	size := binary.BigEndian.Uint32(hdr[3:])
	if fr.frameMax != 0 && uint64(size)+FrameOverhead > uint64(fr.frameMax) {
		return f, fmt.Errorf("cannot read frame of %d bytes (frame_max %d): %w", uint64(size)+FrameOverhead, fr.frameMax, ErrFrameTooLarge)
	}
	if fr.frameMax == 0 && size > 1<<28 {
		return f, fmt.Errorf("cannot read frame of %d bytes: %w", size, ErrFrameTooLarge)
	}
	b, err := fr.readPayload(int(size) + 1)
	if err != nil {
		return f, err
	}
	if b[size] != FrameEnd {
		return f, fmt.Errorf("cannot read frame: %w (got 0x%02x)", ErrFrameEnd, b[size])
	}
	f.Payload = b[:size]
	return f, nil
}

// frameGrowStep: a frame buffer grows from at least this many bytes, doubling as the
// payload arrives.
const frameGrowStep = 64 << 10

// readPayload reads the n bytes after a frame header into fr.buf. A buffer too small for
// them grows as they arrive, not as announced: a peer that announces a large frame (up to
// frame_max) and sends nothing gets no memory for it.
func (fr *FrameReader) readPayload(n int) ([]byte, error) {
	if n <= cap(fr.buf) {
		b := fr.buf[:n]
		_, err := io.ReadFull(fr.r, b)
		return b, err
	}
	b := fr.buf[:0]
	for len(b) < n {
		if len(b) == cap(b) {
			grown := make([]byte, len(b), min(n, max(2*cap(b), frameGrowStep)))
			copy(grown, b)
			b = grown
		}
		m, err := io.ReadFull(fr.r, b[len(b):cap(b)])
		b = b[:len(b)+m]
		if err != nil {
			fr.buf = b[:0]
			return nil, err
		}
	}
	fr.buf = b
	return b, nil
}

// beginFrame appends a frame header with a zero size; endFrame patches the size and appends
// the end octet. Together they let encoders write payloads in place.
func beginFrame(dst []byte, typ uint8, channel uint16) ([]byte, int) {
	start := len(dst)
	dst = append(dst, typ, byte(channel>>8), byte(channel), 0, 0, 0, 0)
	return dst, start
}

func endFrame(dst []byte, start int) []byte {
	binary.BigEndian.PutUint32(dst[start+3:], uint32(len(dst)-start-FrameHeaderSize))
	return append(dst, FrameEnd)
}

// AppendMethodFrame appends a method frame for channel.
func AppendMethodFrame(dst []byte, channel uint16, m Method) []byte {
	dst, start := beginFrame(dst, FrameMethod, channel)
	dst = m.AppendTo(dst)
	return endFrame(dst, start)
}

// AppendHeaderFrame appends a content header frame. props is an encoded property list
// (flags then present properties), as produced by BasicProperties.AppendTo or as received.
func AppendHeaderFrame(dst []byte, channel uint16, classID uint16, bodySize uint64, props []byte) []byte {
	dst, start := beginFrame(dst, FrameHeader, channel)
	dst = appendShort(dst, classID)
	dst = appendShort(dst, 0) // weight, unused
	dst = appendLonglong(dst, bodySize)
	dst = append(dst, props...)
	return endFrame(dst, start)
}

// AppendBodyFrames appends body split into frames no larger than frameMax (0 = one frame).
func AppendBodyFrames(dst []byte, channel uint16, body []byte, frameMax uint32) []byte {
	chunk := len(body)
	if frameMax > FrameOverhead {
		chunk = int(frameMax - FrameOverhead)
	}
	for len(body) > 0 {
		n := min(chunk, len(body))
		var start int
		dst, start = beginFrame(dst, FrameBody, channel)
		dst = append(dst, body[:n]...)
		dst = endFrame(dst, start)
		body = body[n:]
	}
	return dst
}

// AppendHeartbeat appends a heartbeat frame (always channel 0, empty payload).
func AppendHeartbeat(dst []byte) []byte {
	return append(dst, FrameHeartbeat, 0, 0, 0, 0, 0, 0, FrameEnd)
}

// ContentHeader is a decoded content header frame. Properties aliases the frame payload.
type ContentHeader struct {
	ClassID    uint16
	BodySize   uint64
	Properties []byte
}

// DecodeContentHeader splits a content header payload; the properties stay encoded (they are
// forwarded as received) and are decoded only when routing needs them.
func DecodeContentHeader(payload []byte) (ContentHeader, error) {
	if len(payload) < contentHeaderSize+2 {
		return ContentHeader{}, fmt.Errorf("cannot decode content header: %w", ErrShortInput)
	}
	return ContentHeader{
		ClassID:    binary.BigEndian.Uint16(payload),
		BodySize:   binary.BigEndian.Uint64(payload[4:]),
		Properties: payload[contentHeaderSize:],
	}, nil
}
