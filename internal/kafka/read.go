package kafka

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// Reading requests. Three bounds apply to a request frame, besides MaxRequestBytes:
//
//   - time: once its first byte has arrived, the whole frame must arrive within
//     RequestReadTimeout (a client trickling bytes cannot hold a connection slot for the
//     idle timeout per byte). Waiting for the first byte is bounded by IdleTimeout instead.
//   - memory, per request: the frame buffer grows as bytes arrive (reqChunkBytes first,
//     growing eightfold), so a size prefix reserves no memory by itself; eightfold rather than
//     doubling because each step is another read and copy, which cost the produce path
//     measurably (a client must still send an eighth of a buffer before it is allocated).
//   - memory, all requests: a frame's buffer is reserved from reqBudget (QueuedMaxRequestBytes,
//     Kafka's queued.max.request.bytes) as it grows, and given back once the request has been
//     handled. When the budget is spent, reading pauses (backpressure; the client is not
//     failed) until requests finish. What is reserved is what is held, not what a size prefix
//     announces: sizes announced and never sent cannot spend the budget and stall every other
//     client (fifty 100 MiB prefixes would otherwise stop all reading for the read timeout).
//     A frame waiting for memory is still bound by RequestReadTimeout: if every reservation
//     were held by frames waiting to grow, they time out, their connections are dropped and
//     the memory returns, so the budget cannot deadlock.
//
// An idle connection holds no read or write buffer: the reader waits for the next request
// reading its size prefix straight from the socket, and takes a pooled bufio.Reader only
// once a request has begun; the writer takes a pooled bufio.Writer per burst of replies.

// Named limits of the request reader.
const (
	DefaultRequestReadTimeout    = 30 * time.Second // the clients' own request.timeout.ms default
	DefaultQueuedMaxRequestBytes = 500 << 20        // queued.max.request.bytes
	reqChunkBytes                = 64 << 10         // first size of a frame buffer not yet received
	reqGrowFactor                = 8                // each next size of it, as a multiple
	// keepReadBufferFor: a connection waits this long for its next request with its read
	// buffer, then gives it back to the pool and waits without.
	keepReadBufferFor = 100 * time.Millisecond
)

// bufPools are a Server's pools of connection read and write buffers.
type bufPools struct {
	readers sync.Pool // *bufio.Reader of connReadBufferBytes
	writers sync.Pool // *bufio.Writer of connWriteBufferBytes
	// steps holds the request buffers a frame passes through on its way to its full size
	// (reqChunkBytes, then reqGrowFactor times that, ...), indexed by step. Only those are
	// pooled: a frame's final buffer goes to the handlers, which may keep slices of it.
	steps [reqPooledSteps]sync.Pool
}

// reqPooledSteps is how many sizes of intermediate request buffers are pooled (64 KiB, 512 KiB,
// 4 MiB); larger steps are rare and allocated.
const reqPooledSteps = 3

// stepOf is the pool index of a buffer of capacity size, or -1 if it is not a pooled step.
func stepOf(size int) int {
	for i, s := 0, reqChunkBytes; i < reqPooledSteps; i, s = i+1, s*reqGrowFactor {
		if size == s {
			return i
		}
	}
	return -1
}

// frame returns an empty buffer of capacity size for a frame of n bytes: from the pool when
// it is an intermediate step (size < n), else newly allocated.
func (p *bufPools) frame(size, n int) []byte {
	if i := stepOf(size); i >= 0 && size < n {
		if b, ok := p.steps[i].Get().(*[]byte); ok {
			return (*b)[:0]
		}
	}
	return make([]byte, 0, size)
}

// putFrame gives back an intermediate buffer once its bytes have been copied on; any other
// buffer (nil, a frame's final one) is left to the garbage collector.
func (p *bufPools) putFrame(b []byte) {
	if i := stepOf(cap(b)); i >= 0 {
		b = b[:0]
		p.steps[i].Put(&b)
	}
}

