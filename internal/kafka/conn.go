package kafka

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/yardmq/yard/internal/auth"
	"github.com/yardmq/yard/internal/listener"
)

// reqHeader is a decoded request header (v1, or v2 when the request is flexible).
type reqHeader struct {
	key           int16
	version       int16
	correlationID int32
	clientID      string
	flexible      bool      // request header v2; the response header is then v1 (except ApiVersions)
	received      time.Time // when the request was read, if a RequestObserver wants it
}

// reply is a handler's answer, completed and written by the connection's writer goroutine in
// request order. writeTo may block (durability wait, fetch long poll) and writes the whole
// response frame through c; an error drops the connection.
type reply interface {
	writeTo(c *conn, hdr *reqHeader) error
}

type queued struct {
	hdr reqHeader
	r   reply
	// reserved is the request's memory reservation (read.go), held until its reply is
	// written when the handler asked for it (holdRequestMemory); released by the writer.
	reserved int64
}

// conn is one client connection: a reader goroutine (serve) and a writer goroutine
// (writeLoop) joined by the bounded replies queue.
type conn struct {
	s        *Server
	nc       net.Conn
	log      *slog.Logger
	br       *bufio.Reader // pooled; nil while idle (read.go); owned by the reader
	bw       *bufio.Writer // pooled; nil between bursts of replies (writer); owned by the writer
	wbuf     []byte        // response encoding buffer, owned by the writer
	lastWait time.Time     // when the reader last waited for a request (read.go)
	ctx      context.Context
	cancel   context.CancelFunc

	replies chan queued

	// principal is who the connection authenticated as (SASL, TLS client certificate);
	// auth.Anonymous on a listener without authentication. Read and written only by the
	// reader goroutine (handlers run there).
	principal auth.Principal
	// listener is the listener the connection came through.
	listener listenerInfo
	sasl     saslState // sasl.go; reader goroutine only
	// holdRequestMemory: the request being handled keeps its memory reservation until its
	// reply is written (a produce whose batches wait in Raft groups' logs). Set by a handler,
	// reset by the reader after each request.
	holdRequestMemory bool
	lc                *listener.Conn // the registry's entry; nil in tests that build a conn alone
}

func newConn(s *Server, nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(s.ctx)
	return &conn{
		s: s, nc: nc, log: s.log.With("remote", nc.RemoteAddr().String()),
		ctx: ctx, cancel: cancel,
		replies:   make(chan queued, maxInFlightPerConn),
		principal: auth.Anonymous,
	}
}

func (c *conn) serve() {
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop()
	}()
	err := c.readLoop()
	if err != nil {
		// A protocol violation: say why (rate-limited: a client can repeat it at will), then
		// drop the connection without finishing replies.
		c.s.rl.Warn("closing kafka connection", "closing kafka connection", "remote", c.nc.RemoteAddr().String(), "reason", err)
		c.nc.Close()
	}
	// Whatever ended the reader (EOF, idle timeout, violation), nobody will read the replies
	// still queued: end their waits (long polls, durability waits) now rather than at their
	// deadlines. Appends already made stay made.
	c.cancel()
	close(c.replies)
	<-writerDone
	c.cancel()
	c.nc.Close()
}

// readLoop reads and handles frames until EOF (nil) or a violation (an error).
func (c *conn) readLoop() error {
	defer c.releaseReader()
	for {
		frame, reserved, err := c.readRequest()
		if frame == nil {
			return err
		}
		var received time.Time
		if c.s.cfg.RequestObserver != nil {
			received = time.Now()
		}
		hdr, r, err := c.handleFrame(frame)
		hdr.received = received
		if !c.holdRequestMemory || r == nil || err != nil {
			c.s.reqMem.release(reserved)
			reserved = 0
		}
		c.holdRequestMemory = false
		if err != nil {
			return err
		}
		if r != nil {
			c.replies <- queued{hdr, r, reserved}
		}
	}
}

