package amqp

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/yardmq/yard/internal/amqp/wire"
	"github.com/yardmq/yard/internal/listener"
	"github.com/yardmq/yard/internal/platform"
	"github.com/yardmq/yard/internal/queue"
	"github.com/yardmq/yard/internal/vhost"
)

// conn is one client connection. Fields without a lock note are owned by the reader
// goroutine; the negotiated settings are written during the handshake, before any goroutine
// that reads them exists.
type conn struct {
	srv *Server
	nc  net.Conn
	lc  *listener.Conn // its registry entry; nil in tests that build a conn by hand

	counted      bool   // counted against user and vhost connection limits (limits.go)
	countedVhost string // the vhost it was counted in
	countedChans int    // channels counted against the user's max-channels

	log *slog.Logger
	fr  *wire.FrameReader
	out outBuf

	frameMax        uint32
	channelMax      uint16
	heartbeat       time.Duration
	vh              *vhost.VHost
	user            string
	capCancelNotify bool
	capBlocked      bool
	// capAuthFailureClose: the client announced authentication_failure_close.
	capAuthFailureClose bool

	channels     map[uint16]*channel
	closing      bool // connection.close sent; waiting for close-ok
	closed       bool // handshake finished both ways: stop reading
	exclusive    map[string]*vhost.Queue
	confirmDirty []*channel
	ackDirty     []*channel     // channels holding deferred acks (channel.deferAcks)
	paced        []*queue.Queue // queues to wait for before reading on (pace.go)
	lastDeadline time.Time
	frameArmed   bool // the read deadline is FrameReadTimeout's, for the rest of a frame

	consumedMu sync.Mutex // guards consumed
	consumed   map[*queue.Queue]int

	writerDone    chan struct{}
	heartbeatTick <-chan time.Time // tests: replaces the heartbeat ticker of writeLoop
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{
		srv: s, nc: nc, log: s.log.With("remote", nc.RemoteAddr().String()),
		fr:       wire.NewPooledFrameReader(nc, s.readers),
		channels: map[uint16]*channel{}, exclusive: map[string]*vhost.Queue{},
		consumed: map[*queue.Queue]int{}, writerDone: make(chan struct{}),
	}
	c.out.wake = make(chan struct{}, 1)
	if sc, ok := nc.(syscall.Conn); ok && platform.RawWriteSupported {
		if rc, err := sc.SyscallConn(); err == nil {
			c.out.raw = newRawWriter(rc)
		}
	}
	// Before tuning, frames are limited to the specification's minimum frame_max (4096
	// bytes), as RabbitMQ's initial_frame_max; a larger one ends the handshake.
	c.fr.SetFrameMax(wire.FrameMinSize)
	return c
}

// serve runs the connection to its end.
func (c *conn) serve() {
	defer c.fr.Release() // after the socket is closed: nobody reads any more
	defer c.nc.Close()
	defer c.releaseCounts()
	if err := c.handshake(); err != nil {
		if !errors.Is(err, io.EOF) && !errors.Is(err, errLoginRefused) {
			c.srv.rl.Info("AMQP handshake failed", "AMQP handshake failed", "remote", c.nc.RemoteAddr().String(), "err", err)
		}
		return
	}
	c.srv.alarm.register(c)
	go c.writeLoop()
	err := c.readLoop()
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		c.srv.rl.Info("AMQP connection dropped", "AMQP connection dropped", "remote", c.nc.RemoteAddr().String(), "err", err)
	}
	c.srv.alarm.unregister(c)
	c.release()
	c.stopWriter()
	if err == nil {
		c.linger()
	}
}

// linger ends a connection whose close handshake is done (or whose stream is out of step
// after connection.close was sent) without resetting it. Closing a socket that still has
// unread input makes the kernel send RST instead of FIN, and a client whose frames were in
// flight when it sent connection.close (or that sends more after it) then gets ECONNRESET
// or EPIPE, possibly before it read close-ok. As RabbitMQ, the server reads and discards
// what the client still sends: it shuts down its side of the stream (the client reads EOF
// after close-ok) and reads until the client closes too, or closeOkTimeout passes.
func (c *conn) linger() {
	if closeWrite(c.nc) != nil {
		return
	}
	c.nc.SetReadDeadline(time.Now().Add(closeOkTimeout))
	var buf [4096]byte
	for {
		if _, err := c.nc.Read(buf[:]); err != nil {
			return
		}
	}
}

// send queues a method frame.
func (c *conn) send(channel uint16, m wire.Method) {
	c.out.append(func(b []byte) []byte { return wire.AppendMethodFrame(b, channel, m) })
}

