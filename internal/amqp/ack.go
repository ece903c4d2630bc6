package amqp

// basic.ack, basic.nack, basic.reject, basic.recover and basic.get.

import (
	"slices"

	"github.com/yardmq/yard/internal/amqp/wire"
	"github.com/yardmq/yard/internal/queue"
)

type settleMode int

// ackBatchMax bounds how many deferred acks (deferAcks) a channel holds before applying them.
const ackBatchMax = 256

const (
	settleAck settleMode = iota
	settleRequeue
	settleDrop
)

func requeueOrDrop(requeue bool) settleMode {
	if requeue {
		return settleRequeue
	}
	return settleDrop
}

func (ch *channel) settle(m wire.Method, tag uint64, multiple bool, mode settleMode) error {
	if ch.tx != nil {
		// As RabbitMQ: the tag is checked now (an unknown one closes the channel at once,
		// not at tx.commit) and the deliveries leave the channel's books, so basic.recover
		// does not redeliver them; the queues hear of it at tx.commit, and tx.rollback puts
		// them back.
		ch.mu.Lock()
		picked, err := ch.pickLocked(m, tag, multiple)
		ch.mu.Unlock()
		if err == nil {
			ch.tx.acks = append(ch.tx.acks, txAck{picked: slices.Clone(picked), mode: mode})
		}
		clear(picked)
		ch.pickBuf = picked[:0]
		return err
	}
	return ch.settleNow(m, tag, multiple, mode)
}

// pickLocked takes one delivery or, with multiple, every delivery up to tag (all of them
// for tag 0) off the channel's books, in delivery order. As in RabbitMQ, the tag named must
// be outstanding, multiple or not: an unknown tag, including one already settled, is 406.
// The result is ch.pickBuf: the caller clears it when done. ch.mu is held.
func (ch *channel) pickLocked(m wire.Method, tag uint64, multiple bool) ([]*unackedMsg, error) {
	picked := ch.pickBuf[:0]
	if _, ok := ch.unacked[tag]; !ok && !(multiple && tag == 0) {
		return picked, channelErr(wire.PreconditionFailed, m, "unknown delivery tag %d", tag)
	}
	if multiple {
		i := 0
		for ; i < len(ch.tags) && (tag == 0 || ch.tags[i] <= tag); i++ {
			if u, ok := ch.unacked[ch.tags[i]]; ok {
				picked = append(picked, u)
				delete(ch.unacked, u.tag)
			}
		}
		ch.tags = ch.tags[i:]
	} else {
		u := ch.unacked[tag]
		picked = append(picked, u)
		delete(ch.unacked, tag)
	}
	return picked, nil
}

// settleNow acks, requeues or drops the deliveries pickLocked selects, in one hold of
// ch.mu (this is the path of every ack).
func (ch *channel) settleNow(m wire.Method, tag uint64, multiple bool, mode settleMode) error {
	ch.mu.Lock()
	picked, err := ch.pickLocked(m, tag, multiple)
	defer func() { clear(picked); ch.pickBuf = picked[:0] }()
	if err != nil {
		ch.mu.Unlock()
		return err
	}
	ch.forgetLocked(picked)
	global := ch.globalPrefetch > 0
	ch.mu.Unlock()
	ch.applyPicked(picked, mode, global)
	return nil
}

// settlePicked settles deliveries a transaction took off the books (tx.commit): their
// prefetch credit is released now, and their queues told.
func (ch *channel) settlePicked(picked []*unackedMsg, mode settleMode) {
	ch.mu.Lock()
	ch.forgetLocked(picked)
	global := ch.globalPrefetch > 0
	ch.mu.Unlock()
	ch.applyPicked(picked, mode, global)
}

// applyPicked tells the queues of settled deliveries (acks deferred, see deferAcks).
func (ch *channel) applyPicked(picked []*unackedMsg, mode settleMode, global bool) {
	if mode == settleAck {
		ch.deferAcks(picked)
		return
	}
	if global {
		ch.settleInTurn(picked, mode)
		return
	}
	applySettle(picked, mode)
}

// unpickLocked puts deliveries a transaction took off the books back (tx.rollback, or a
// channel released with a transaction open, whose deliveries are then requeued). ch.mu is
// held.
func (ch *channel) unpickLocked(acks []txAck) {
	n := 0
	for _, a := range acks {
		for _, u := range a.picked {
			ch.unacked[u.tag] = u
			ch.tags = append(ch.tags, u.tag)
			n++
		}
	}
	if n > 0 {
		slices.Sort(ch.tags)
		ch.tags = slices.Compact(ch.tags)
	}
}

// deferAcks holds acks, already taken off the channel's books, until the reader has drained
// its input (conn.flushAcks) or the channel does anything else: a consumer that acks every
// message sends a run of basic.ack frames per read, and applying them to their queues
// together takes each queue's lock once and lets the deliveries they make room for leave in
// one write instead of one per ack. Acks are not promises to anyone, so the delay (the rest
// of one read buffer) is harmless; ordering with every other method of the channel is kept
// by flushing before it (channel.handle).
func (ch *channel) deferAcks(picked []*unackedMsg) {
	if len(ch.ackBatch) == 0 {
		ch.c.ackDirty = append(ch.c.ackDirty, ch)
	}
	ch.ackBatch = append(ch.ackBatch, picked...)
	if len(ch.ackBatch) >= ackBatchMax {
		ch.flushAcks()
	}
}