// handleFrame decodes a request and does its immediate work, returning the reply to queue
// (nil: none); the frame's memory may be reused once it returns.
func (c *conn) handleFrame(frame []byte) (reqHeader, reply, error) {
	if c.sasl.rawTokens {
		return c.rawSaslToken(frame)
	}
	hdr, req, err := c.s.apis.decodeRequest(frame)
	switch {
	case errors.Is(err, errUnsupportedApiVersions):
		return hdr, unsupportedApiVersions(c.s), nil
	case err != nil:
		return hdr, nil, err
	}
	if r, err := c.gate(&hdr); r != nil || err != nil {
		return hdr, r, err
	}
	if c.log.Enabled(c.ctx, slog.LevelDebug) {
		c.log.Debug("kafka request", "api", kmsg.NameForKey(hdr.key), "version", hdr.version, "client_id", hdr.clientID)
	}
	r, err := c.handle(&hdr, req)
	return hdr, r, err
}

// quietReadError turns the ordinary ways a connection ends into nil.
func quietReadError(err error) error {
	var ne net.Error
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	return fmt.Errorf("cannot read request: %w", err)
}

func (c *conn) handle(hdr *reqHeader, req kmsg.Request) (reply, error) {
	a := c.s.apis[hdr.key]
	return a.handle(&reqCtx{c: c, s: c.s, hdr: hdr}, req)
}

func (c *conn) writeLoop() {
	for q := range c.replies {
		err := q.r.writeTo(c, &q.hdr)
		c.releaseHeld(q)
		if err != nil {
			if c.ctx.Err() == nil {
				c.log.Debug("closing kafka connection: cannot write response", "err", err)
			}
			c.drainAfterWriteError()
			return
		}
		if o := c.s.cfg.RequestObserver; o != nil {
			o.ObserveRequest(q.hdr.key, time.Since(q.hdr.received))
		}
		if len(c.replies) == 0 {
			if err := c.flush(); err != nil {
				c.drainAfterWriteError()
				return
			}
		}
	}
	_ = c.flush()
}

// releaseHeld releases the memory a request kept reserved until its reply was written.
func (c *conn) releaseHeld(q queued) {
	if q.reserved > 0 {
		c.s.reqMem.release(q.reserved)
	}
}

// drainAfterWriteError drops the connection and consumes the rest of the queue so that the
// reader can finish (it fails on the closed socket). Replies that write nothing still run:
// they make acks=0 appends durable.
func (c *conn) drainAfterWriteError() {
	c.cancel()
	c.nc.Close()
	for q := range c.replies {
		if s, ok := q.r.(silentReply); ok {
			s.writeTo(c, &q.hdr)
		}
		c.releaseHeld(q)
	}
}

// responseHeaderFlexible: response header v1 follows request header v2, except for
// ApiVersions, whose response header is always v0 so that a client can parse it before
// knowing which versions the broker speaks.
func responseHeaderFlexible(hdr *reqHeader) bool {
	return hdr.flexible && hdr.key != int16(kmsg.ApiVersions)
}

// writeResponse encodes a kmsg response with its header and size prefix into the buffered
// writer.
func (c *conn) writeResponse(hdr *reqHeader, resp kmsg.Response) error {
	b := c.wbuf[:0]
	b = append(b, 0, 0, 0, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(hdr.correlationID))
	if responseHeaderFlexible(hdr) {
		b = append(b, 0) // no tagged fields
	}
	resp.SetVersion(hdr.version)
	b = resp.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	c.wbuf = b
	if cap(c.wbuf) > 4<<20 { // do not pin a huge buffer after one big response
		c.wbuf = nil
	}
	if _, err := c.writer().Write(b); err != nil {
		return fmt.Errorf("cannot write response: %w", err)
	}
	return nil
}

// kmsgReply is a response ready to encode, optionally after a wait (durability).
type kmsgReply struct {
	resp   kmsg.Response
	before func()
	// fsyncWait: before is a durability wait (one group commit), which the responses buffered
	// ahead of it may wait for: see flushBeforeWait.
	fsyncWait bool
}

func (r *kmsgReply) writeTo(c *conn, hdr *reqHeader) error {
	if r.before != nil {
		if !r.fsyncWait {
			if err := c.flushBeforeWait(); err != nil {
				return err
			}
		}
		r.before()
	}
	return c.writeResponse(hdr, r.resp)
}