func newBufPools() *bufPools {
	p := &bufPools{}
	p.readers.New = func() any { return bufio.NewReaderSize(nil, connReadBufferBytes) }
	p.writers.New = func() any { return bufio.NewWriterSize(nil, connWriteBufferBytes) }
	return p
}

// reqBudget is the memory all in-flight request frames of a Server may reserve.
type reqBudget struct {
	max int64

	mu      sync.Mutex // guards used, waiting
	cond    *sync.Cond
	used    int64
	waiting int // readers paused for memory (tests watch it)
}

func newReqBudget(max int64) *reqBudget {
	b := &reqBudget{max: max}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// acquire reserves n bytes, waiting while that would exceed the budget; a frame larger than
// the whole budget waits until nothing else is reserved. It reports whether it waited, and
// fails only when ctx ends.
// acquireBy reserves n bytes, waiting while that would exceed the budget until ctx ends or
// deadline passes. The deadline's timer is made only if it has to wait.
func (b *reqBudget) acquireBy(ctx context.Context, deadline time.Time, n int64) error {
	b.mu.Lock()
	if b.used == 0 || b.used+n <= b.max {
		b.used += n
		b.mu.Unlock()
		return nil
	}
	b.mu.Unlock()
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	_, err := b.acquire(ctx, n)
	return err
}

func (b *reqBudget) acquire(ctx context.Context, n int64) (waited bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used == 0 || b.used+n <= b.max {
		b.used += n
		return false, nil
	}
	stop := context.AfterFunc(ctx, func() {
		b.mu.Lock()
		b.cond.Broadcast()
		b.mu.Unlock()
	})
	defer stop()
	b.waiting++
	defer func() { b.waiting-- }()
	for b.used != 0 && b.used+n > b.max {
		if err := ctx.Err(); err != nil {
			return true, fmt.Errorf("cannot reserve memory for a %d-byte request: %w", n, err)
		}
		b.cond.Wait()
	}
	b.used += n
	return true, nil
}

func (b *reqBudget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	if b.used < 0 {
		b.mu.Unlock()
		panic("BUG: request memory released twice")
	}
	b.cond.Broadcast()
	b.mu.Unlock()
}

func (b *reqBudget) state() (used int64, waiting int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used, b.waiting
}

// errRequestTimeout: a request's bytes did not all arrive within RequestReadTimeout.
var errRequestTimeout = errors.New("request not received within the request read timeout")

// readRequest reads the next request frame. It returns the frame and its reservation from
// the budget (to release once handled), or nil and nil at the ordinary end of the
// connection (EOF, idle timeout, shutdown), or an error that says why to drop it.
func (c *conn) readRequest() (frame []byte, reserved int64, err error) {
	var size [4]byte
	got, err := c.awaitRequest(&size)
	if err != nil || got < 0 {
		return nil, 0, err
	}
	// The request has begun: the rest of it is due within RequestReadTimeout.
	armed := false
	arm := func(need int) {
		if !armed && c.br.Buffered() < need {
			c.nc.SetReadDeadline(time.Now().Add(c.s.cfg.RequestReadTimeout))
			armed = true
		}
	}
	arm(len(size) - got)
	if _, err := io.ReadFull(c.br, size[got:]); err != nil {
		return nil, 0, c.midRequestError(err, 0)
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	minBytes := int32(minRequestFrameBytes)
	if c.sasl.rawTokens { // SaslHandshake v0: a bare SASL token (sasl.go)
		minBytes = 1
	}
	if n < minBytes || n > c.s.cfg.MaxRequestBytes {
		return nil, 0, fmt.Errorf("request size prefix %d is outside [%d, MaxRequestBytes %d]", n, minBytes, c.s.cfg.MaxRequestBytes)
	}
	arm(int(n))
	frame, reserved, err = c.readFrame(int(n), time.Now().Add(c.s.cfg.RequestReadTimeout))
	if err != nil {
		c.s.reqMem.release(reserved)
		if c.ctx.Err() != nil {
			return nil, 0, nil // shutdown, or closed by id
		}
		return nil, 0, c.midRequestError(err, int(n))
	}
	return frame, reserved, nil
}

// awaitRequest waits, within IdleTimeout, for the next request to begin. A reader that
// holds a buffer waits keepReadBufferFor with it (a busy client's next request usually comes
// sooner); past that, or without one, it gives the buffer back and waits reading the size
// prefix (or its first bytes) straight into size. It returns how many bytes it read there;
// -1 and nil mean the ordinary end of the connection.
func (c *conn) awaitRequest(size *[4]byte) (int, error) {
	if c.br != nil && c.br.Buffered() > 0 {
		return 0, nil
	}
	if c.br != nil {
		c.nc.SetReadDeadline(time.Now().Add(keepReadBufferFor))
		_, err := c.br.Peek(1)
		var ne net.Error
		if err == nil {
			return 0, nil
		}
		if !errors.As(err, &ne) || !ne.Timeout() {
			return -1, quietReadError(err)
		}
	}
	c.nc.SetReadDeadline(time.Now().Add(c.s.cfg.IdleTimeout))
	c.releaseReader()
	for {
		n, err := c.nc.Read(size[:])
		if n > 0 {
			c.br = c.s.bufs.readers.Get().(*bufio.Reader)
			c.br.Reset(c.nc)
			return n, nil // an error with it comes back from the next read
		}
		if err != nil {
			return -1, quietReadError(err)
		}
	}
}

// readFrame reads n bytes into a buffer grown as they arrive, reserving each size of the
// buffer from the budget before allocating it (waiting for memory until deadline). It returns
// what it reserved, which the caller releases, also on error.
func (c *conn) readFrame(n int, deadline time.Time) (buf []byte, reserved int64, err error) {
	grow := func(size int) error {
		if err := c.s.reqMem.acquireBy(c.ctx, deadline, int64(size-cap(buf))); err != nil {
			return fmt.Errorf("%w: %w", os.ErrDeadlineExceeded, err)
		}
		reserved += int64(size - cap(buf))
		grown := c.s.bufs.frame(size, n)
		grown = append(grown[:0], buf...)
		c.s.bufs.putFrame(buf)
		buf = grown
		return nil
	}
	if err := grow(min(n, max(reqChunkBytes, c.br.Buffered()))); err != nil {
		return nil, reserved, err
	}
	for len(buf) < n {
		if len(buf) == cap(buf) {
			if err := grow(min(n, reqGrowFactor*cap(buf))); err != nil {
				c.s.bufs.putFrame(buf)
				return nil, reserved, err
			}
		}
		k, err := io.ReadFull(c.br, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		if err != nil {
			c.s.bufs.putFrame(buf)
			return nil, reserved, err
		}
	}
	return buf, reserved, nil
}

// midRequestError explains a read error after a request has begun.
func (c *conn) midRequestError(err error, n int) error {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		if c.ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("%w (%s; %d-byte request)", errRequestTimeout, c.s.cfg.RequestReadTimeout, n)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("connection closed in the middle of a request (%d bytes announced)", n)
	}
	return quietReadError(err)
}

// releaseReader gives the read buffer back to the pool; only when nothing is buffered.
func (c *conn) releaseReader() {
	if c.br == nil {
		return
	}
	c.br.Reset(nil)
	c.s.bufs.readers.Put(c.br)
	c.br = nil
}

// writer is the buffered writer of the current burst of replies, taken from the pool.
func (c *conn) writer() *bufio.Writer {
	if c.bw == nil {
		c.bw = c.s.bufs.writers.Get().(*bufio.Writer)
		c.bw.Reset(c.nc)
	}
	return c.bw
}

// flush writes what is buffered and gives the writer back to the pool.
func (c *conn) flush() error {
	if c.bw == nil {
		return nil
	}
	err := c.bw.Flush()
	if err == nil {
		c.bw.Reset(nil)
		c.s.bufs.writers.Put(c.bw)
		c.bw = nil
	}
	return err
}