func (c *conn) kickQueues() {
	c.consumedMu.Lock()
	qs := make([]*queue.Queue, 0, len(c.consumed))
	for q := range c.consumed {
		qs = append(qs, q)
	}
	c.consumedMu.Unlock()
	for _, q := range qs {
		q.Kick()
	}
}

func (c *conn) trackConsumer(q *queue.Queue, delta int) {
	c.consumedMu.Lock()
	defer c.consumedMu.Unlock()
	c.consumed[q] += delta
	if c.consumed[q] <= 0 {
		delete(c.consumed, q)
	}
}

// readLoop reads and handles frames until the connection ends.
func (c *conn) readLoop() error {
	for !c.closed {
		wait := !c.fr.Ready() // the next frame needs a read: flush, it may block
		if wait {
			c.flushAcks()
			c.flushConfirms()
			c.flushOut()
			if len(c.paced) > 0 {
				c.waitPaced()
			}
		}
		f, err := c.nextFrame(wait)
		if wait {
			c.setActive()
		}
		if err != nil {
			if errors.Is(err, wire.ErrFrameTooLarge) || errors.Is(err, wire.ErrFrameEnd) {
				c.sendConnClose(errWithID(wire.FrameError, 0, "%v", err))
				return nil // the stream is out of step: no close-ok will be readable
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && c.frameArmed {
				return fmt.Errorf("cannot read frame: not received within %s of its first byte: %w", c.srv.cfg.FrameReadTimeout, err)
			}
			if errors.As(err, &ne) && ne.Timeout() && !c.closing {
				return fmt.Errorf("cannot read frame: missed heartbeats from client (timeout %s): %w", 2*c.heartbeat, err)
			}
			return err
		}
		if err := c.handleFrame(f); err != nil {
			var ae *amqpError
			if !errors.As(err, &ae) {
				return err
			}
			c.sendConnClose(ae)
		}
		if c.out.behind.Load() {
			c.waitOutput() // the client is not reading its replies: stop reading its requests
		}
	}
	return nil
}

// nextFrame reads the next frame. When that needs the network (wait), the wait for its first
// byte is bounded by the heartbeat rule (armDeadline), and once that byte is in, the rest of
// the frame by FrameReadTimeout: a peer trickling a frame byte by byte, heartbeats or not,
// cannot hold the connection.
func (c *conn) nextFrame(wait bool) (wire.Frame, error) {
	if !wait {
		return c.fr.ReadFrame()
	}
	if c.fr.Buffered() == 0 {
		if err := c.awaitFrame(); err != nil {
			return wire.Frame{}, err
		}
	}
	if !c.closing && !c.fr.Ready() {
		c.frameArmed = true
		c.nc.SetReadDeadline(time.Now().Add(c.srv.cfg.FrameReadTimeout))
	}
	return c.fr.ReadFrame()
}

// awaitFrame waits for the first byte of the next frame. A reader that holds a buffer
// waits keepReadBufferFor with it (a busy peer's next frame usually comes sooner); past
// that, or without one, it gives the buffer back and waits under the heartbeat rule, so an
// idle connection costs no read buffer.
func (c *conn) awaitFrame() error {
	if c.closing {
		return c.fr.Fill(false) // under the close-ok deadline
	}
	if c.fr.Holding() {
		c.frameArmed = true // not the heartbeat rule's deadline: armDeadline re-arms it
		c.nc.SetReadDeadline(time.Now().Add(keepReadBufferFor))
		err := c.fr.Fill(false)
		var ne net.Error
		if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
			return err
		}
	}
	c.armDeadline()
	return c.fr.Fill(true)
}

// armDeadline bounds the wait for the next frame to two heartbeat intervals, as RabbitMQ
// (whose receiver gives up after two intervals without data). The reader calls it only
// before a read that touches the network.
func (c *conn) armDeadline() {
	if c.closing {
		return // sendConnClose armed the close-ok deadline once; it is not extended
	}
	if c.frameArmed {
		// The last wait bounded the rest of a frame: this one waits for a new frame.
		c.frameArmed = false
		c.lastDeadline = time.Time{}
		if c.heartbeat <= 0 {
			c.nc.SetReadDeadline(time.Time{})
		}
	}
	if c.heartbeat <= 0 {
		return
	}
	// A deadline matters only to a read that touches the network: a frame already buffered
	// needs none, and skipping the clock for it matters (reading the clock for each of
	// 100,000 frames a second was 4% of the broker's CPU). Before a network read the
	// deadline is re-armed if it is older than rearmAfter, so however long a run of
	// buffered frames lasts, the next wait gets a fresh bound. Re-arming costs a timer
	// update; a few times per interval is plenty.
	now := time.Now()
	if d, ok := readDeadline(now, c.lastDeadline, c.heartbeat); ok {
		c.lastDeadline = now
		c.nc.SetReadDeadline(d)
	}
}

