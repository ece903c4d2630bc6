package amqp

// A connection's output. Frames are encoded into outBuf by whoever produces them (the
// connection's reader, other connections' readers delivering to its consumers, the
// confirmer, queue timers) and written to the socket by one of two writers:
//
//   - the reader itself, when it has handled everything it read and is about to read again
//     (flushOut): one non-blocking write of what is queued. Replies, confirms and the
//     deliveries its acks freed then leave without waking another goroutine. While the
//     reader is handling a read buffer (outBuf.active) appends do not wake the writer
//     goroutine at all: the reader's flush is coming. On a two-core machine each such wake
//     had another core's thread woken, spinning and parked again, once per read.
//   - the writer goroutine (writeLoop) for everything else: what is appended while the
//     reader is waiting for input, what a non-blocking write left over, and heartbeats. It
//     is the only writer that blocks, so a client that stops reading stalls the writer,
//     never the reader.
//
// wmu makes the two writers take turns; each takes the buffer only once it holds wmu, so
// bytes reach the socket in the order they were appended.
//
// Bounds. Deliveries are refused while outBacklogMax bytes wait (lockForAppend), and their
// queues retry once the writer made room. Everything else (method replies, basic.get-ok,
// returns, confirms, channel and connection closes) is appended by append, which never
// refuses: instead the reader stops reading while that output is more than outReplyMax bytes
// from being written (conn.waitOutput). A client that sends requests and never reads their
// replies is then held by TCP, as any peer that does not read is, and yard holds at most
// outReplyMax plus one reply (a basic.get-ok carries a whole message) for it. The
// connection is not closed for it: a slow reader is not a faulty one and nothing it is owed
// is lost. A client that truly went away fails the writer's blocked write once TCP gives up
// on the unacknowledged data, and shutdown closes the socket; either wakes the reader.
// Output appended after the reader's last reply does not hold the reader (sent and replyEnd
// are stream positions): a client whose consumer lags must still be able to publish and ack
// on the same connection.

import (
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/yardmq/yard/internal/amqp/wire"
	"github.com/yardmq/yard/internal/platform"
)

// outBuf collects encoded frames for the socket. Anyone may append.
type outBuf struct {
	wmu sync.Mutex // held while writing to the socket
	raw *rawWriter // for non-blocking writes; nil: the writer goroutine writes everything

	mu       sync.Mutex // guards the fields below
	buf      []byte
	spare    []byte // a written buffer, for reuse
	inflight int    // bytes being written now
	active   bool   // the reader is handling input and flushes when done: no wake needed
	starved  bool   // a delivery was refused for backlog: kick queues once drained
	closed   bool
	wrote    bool // something was written since the last heartbeat tick
	wake     chan struct{}
	// Stream positions (bytes since the connection began) for the reply bound: sent is how
	// much went to the socket, replyEnd where the latest append (not delivery) ended.
	sent, replyEnd int64
	drained        sync.Cond   // on mu: signalled when sent moves or the output closes
	behind         atomic.Bool // replyEnd-sent > outReplyMax: the reader must wait (waitOutput)
	readerWaiting  bool        // the reader is in waitOutput (tests)
}

func (o *outBuf) append(fn func([]byte) []byte) {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return
	}
	o.buf = fn(o.buf)
	o.replyEnd = o.sent + int64(o.inflight+len(o.buf))
	if o.replyEnd-o.sent > outReplyMax {
		o.behind.Store(true)
	}
	o.unlockAfterAppend()
}

// lockForAppend is append without a closure, for the delivery path (one per message): the
// caller encodes into buf and calls unlockAfterAppend. ok is false, with nothing locked, when
// the connection is closed or too far behind to take more deliveries now.
func (o *outBuf) lockForAppend() (buf []byte, ok bool) {
	o.mu.Lock()
	if o.closed || o.backloggedLocked() {
		o.mu.Unlock()
		return nil, false
	}
	return o.buf, true
}

// unlockAfterAppend ends an append under o.mu (lockForAppend sets o.buf first), waking the
// writer unless the reader is about to flush.
func (o *outBuf) unlockAfterAppend() {
	wake := !o.active
	o.mu.Unlock()
	if wake {
		o.wakeWriter()
	}
}

func (o *outBuf) wakeWriter() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// backloggedLocked reports whether deliveries should pause, noting that one waits for room.
func (o *outBuf) backloggedLocked() bool {
	if len(o.buf)+o.inflight >= outBacklogMax {
		o.starved = true
		return true
	}
	return false
}

// take hands the queued bytes to a writer holding wmu.
func (o *outBuf) take() []byte {
	buf := o.buf
	o.buf, o.spare = o.spare[:0], nil
	o.inflight = len(buf)
	return buf
}

// written returns a writer's buffer after n of its bytes went out; the rest goes back in
// front of what was appended meanwhile. It reports whether a delivery waits for room.
func (o *outBuf) written(buf []byte, n int) (starved bool) {
	o.inflight = 0
	o.sent += int64(n)
	if o.behind.Load() && (o.replyEnd-o.sent <= outReplyMax || o.closed) {
		o.behind.Store(false)
	}
	if n > 0 || o.closed {
		o.drainedCond().Broadcast()
	}
	o.wrote = o.wrote || n > 0
	if n < len(buf) {
		rest := buf[:copy(buf, buf[n:])]
		buf, o.buf = o.buf, append(rest, o.buf...)
	}
	if cap(buf) <= 4<<20 {
		o.spare = buf[:0]
	}
	starved = o.starved && len(o.buf) < outBacklogMax
	if starved {
		o.starved = false
	}
	return starved
}

