package amqp

// basic.publish (routing, mandatory returns), publisher confirms (confirm.select, basic.ack /
// basic.nack to the publisher) and transactions (tx.select/commit/rollback).

import (
	"github.com/yardmq/yard/internal/amqp/wire"
	"github.com/yardmq/yard/internal/queue"
	"github.com/yardmq/yard/internal/vhost"
)

// confirmBatchMax bounds how many publishes one coalesced basic.ack may cover, so that a
// publisher whose frames never stop arriving is not starved of confirms.
const confirmBatchMax = 256

type txState struct {
	pubs []*publishing
	acks []txAck
}

// txAck is an ack, nack or reject in a transaction: its deliveries, already off the
// channel's books (channel.settle).
type txAck struct {
	picked []*unackedMsg
	mode   settleMode
}

func (ch *channel) basicPublish(m *wire.BasicPublish) error {
	if m.Immediate {
		return channelErr(wire.NotImplemented, m, "immediate=true")
	}
	// A blocked connection stops reading at its next publish, as RabbitMQ's flow control:
	// TCP back-pressure then holds the publisher.
	// Deliveries to this connection must not wait for the alarm: flush them first.
	ch.c.srv.alarm.waitUnblocked(ch.c.flushOut)
	if ch.tx != nil {
		ch.pub = &publishing{m: m} // held until tx.commit
	} else {
		ch.pubSlot = publishing{m: m} // done with once publish returns
		ch.pub = &ch.pubSlot
	}
	return nil
}

// Headers implements route.HeaderSource: the message's headers, decoded only when a headers
// exchange asks.
func (p *publishing) Headers() map[string]any {
	var props wire.BasicProperties
	if props.Decode(p.props) != nil {
		return nil
	}
	return props.Headers
}

// publish routes a fully assembled message, or holds it for tx.commit.
func (ch *channel) publish(p *publishing) error {
	if e := ch.checkUserID(p); e != nil {
		return e
	}
	if e := ch.checkContent(p); e != nil {
		return e
	}
	if ch.tx != nil {
		ch.tx.pubs = append(ch.tx.pubs, p)
		return nil
	}
	var seq uint64
	if ch.confirm {
		ch.publishSeq++
		seq = ch.publishSeq
	}
	props, e := ch.rewriteReplyTo(p.m, p.props)
	if e != nil {
		return e
	}
	p.props = props
	routed, failed, waits, e := ch.route(p)
	if e != nil {
		return e
	}
	if ch.committing {
		ch.txWaits = append(ch.txWaits, waits...)
	}
	if routed == 0 && p.m.Mandatory {
		ret := &wire.BasicReturn{ReplyCode: wire.NoRoute, ReplyText: "NO_ROUTE", Exchange: p.m.Exchange, RoutingKey: p.m.RoutingKey}
		msg := &queue.Message{Properties: p.props, Body: p.body}
		ch.c.out.append(func(b []byte) []byte { return ch.appendContent(b, ret, msg) })
	}
	if ch.confirm {
		if len(waits) > 0 || ch.confirms.busy() {
			ch.flushConfirms()
			ch.confirms.add(seq, !failed, waits)
		} else {
			ch.confirmed(seq, !failed)
		}
	}
	return nil
}

// checkUserID refuses a message whose user-id property names another user than the one
// logged in, as RabbitMQ (which lets only its "impersonator" users do that; yard has none).
// The properties are decoded only when the flag says a user-id is there.
func (ch *channel) checkUserID(p *publishing) *amqpError {
	if len(p.props) < 2 || (uint16(p.props[0])<<8|uint16(p.props[1]))&wire.FlagBasicUserId == 0 {
		return nil
	}
	var props wire.BasicProperties
	if err := props.Decode(p.props); err != nil {
		return connErr(wire.FrameError, p.m, "cannot decode content header properties: %v", err)
	}
	if props.UserId != ch.c.user {
		return channelErr(wire.PreconditionFailed, p.m, "user_id property set to '%s' but authenticated user was '%s'", props.UserId, ch.c.user)
	}
	return nil
}