// flushAcks applies the deferred acks to their queues.
func (ch *channel) flushAcks() {
	if len(ch.ackBatch) == 0 {
		return
	}
	ch.settleInTurn(ch.ackBatch, settleAck)
	clear(ch.ackBatch)
	ch.ackBatch = ch.ackBatch[:0]
}

// forgetLocked releases the prefetch credit of settled deliveries and compacts the tag list
// when settled tags dominate it.
func (ch *channel) forgetLocked(settled []*unackedMsg) {
	for _, u := range settled {
		if u.cons != nil {
			u.cons.inflight--
			ch.globalInflight--
			if u.cons.stream != nil {
				u.cons.stream.signal()
			}
		}
	}
	if len(ch.tags) > 64 && len(ch.tags) > 2*len(ch.unacked) {
		ch.tags = slices.DeleteFunc(ch.tags, func(t uint64) bool { _, ok := ch.unacked[t]; return !ok })
	}
}

// applySettle tells the queues, one call per queue, in delivery order.
func applySettle(settled []*unackedMsg, mode settleMode) {
	if len(settled) == 0 {
		return
	}
	// One queue, as nearly always: its ids from a stack buffer, no map.
	q := settled[0].q
	var buf [ackBatchMax]uint64
	ids := buf[:0]
	for _, u := range settled {
		if u.q != q {
			applyByQueue(settled, mode)
			return
		}
		ids = append(ids, u.id)
	}
	applyToQueue(q, ids, mode)
}

// applyByQueue is applySettle for deliveries from several queues.
func applyByQueue(settled []*unackedMsg, mode settleMode) {
	byQueue := map[*queue.Queue][]uint64{}
	var order []*queue.Queue
	for _, u := range settled {
		if _, ok := byQueue[u.q]; !ok {
			order = append(order, u.q)
		}
		byQueue[u.q] = append(byQueue[u.q], u.id)
	}
	for _, q := range order {
		applyToQueue(q, byQueue[q], mode)
	}
}

func applyToQueue(q *queue.Queue, ids []uint64, mode settleMode) {
	switch mode {
	case settleAck:
		q.Ack(ids...)
	case settleRequeue:
		q.Requeue(ids...)
	case settleDrop:
		q.Drop(ids...)
	}
}

func sortedUnacked(m map[uint64]*unackedMsg) []*unackedMsg {
	out := make([]*unackedMsg, 0, len(m))
	for _, u := range m {
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b *unackedMsg) int { return int(a.tag - b.tag) })
	return out
}

// basicRecover requeues every unacknowledged delivery of the channel; requeue=false (redeliver
// to the same consumer) is not implemented, as in RabbitMQ.
func (ch *channel) basicRecover(m wire.Method, requeue, reply bool) error {
	if !requeue {
		return channelErr(wire.NotImplemented, m, "requeue=false")
	}
	ch.mu.Lock()
	all := sortedUnacked(ch.unacked)
	ch.unacked, ch.tags = map[uint64]*unackedMsg{}, nil
	ch.forgetLocked(all)
	ch.mu.Unlock()
	if reply {
		ch.send(&wire.BasicRecoverOk{})
	}
	applySettle(all, settleRequeue)
	return nil
}

func (ch *channel) basicGet(m *wire.BasicGet) error {
	qs, e := ch.lookupQueue(m, m.Queue)
	if e != nil {
		return e
	}
	if qs.Stream != nil {
		return channelErr(wire.NotImplemented, m, "basic.get is not supported by stream queue '%s' in vhost '%s': consume with x-stream-offset", qs.Queue.Name(), ch.vhostName())
	}
	d, remaining, ok, err := qs.Queue.Get(m.NoAck)
	if err != nil && qs.Replicated {
		return channelErr(wire.InternalError, m, "cannot get from queue '%s' in vhost '%s': %v", qs.Queue.Name(), ch.vhostName(), err)
	}
	if err != nil || !ok {
		ch.send(&wire.BasicGetEmpty{})
		return nil
	}
	ch.mu.Lock()
	ch.nextTag++
	tag := ch.nextTag
	if !m.NoAck {
		ch.unacked[tag] = &unackedMsg{tag: tag, q: d.Queue, id: d.ID}
		ch.tags = append(ch.tags, tag)
	}
	ch.mu.Unlock()
	ok2 := &wire.BasicGetOk{DeliveryTag: tag, Redelivered: d.Redelivered, Exchange: d.Message.Exchange, RoutingKey: d.Message.RoutingKey, MessageCount: uint32(remaining)}
	content := d.Message
	if d.DeliveryCount > 0 {
		content = &queue.Message{Properties: withDeliveryCount(content.Properties, d.DeliveryCount), Body: content.Body}
	}
	ch.c.out.append(func(b []byte) []byte { return ch.appendContent(b, ok2, content) })
	return nil
}