// drainedCond returns o.drained, tied to o.mu on first use (the zero outBuf is usable).
// Under o.mu.
func (o *outBuf) drainedCond() *sync.Cond {
	if o.drained.L == nil {
		o.drained.L = &o.mu
	}
	return &o.drained
}

// waitOutput is the reader's back-pressure (see the file comment): called when out.behind
// is set, it flushes and then waits until the replies it queued are within outReplyMax
// bytes of written, or the output closed. A closing connection does not wait: its close
// handshake has its own deadline.
func (c *conn) waitOutput() {
	if c.closing {
		return
	}
	c.flushAcks()
	c.flushConfirms()
	c.flushOut()
	o := &c.out
	o.mu.Lock()
	o.readerWaiting = true
	for o.replyEnd-o.sent > outReplyMax && !o.closed {
		o.drainedCond().Wait()
	}
	o.readerWaiting = false
	o.behind.Store(false)
	o.mu.Unlock()
}

// setActive marks the reader as handling input (see the file comment).
func (c *conn) setActive() {
	c.out.mu.Lock()
	c.out.active = true
	c.out.mu.Unlock()
}

// flushOut is the reader's flush before it reads again or blocks: with the writer goroutine
// idle, one non-blocking write of what is queued; the writer is woken for anything left.
func (c *conn) flushOut() {
	o := &c.out
	o.mu.Lock()
	o.active = false
	pending := len(o.buf) > 0 && !o.closed
	o.mu.Unlock()
	if !pending {
		return
	}
	if o.raw != nil && o.wmu.TryLock() {
		o.mu.Lock()
		buf := o.take()
		o.mu.Unlock()
		n := o.raw.tryWrite(buf)
		o.mu.Lock()
		starved := o.written(buf, n)
		pending = len(o.buf) > 0
		o.mu.Unlock()
		o.wmu.Unlock()
		if starved {
			c.kickQueues()
		}
	}
	if pending {
		o.wakeWriter()
	}
}

// rawWriter writes what the socket takes now, without waiting; errors are left to the
// writer goroutine, whose blocking write reports them. Its write func is made once per
// connection: a closure per flush would be an allocation per read.
type rawWriter struct {
	rc    syscall.RawConn
	buf   []byte
	n     int
	write func(fd uintptr) bool
}

func newRawWriter(rc syscall.RawConn) *rawWriter {
	w := &rawWriter{rc: rc}
	w.write = func(fd uintptr) bool {
		w.n, _ = platform.WriteNonBlocking(fd, w.buf)
		return true // never wait for the socket to be writable
	}
	return w
}

// tryWrite returns how many bytes of b went out. The caller holds outBuf.wmu.
func (w *rawWriter) tryWrite(b []byte) int {
	w.buf, w.n = b, 0
	err := w.rc.Write(w.write)
	w.buf = nil
	if err != nil || w.n < 0 {
		return 0
	}
	return w.n
}

func (c *conn) writeLoop() {
	defer close(c.writerDone)
	// Heartbeats as RabbitMQ's: the ticker runs at half the negotiated interval, and a tick
	// sends one unless something was written since the previous tick. A heartbeat itself
	// does not count as a write, or every other tick would be skipped and an idle peer
	// would hear from us only once per interval (the Java client gives up after one).
	tick := c.heartbeatTick
	if tick == nil && c.heartbeat > 0 {
		t := time.NewTicker(c.heartbeat / 2)
		defer t.Stop()
		tick = t.C
	}
	o := &c.out
	for {
		heartbeat := false
		select {
		case <-o.wake:
		case <-tick:
			o.mu.Lock()
			if !o.wrote && len(o.buf) == 0 {
				o.buf = wire.AppendHeartbeat(o.buf)
				heartbeat = true
			}
			o.wrote = false
			o.mu.Unlock()
		}
		o.wmu.Lock()
		o.mu.Lock()
		closed := o.closed
		buf := o.take()
		heartbeatOnly := heartbeat && len(buf) == wire.FrameOverhead
		o.mu.Unlock()
		var err error
		n := 0
		if len(buf) > 0 {
			n, err = c.nc.Write(buf)
		}
		o.mu.Lock()
		if err != nil {
			o.closed = true
		}
		starved := o.written(buf, n)
		if heartbeatOnly {
			o.wrote = false
		}
		pending := len(o.buf) > 0
		o.mu.Unlock()
		o.wmu.Unlock()
		if err != nil {
			c.nc.Close() // unblocks the reader
			return
		}
		if starved {
			c.kickQueues()
		}
		if closed && !pending {
			return
		}
		if pending {
			o.wakeWriter()
		}
	}
}

// stopWriter flushes what is queued and stops the writer.
func (c *conn) stopWriter() {
	c.out.mu.Lock()
	c.out.closed = true
	c.out.drainedCond().Broadcast()
	c.out.mu.Unlock()
	c.out.wakeWriter()
	select {
	case <-c.writerDone:
	case <-time.After(closeOkTimeout):
	}
}