// readDeadline returns the read deadline to arm at now, given when it was last armed, for
// a heartbeat interval hb, and false if the armed one still serves. A deadline armed
// rearmAfter ago is that much later than two intervals from its arming, so the one in
// force is never sooner than two full intervals after now: a peer is dropped after two
// missed intervals, never after fewer.
func readDeadline(now, lastArmed time.Time, hb time.Duration) (time.Time, bool) {
	rearmAfter := min(time.Second, hb/4)
	if now.Sub(lastArmed) <= rearmAfter {
		return time.Time{}, false
	}
	return now.Add(2*hb + rearmAfter), true
}

func (c *conn) handleFrame(f wire.Frame) error {
	if c.closing {
		return c.whileClosing(f)
	}
	switch f.Type {
	case wire.FrameHeartbeat:
		if f.Channel != 0 {
			// RabbitMQ's reply, in its words (an Erlang binary for the payload).
			which, octets := payloadSnippet(f.Payload)
			return errWithID(wire.UnexpectedFrame, 0, "type %d, %s octets = %s", f.Type, which, octets)
		}
		return nil
	case wire.FrameMethod:
		m, err := wire.DecodeMethod(f.Payload)
		if errors.Is(err, wire.ErrUnknownMethod) {
			return errWithID(wire.CommandInvalid, 0, "unknown method: %v", err)
		}
		if err != nil {
			return errWithID(wire.FrameError, 0, "cannot decode method frame: %v", err)
		}
		if o := c.srv.cfg.MethodObserver; o != nil {
			start := time.Since(c.srv.epoch)
			defer func() { o.ObserveMethod(m.ID(), time.Since(c.srv.epoch)-start) }()
		}
		if f.Channel == 0 {
			return c.handleConnMethod(m)
		}
		return c.channelMethod(f.Channel, m)
	case wire.FrameHeader, wire.FrameBody:
		ch := c.channels[f.Channel]
		if ch == nil || f.Channel == 0 {
			return errWithID(wire.ChannelError, 0, "expected 'channel.open' on channel %d", f.Channel)
		}
		return ch.handleContent(f)
	default:
		return errWithID(wire.FrameError, 0, "unknown frame type %d", f.Type)
	}
}

func (c *conn) channelMethod(id uint16, m wire.Method) error {
	ch := c.channels[id]
	if ch == nil {
		if _, ok := m.(*wire.ChannelOpen); !ok {
			return connErr(wire.ChannelError, m, "expected 'channel.open' on channel %d", id)
		}
		if id > c.channelMax {
			return connErr(wire.ChannelError, m, "channel %d exceeds channel_max %d", id, c.channelMax)
		}
		if e := c.acquireChannel(m); e != nil {
			return e
		}
		ch = newChannel(c, id)
		c.channels[id] = ch
		c.channelOpened(ch)
		c.send(id, &wire.ChannelOpenOk{})
		return nil
	}
	return ch.handle(m)
}

// whileClosing ignores everything but the close handshake after a connection error.
func (c *conn) whileClosing(f wire.Frame) error {
	if f.Type != wire.FrameMethod || f.Channel != 0 {
		return nil
	}
	m, err := wire.DecodeMethod(f.Payload)
	if err != nil {
		return nil
	}
	switch m.(type) {
	case *wire.ConnectionCloseOk:
		c.closed = true
	case *wire.ConnectionClose:
		c.send(0, &wire.ConnectionCloseOk{})
		c.closed = true
	}
	return nil
}