// route publishes the message through the vhost (vhost.Publish: the one routing and
// delivery every front end shares). It reports how many queues took it, whether any failed
// to, and, for a persistent message, what to wait for before it is durable everywhere.
func (ch *channel) route(p *publishing) (routed int, failed bool, waits []queue.Waiter, e *amqpError) {
	m := p.m
	if ch.router.Enqueued == nil {
		ch.router.Enqueued = ch.c.notePace
		ch.router.Failed = func(name string, stream bool, err error) {
			msg := "cannot enqueue message"
			if stream {
				msg = "cannot append to stream"
			}
			ch.c.srv.rl.Warn(msg, msg, "remote", ch.c.nc.RemoteAddr().String(), "queue", name, "err", err)
		}
	}
	res, err := ch.c.vh.Publish(&ch.router, &vhost.Publishing{Exchange: m.Exchange, RoutingKey: m.RoutingKey,
		Extra: p.extra, Headers: p, Properties: p.props, Body: p.body, Persistent: deliveryMode(p.props) == 2})
	if err != nil {
		return 0, false, nil, refused(m, err)
	}
	return res.Queues, res.Failed, res.Waits, nil
}

// confirmed records the outcome of publish seq. Acks are coalesced into one basic.ack with
// multiple=true, sent when the reader has drained its input; a nack is sent at once, after
// the acks owed before it.
func (ch *channel) confirmed(seq uint64, ok bool) {
	if ok {
		ch.ackPending = seq
		if ch.ackPending-ch.ackedUpTo >= confirmBatchMax {
			ch.flushConfirms() // a publisher that never pauses still gets its confirms
			return
		}
		if len(ch.c.confirmDirty) == 0 || ch.c.confirmDirty[len(ch.c.confirmDirty)-1] != ch {
			ch.c.confirmDirty = append(ch.c.confirmDirty, ch)
		}
		return
	}
	ch.flushConfirms()
	ch.send(&wire.BasicNack{DeliveryTag: seq})
	ch.ackedUpTo, ch.ackPending = seq, seq
}

func (ch *channel) flushConfirms() {
	ch.confirms.mu.Lock()
	defer ch.confirms.mu.Unlock()
	if ch.ackPending > ch.ackedUpTo && !ch.closing {
		ch.send(&wire.BasicAck{DeliveryTag: ch.ackPending, Multiple: ch.ackPending-ch.ackedUpTo > 1})
		ch.ackedUpTo = ch.ackPending
	}
}

func (ch *channel) confirmSelect(m *wire.ConfirmSelect) error {
	if ch.tx != nil {
		return channelErr(wire.PreconditionFailed, m, "cannot switch from tx to confirm mode")
	}
	ch.confirm = true
	ch.replyUnlessNowait(m.Nowait, &wire.ConfirmSelectOk{})
	return nil
}

func (ch *channel) txSelect(m *wire.TxSelect) error {
	if ch.confirm {
		return channelErr(wire.PreconditionFailed, m, "cannot switch from confirm to tx mode")
	}
	if ch.tx == nil {
		ch.tx = &txState{}
	}
	ch.send(&wire.TxSelectOk{})
	return nil
}

func (ch *channel) txCommit(m *wire.TxCommit) error {
	if ch.tx == nil {
		return channelErr(wire.PreconditionFailed, m, "channel is not transactional")
	}
	tx := ch.tx
	ch.tx = nil
	defer func() {
		if ch.tx == nil && !ch.closing {
			ch.tx = &txState{}
		}
	}()
	for _, a := range tx.acks {
		ch.settlePicked(a.picked, a.mode)
	}
	ch.flushAcks() // commit-ok says the acks are done
	ch.committing, ch.txWaits = true, ch.txWaits[:0]
	for _, p := range tx.pubs {
		if err := ch.publish(p); err != nil {
			ch.committing = false
			return err
		}
	}
	ch.committing = false
	// commit-ok promises the persistent messages are on disk: wait (the reader blocks, as a
	// transaction's commit is synchronous for its client anyway).
	if len(ch.txWaits) > 0 {
		ch.c.flushOut() // what is queued for the client need not wait for the disk
	}
	for _, w := range ch.txWaits {
		if err := w.Wait(ch.confirms.ctx); err != nil {
			return channelErr(wire.InternalError, m, "cannot make the transaction durable: %v", err)
		}
	}
	ch.send(&wire.TxCommitOk{})
	return nil
}

func (ch *channel) txRollback(m *wire.TxRollback) error {
	if ch.tx == nil {
		return channelErr(wire.PreconditionFailed, m, "channel is not transactional")
	}
	ch.mu.Lock()
	ch.unpickLocked(ch.tx.acks)
	ch.mu.Unlock()
	ch.tx = &txState{}
	ch.send(&wire.TxRollbackOk{})
	return nil
}
