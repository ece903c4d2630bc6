package amqp

// The channel class (open, flow, close) and the per-channel state: content assembly for
// basic.publish, delivery tags and unacknowledged deliveries, prefetch, confirms and tx.

import (
	"sync"
	"time"

	"github.com/yardmq/yard/internal/amqp/wire"
	"github.com/yardmq/yard/internal/queue"
	"github.com/yardmq/yard/internal/vhost"
)

type channel struct {
	id uint16
	c  *conn

	// Owned by the reader goroutine.
	pub        *publishing
	closing    bool // channel.close sent; waiting for close-ok
	confirm    bool
	publishSeq uint64 // last publish sequence number in confirm mode
	ackedUpTo  uint64 // confirms sent (or nacked) up to here
	ackPending uint64 // confirms owed up to here, coalesced until the reader drains
	tx         *txState
	committing bool           // tx.commit is publishing: collect txWaits
	txWaits    []queue.Waiter // durability a tx.commit-ok waits for
	confirms   *confirmer     // confirms that wait for durability
	router     vhost.Router   // routes this channel's publishes (route)
	lastQueue  string         // the queue last declared on this channel: what "" means in queue methods
	replyTo    string         // direct reply-to queue, once the channel consumed amq.rabbitmq.reply-to
	ackBatch   []*unackedMsg  // acks not yet applied to their queues (deferAcks)
	pubSlot    publishing     // reused for each publishing outside transactions
	pickBuf    []*unackedMsg  // settleNow's, reused
	turnNext   int            // kickConsumers: the queue whose turn comes first

	mu             sync.Mutex // guards everything below; TryDeliver takes it under a queue lock
	released       bool
	consumers      map[string]*chConsumer
	nextTag        uint64
	unacked        map[uint64]*unackedMsg
	tags           []uint64 // delivery tags in order, for multiple acks; may hold settled tags
	prefetch       int      // basic.qos global=false: limit for consumers created afterwards
	globalPrefetch int      // basic.qos global=true: limit shared by the channel
	globalInflight int
	unackSlab      []unackedMsg      // newUnacked's current slab
	deliverScratch wire.BasicDeliver // the method TryDeliver encodes
	// Turns under a channel-wide prefetch (kickConsumers): while turnOn, only turn may
	// deliver, once (turnUsed); turn nil lets no queue deliver.
	turnOn, turnUsed bool
	turn             *queue.Queue
}

type unackedMsg struct {
	tag  uint64
	q    *queue.Queue
	id   uint64
	cons *chConsumer // nil for basic.get
}

// publishing is a basic.publish whose content is being assembled.
type publishing struct {
	m        *wire.BasicPublish
	header   bool
	size     uint64
	props    []byte
	body     []byte
	received uint64
	extra    []string // routing keys from the CC and BCC headers (sender.go)
}

func newChannel(c *conn, id uint16) *channel {
	ch := &channel{id: id, c: c, consumers: map[string]*chConsumer{}, unacked: map[uint64]*unackedMsg{}}
	ch.confirms = newConfirmer(ch)
	return ch
}

func (ch *channel) send(m wire.Method) { ch.c.send(ch.id, m) }

// handle runs one method on this channel; an *amqpError closes the channel or connection.
func (ch *channel) handle(m wire.Method) error {
	if ch.closing {
		switch m.(type) {
		case *wire.ChannelCloseOk:
			delete(ch.c.channels, ch.id)
			ch.c.channelGone(ch)
		case *wire.ChannelClose:
			ch.send(&wire.ChannelCloseOk{})
		}
		return nil // RabbitMQ ignores everything else on a closing channel
	}
	if ch.pub != nil {
		return connErr(wire.UnexpectedFrame, m, "expected content header for class 60, got non content header frame instead")
	}
	if _, ack := m.(*wire.BasicAck); !ack {
		ch.flushAcks() // whatever this method does, it sees the acks before it applied
	}
	err := ch.dispatch(m)
	if e, ok := err.(*amqpError); ok && !e.conn {
		ch.closeWithError(e)
		return nil
	}
	return err
}