func (c *conn) handleConnMethod(m wire.Method) error {
	switch m := m.(type) {
	case *wire.ConnectionClose:
		// Confirms owed go first; then release, so that a client that sees close-ok sees
		// its consumers gone and its unacknowledged messages requeued.
		deadline := time.Now().Add(closeOkTimeout) // for all channels together
		for _, ch := range c.channels {
			if !ch.closing {
				ch.sendPendingConfirms(deadline)
			}
		}
		c.release()
		c.send(0, &wire.ConnectionCloseOk{})
		c.closed = true
		return nil
	case *wire.ConnectionCloseOk:
		c.closed = true
		return nil
	case *wire.ConnectionUpdateSecret:
		// As RabbitMQ: a backend whose secrets expire (tokens) re-checks the connection's
		// user with the new secret, and a refusal closes the connection with 530 in
		// RabbitMQ's words; any other backend (passwords) accepts it unchecked, as
		// RabbitMQ's internal one does.
		su, ok := c.srv.cfg.Auth.(SecretUpdater)
		if !ok {
			c.log.Debug("AMQP connection updated its secret (not checked: the user backend's secrets do not expire)", "user", c.user, "reason", m.Reason)
			c.send(0, &wire.ConnectionUpdateSecretOk{})
			return nil
		}
		if err := su.UpdateSecret(c.user, m.NewSecret); err != nil {
			c.srv.rl.Info("AMQP secret update refused", "AMQP secret update refused", "remote", c.nc.RemoteAddr().String(), "user", c.user, "reason", m.Reason, "err", err)
			return connErr(wire.NotAllowed, m, "New secret was refused by one of the backends")
		}
		c.log.Debug("AMQP connection updated its secret", "user", c.user, "reason", m.Reason)
		c.send(0, &wire.ConnectionUpdateSecretOk{})
		return nil
	case *wire.ConnectionBlocked, *wire.ConnectionUnblocked:
		return nil // clients may not block the server; ignore as RabbitMQ does
	}
	return connErr(wire.CommandInvalid, m, "unexpected method %s on channel 0", m.Name())
}

// sendConnClose starts the server side of the close handshake.
func (c *conn) sendConnClose(e *amqpError) {
	if c.closing {
		return
	}
	c.srv.rl.Info(fmt.Sprintf("closing AMQP connection %d", e.code), "closing AMQP connection", "remote", c.nc.RemoteAddr().String(), "code", e.code, "text", e.text)
	cls, mth := closeFor(e)
	c.send(0, &wire.ConnectionClose{ReplyCode: e.code, ReplyText: e.text, ClassId: cls, MethodId: mth})
	c.closing = true
	c.nc.SetReadDeadline(time.Now().Add(closeOkTimeout))
	c.release()
}

// forceClose is Shutdown's: it closes the connection from outside the reader goroutine.
func (c *conn) forceClose(text string) {
	c.send(0, &wire.ConnectionClose{ReplyCode: wire.ConnectionForced, ReplyText: text})
	time.AfterFunc(closeOkTimeout, func() { c.nc.Close() })
	c.nc.SetReadDeadline(time.Now().Add(closeOkTimeout))
}

// release frees everything the connection holds: consumers are cancelled, unacknowledged
// messages requeued, exclusive queues deleted. Safe to call twice.
func (c *conn) release() {
	for id, ch := range c.channels {
		ch.release()
		delete(c.channels, id)
		c.channelGone(ch)
	}
	for name, qs := range c.exclusive {
		c.vh.DeleteQueue(qs)
		delete(c.exclusive, name)
	}
}

// flushAcks applies the deferred acks of every channel that has some.
func (c *conn) flushAcks() {
	for _, ch := range c.ackDirty {
		ch.flushAcks()
	}
	clear(c.ackDirty)
	c.ackDirty = c.ackDirty[:0]
}

// flushConfirms sends the coalesced publisher confirms of every channel that has some.
func (c *conn) flushConfirms() {
	for _, ch := range c.confirmDirty {
		ch.flushConfirms()
	}
	clear(c.confirmDirty)
	c.confirmDirty = c.confirmDirty[:0]
}

// closeWrite shuts down the writing side of nc (a TCP or TLS connection, or a wrapper
// that exposes the connection it wraps), so that the peer reads EOF. A connection that
// cannot do it is left as it is: clients close on close-ok anyway.
func closeWrite(nc net.Conn) error {
	for range 4 {
		switch c := nc.(type) {
		case interface{ CloseWrite() error }:
			return c.CloseWrite()
		case interface{ NetConn() net.Conn }:
			nc = c.NetConn()
		default:
			return nil
		}
	}
	return nil
}

// payloadSnippet describes a frame payload as RabbitMQ's reply texts do: "all" or "first
// 16" octets, written as an Erlang binary.
func payloadSnippet(p []byte) (which, octets string) {
	which = "all"
	if len(p) > 16 {
		which, p = "first 16", p[:16]
	}
	var b strings.Builder
	b.WriteString("<<")
	for i, x := range p {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(x)))
	}
	b.WriteString(">>")
	return which, b.String()
}
