package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
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
//
// A reader made by NewPooledFrameReader holds its read buffer only while a frame is being
// read: Fill, called when nothing is buffered, gives the buffer back to the pool and waits
// for the next frame's first bytes reading straight into hdr (early), so an idle
// connection costs no read buffer.
type FrameReader struct {
	src      io.Reader
	r        *bufio.Reader // nil while given back to pool
	pool     *ReaderPool   // nil: r is the reader's own and never given back
	frameMax uint32
	buf      []byte
	hdr      [FrameHeaderSize]byte // a field: a local would escape through io.ReadFull
	early    int                   // bytes of the next frame header already in hdr (Fill)
}

// NewFrameReader reads from r with a read buffer of bufSize bytes. frameMax starts at
// FrameMinSize, as the specification requires before tuning.
func NewFrameReader(r io.Reader, bufSize int) *FrameReader {
	return &FrameReader{src: r, r: bufio.NewReaderSize(r, bufSize), frameMax: FrameMinSize}
}

// ReaderPool lends read buffers to the FrameReaders of mostly idle connections.
type ReaderPool struct{ p sync.Pool }

// NewReaderPool lends buffers of bufSize bytes.
func NewReaderPool(bufSize int) *ReaderPool {
	rp := &ReaderPool{}
	rp.p.New = func() any { return bufio.NewReaderSize(nil, bufSize) }
	return rp
}

// NewPooledFrameReader reads from r with read buffers borrowed from pool while reading.
func NewPooledFrameReader(r io.Reader, pool *ReaderPool) *FrameReader {
	return &FrameReader{src: r, pool: pool, frameMax: FrameMinSize}
}

// reader is the read buffer, borrowed if need be.
func (fr *FrameReader) reader() *bufio.Reader {
	if fr.r == nil {
		fr.r = fr.pool.p.Get().(*bufio.Reader)
		fr.r.Reset(fr.src)
	}
	return fr.r
}

// Release gives a pooled reader's buffer back, dropping whatever it holds: for a
// connection that ends. The reader stays usable.
func (fr *FrameReader) Release() {
	if fr.pool == nil || fr.r == nil {
		return
	}
	fr.r.Reset(nil)
	fr.pool.p.Put(fr.r)
	fr.r = nil
}

// Holding reports whether the reader holds a read buffer.
func (fr *FrameReader) Holding() bool { return fr.r != nil }

// Buffered is the number of bytes read from the stream and not yet consumed.
func (fr *FrameReader) Buffered() int {
	if fr.r == nil {
		return fr.early
	}
	return fr.early + fr.r.Buffered()
}

// Fill waits until at least one byte is buffered (the start of the next frame), so that a
// caller can bound the wait for a frame and the reading of it separately. With release, a
// pooled reader waits without a buffer; that costs one more read once the frame begins, so
// callers keep the buffer (release false) for short waits.
func (fr *FrameReader) Fill(release bool) error {
	if fr.Buffered() > 0 {
		return nil
	}
	if fr.pool == nil || !release {
		_, err := fr.reader().Peek(1)
		return err
	}
	fr.Release()
	for {
		n, err := fr.src.Read(fr.hdr[:])
		if n > 0 {
			fr.early = n // an error with it comes back from the next read
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// SetFrameMax sets the largest accepted frame, overhead included; 0 means no limit.
func (fr *FrameReader) SetFrameMax(n uint32) { fr.frameMax = n }

// Ready reports whether a whole frame is buffered, so that ReadFrame will not touch the
// network.
func (fr *FrameReader) Ready() bool {
	if fr.r == nil {
		return false
	}
	n := fr.r.Buffered()
	if fr.early == 0 {
		if n < FrameHeaderSize {
			return false
		}
		hdr, _ := fr.r.Peek(FrameHeaderSize)
		return uint64(n) >= uint64(binary.BigEndian.Uint32(hdr[3:]))+FrameOverhead
	}
	if fr.early+n < FrameHeaderSize {
		return false
	}
	var hdr [FrameHeaderSize]byte
	copy(hdr[:], fr.hdr[:fr.early])
	rest, _ := fr.r.Peek(FrameHeaderSize - fr.early)
	copy(hdr[fr.early:], rest)
	return uint64(fr.early+n) >= uint64(binary.BigEndian.Uint32(hdr[3:]))+FrameOverhead
}

// ReadFull reads exactly len(p) bytes (used for the protocol header).
func (fr *FrameReader) ReadFull(p []byte) error {
	k := copy(p, fr.hdr[:fr.early])
	copy(fr.hdr[:], fr.hdr[k:fr.early])
	fr.early -= k
	_, err := io.ReadFull(fr.reader(), p[k:])
	return err
}

// ReadFrame reads one frame.
func (fr *FrameReader) ReadFrame() (Frame, error) {
	hdr := fr.hdr[:]
	early := fr.early
	fr.early = 0
	if _, err := io.ReadFull(fr.reader(), hdr[early:]); err != nil {
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