func (ch *channel) dispatch(m wire.Method) error {
	if e := ch.permit(m); e != nil {
		return e
	}
	switch m := m.(type) {
	case *wire.ChannelOpen:
		return connErr(wire.ChannelError, m, "second 'channel.open' seen on channel %d", ch.id)
	case *wire.ChannelClose:
		ch.sendPendingConfirms(time.Now().Add(closeOkTimeout))
		ch.release()
		ch.send(&wire.ChannelCloseOk{})
		delete(ch.c.channels, ch.id)
		ch.c.channelGone(ch)
		return nil
	case *wire.ChannelCloseOk:
		return nil
	case *wire.ChannelFlow:
		if !m.Active {
			return channelErr(wire.NotImplemented, m, "active=false")
		}
		ch.send(&wire.ChannelFlowOk{Active: true})
		return nil
	case *wire.ChannelFlowOk:
		return nil
	case *wire.AccessRequest:
		ch.send(&wire.AccessRequestOk{Ticket: 1})
		return nil
	case *wire.ExchangeDeclare:
		return ch.exchangeDeclare(m)
	case *wire.ExchangeDelete:
		return ch.exchangeDelete(m)
	case *wire.ExchangeBind:
		return ch.exchangeBind(m)
	case *wire.ExchangeUnbind:
		return ch.exchangeUnbind(m)
	case *wire.QueueDeclare:
		return ch.queueDeclare(m)
	case *wire.QueueBind:
		return ch.queueBind(m)
	case *wire.QueueUnbind:
		return ch.queueUnbind(m)
	case *wire.QueuePurge:
		return ch.queuePurge(m)
	case *wire.QueueDelete:
		return ch.queueDelete(m)
	case *wire.BasicQos:
		return ch.basicQos(m)
	case *wire.BasicConsume:
		return ch.basicConsume(m)
	case *wire.BasicCancel:
		return ch.basicCancel(m)
	case *wire.BasicPublish:
		return ch.basicPublish(m)
	case *wire.BasicGet:
		return ch.basicGet(m)
	case *wire.BasicAck:
		return ch.settle(m, m.DeliveryTag, m.Multiple, settleAck)
	case *wire.BasicNack:
		return ch.settle(m, m.DeliveryTag, m.Multiple, requeueOrDrop(m.Requeue))
	case *wire.BasicReject:
		return ch.settle(m, m.DeliveryTag, false, requeueOrDrop(m.Requeue))
	case *wire.BasicRecover:
		return ch.basicRecover(m, m.Requeue, true)
	case *wire.BasicRecoverAsync:
		return ch.basicRecover(m, m.Requeue, false)
	case *wire.ConfirmSelect:
		return ch.confirmSelect(m)
	case *wire.TxSelect:
		return ch.txSelect(m)
	case *wire.TxCommit:
		return ch.txCommit(m)
	case *wire.TxRollback:
		return ch.txRollback(m)
	}
	return connErr(wire.CommandInvalid, m, "method %s is not valid on a channel from a client", m.Name())
}

// sendPendingConfirms sends every confirm the channel owes before a client-requested close:
// as RabbitMQ, close-ok comes after them, and a client must never see a frame on a channel
// it has closed. Confirms waiting for the disk are waited for until the deadline; those
// still pending then are dropped with the channel.
func (ch *channel) sendPendingConfirms(deadline time.Time) {
	if !ch.confirm {
		return
	}
	ch.flushConfirms()
	ch.confirms.drain(time.Until(deadline))
}

// closeWithError sends channel.close for a channel error and frees the channel's resources
// at once; the channel number stays taken until the client's close-ok.
func (ch *channel) closeWithError(e *amqpError) {
	ch.c.log.Debug("closing AMQP channel", "channel", ch.id, "code", e.code, "text", e.text)
	ch.flushConfirms()
	ch.release()
	ch.pub = nil
	ch.closing = true
	cls, mth := closeFor(e)
	ch.send(&wire.ChannelClose{ReplyCode: e.code, ReplyText: e.text, ClassId: cls, MethodId: mth})
}