// flushBeforeWait sends the responses buffered so far before the writer blocks on a wait that
// may be long (a fetch long poll, a group join): the writer otherwise flushes only once its
// queue is empty, and a produce answer held in the buffer behind a long poll on the same
// connection (a client sharing one connection for producing and consuming) would wait for the
// poll to end. Before a produce's durability wait it does not flush: that wait is one fsync,
// and answers sent together bring the producer's next requests together, which then share
// group commits. Measured with Kafka's ProducerPerformance at 50,000 records/s on 6 partitions
// (docs/performance.md): flushing there too took 27,000-30,000 fsyncs per million records
// instead of 23,000-25,000, each slower, and requests 10-35% longer.
func (c *conn) flushBeforeWait() error {
	if c.bw == nil || c.bw.Buffered() == 0 {
		return nil
	}
	return c.flush()
}

func respond(resp kmsg.Response) reply { return &kmsgReply{resp: resp} }

// errUnsupportedApiVersions marks an ApiVersions request newer than we serve: it still gets
// an answer (see 18_api_versions.go).
var errUnsupportedApiVersions = errors.New("unsupported ApiVersions version")

// decodeRequest parses one frame (without its size prefix): header, then body with kmsg.
// Errors mean the connection must be closed, except errUnsupportedApiVersions.
func (apis apiTable) decodeRequest(frame []byte) (reqHeader, kmsg.Request, error) {
	var hdr reqHeader
	if len(frame) < minRequestFrameBytes {
		return hdr, nil, fmt.Errorf("request frame of %d bytes is shorter than a header", len(frame))
	}
	hdr.key = int16(binary.BigEndian.Uint16(frame[0:]))
	hdr.version = int16(binary.BigEndian.Uint16(frame[2:]))
	hdr.correlationID = int32(binary.BigEndian.Uint32(frame[4:]))
	idLen := int(int16(binary.BigEndian.Uint16(frame[8:])))
	rest := frame[10:]
	if idLen > 0 {
		if idLen > len(rest) {
			return hdr, nil, fmt.Errorf("request header client id length %d exceeds the frame", idLen)
		}
		hdr.clientID = string(rest[:idLen])
		rest = rest[idLen:]
	}
	a := apis[hdr.key]
	if a == nil {
		return hdr, nil, fmt.Errorf("unknown api key %d (version %d)", hdr.key, hdr.version)
	}
	if hdr.version < a.advertisedMin || hdr.version > a.max {
		if hdr.key == int16(kmsg.ApiVersions) {
			return hdr, nil, errUnsupportedApiVersions
		}
		return hdr, nil, fmt.Errorf("%s version %d is not supported (serving %d-%d)", kmsg.NameForKey(hdr.key), hdr.version, a.advertisedMin, a.max)
	}
	req := kmsg.RequestForKey(hdr.key)
	req.SetVersion(hdr.version)
	hdr.flexible = req.IsFlexible()
	if hdr.flexible {
		var err error
		if rest, err = skipTags(rest); err != nil {
			return hdr, nil, fmt.Errorf("cannot decode request header tags: %w", err)
		}
	}
	if err := req.ReadFrom(rest); err != nil {
		return hdr, nil, fmt.Errorf("cannot decode %s v%d request: %w", kmsg.NameForKey(hdr.key), hdr.version, err)
	}
	return hdr, req, nil
}

// skipTags skips a tagged-field section: uvarint count, then per field uvarint tag, uvarint
// size and the bytes.
func skipTags(b []byte) ([]byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, errors.New("bad tag count")
	}
	b = b[k:]
	for i := uint64(0); i < n; i++ {
		if _, k = binary.Uvarint(b); k <= 0 {
			return nil, errors.New("bad tag")
		}
		b = b[k:]
		size, k := binary.Uvarint(b)
		if k <= 0 || size > uint64(len(b)-k) {
			return nil, errors.New("bad tag size")
		}
		b = b[k+int(size):]
	}
	return b, nil
}