// handleContent assembles a publish from its content header and body frames.
func (ch *channel) handleContent(f wire.Frame) error {
	if ch.closing {
		return nil
	}
	p := ch.pub
	if f.Type == wire.FrameHeader {
		if p == nil || p.header {
			return errWithID(wire.UnexpectedFrame, 0, "expected method frame, got non method frame instead")
		}
		h, err := wire.DecodeContentHeader(f.Payload)
		if err != nil {
			return errWithID(wire.FrameError, 0, "cannot decode content header: %v", err)
		}
		if h.ClassID != wire.ClassBasic {
			return errWithID(wire.UnexpectedFrame, wire.IDBasicPublish, "content header for class %d, expected class 60", h.ClassID)
		}
		if h.BodySize > maxMessageBytes {
			ch.pub = nil
			ch.closeWithError(channelErr(wire.PreconditionFailed, p.m, "message size %d is larger than configured max size %d", h.BodySize, maxMessageBytes))
			return nil
		}
		p.header, p.size = true, h.BodySize
		np := len(h.Properties)
		if uint64(np)+h.BodySize <= contentPreallocMax {
			// Properties and body share one allocation; the queue keeps both for as long.
			buf := make([]byte, np+int(h.BodySize))
			p.props = buf[:np:np]
			copy(p.props, h.Properties)
			p.body = buf[np:np]
		} else {
			// The body grows as its frames arrive: the announced size is only a promise, and
			// a peer announcing 128 MiB and sending nothing must not hold 128 MiB.
			p.props = append([]byte(nil), h.Properties...)
			p.body = nil
		}
	} else {
		if p == nil || !p.header {
			return errWithID(wire.UnexpectedFrame, 0, "expected method frame, got non method frame instead")
		}
		if uint64(len(p.body))+uint64(len(f.Payload)) > p.size {
			return errWithID(wire.UnexpectedFrame, wire.IDBasicPublish, "content body larger than the %d bytes its header announced", p.size)
		}
		p.body = appendBody(p.body, f.Payload, p.size)
	}
	if uint64(len(p.body)) == p.size {
		ch.pub = nil
		err := ch.publish(p)
		if e, ok := err.(*amqpError); ok && !e.conn {
			ch.closeWithError(e)
			return nil
		}
		return err
	}
	return nil
}

// contentPreallocMax: a message whose header announces at most this many bytes (properties
// and body) gets its buffer at once; a larger one grows as its body arrives (appendBody).
const contentPreallocMax = 64 << 10

// appendBody appends a body frame's payload to a body announced as size bytes, growing the
// buffer by doubling but never past size, so that a whole body ends with no spare capacity
// (the queue keeps the buffer for as long as the message) and a body that never comes holds
// no more than what arrived.
func appendBody(body, payload []byte, size uint64) []byte {
	need := len(body) + len(payload)
	if need > cap(body) {
		grown := make([]byte, len(body), int(min(size, uint64(max(need, 2*cap(body), contentPreallocMax)))))
		copy(grown, body)
		body = grown
	}
	return append(body, payload...)
}

// release cancels the channel's consumers and requeues its unacknowledged messages, in that
// order, so that requeued messages go to other consumers. Idempotent.
func (ch *channel) release() {
	ch.flushAcks()
	ch.mu.Lock()
	if ch.released {
		ch.mu.Unlock()
		return
	}
	ch.released = true
	if ch.tx != nil {
		ch.unpickLocked(ch.tx.acks) // acked in a transaction never committed: requeued
	}
	ch.confirms.close()
	consumers := ch.consumers
	ch.consumers = map[string]*chConsumer{}
	unacked := ch.unacked
	ch.unacked, ch.tags = map[uint64]*unackedMsg{}, nil
	ch.mu.Unlock()
	for _, cons := range consumers {
		ch.dropConsumer(cons)
	}
	byQueue := map[*queue.Queue][]uint64{}
	for _, u := range sortedUnacked(unacked) {
		byQueue[u.q] = append(byQueue[u.q], u.id)
	}
	for q, ids := range byQueue {
		q.Requeue(ids...)
	}
	ch.tx = nil
}
