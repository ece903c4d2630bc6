package amqp

// basic.qos, basic.consume, basic.cancel, and deliveries to consumers (basic.deliver).

import (
	"slices"
	"strings"

	"github.com/yardmq/yard/internal/amqp/wire"
	"github.com/yardmq/yard/internal/queue"
	"github.com/yardmq/yard/internal/vhost"
)

// chConsumer is a consumer on a channel; it is the queue.Consumer the queue delivers to.
// prefetch, inflight and active are guarded by the channel's mu.
type chConsumer struct {
	ch       *channel
	tag      string
	qs       *vhost.Queue
	noAck    bool
	prefetch int
	// exclusive and args are basic.consume's, shown by the management API's consumers.
	exclusive bool
	args      map[string]any
	inflight  int
	active    bool          // false until consume-ok is queued, and again once cancelled
	stream    *streamCursor // stream queues: the reading goroutine's state
}

func (ch *channel) basicQos(m *wire.BasicQos) error {
	if m.PrefetchSize != 0 {
		return channelErr(wire.NotImplemented, m, "prefetch_size!=0 (%d)", m.PrefetchSize)
	}
	ch.mu.Lock()
	if m.Global {
		ch.globalPrefetch = int(m.PrefetchCount)
	} else {
		ch.prefetch = int(m.PrefetchCount)
	}
	ch.mu.Unlock()
	ch.send(&wire.BasicQosOk{})
	ch.kickConsumers()
	return nil
}

func (ch *channel) basicConsume(m *wire.BasicConsume) error {
	var qs *vhost.Queue
	var e *amqpError
	if m.Queue == directReplyTo {
		qs, e = ch.replyQueue(m)
	} else {
		qs, e = ch.lookupQueue(m, m.Queue)
	}
	if e != nil {
		return e
	}
	if err := ch.c.vh.CheckConsumeArgs(qs.Name(), m.Arguments); err != nil {
		return refused(m, err)
	}
	if qs.Stream != nil {
		return ch.consumeStream(m, qs)
	}
	tag := m.ConsumerTag
	if tag == "" {
		tag = serverNamed("amq.ctag-")
	}
	ch.mu.Lock()
	if _, dup := ch.consumers[tag]; dup {
		ch.mu.Unlock()
		return connErr(wire.NotAllowed, m, "attempt to reuse consumer tag '%s'", tag)
	}
	cons := &chConsumer{ch: ch, tag: tag, qs: qs, noAck: m.NoAck, prefetch: ch.prefetch, exclusive: m.Exclusive, args: m.Arguments}
	ch.consumers[tag] = cons
	ch.mu.Unlock()
	priority, _ := intArg(m.Arguments["x-priority"])
	err := qs.Queue.Consume(queue.ConsumerSpec{Tag: tag, NoAck: m.NoAck, Exclusive: m.Exclusive, Priority: priority, Consumer: cons, Prefetch: cons.prefetch})
	if err != nil {
		ch.mu.Lock()
		delete(ch.consumers, tag)
		ch.mu.Unlock()
		return channelErr(wire.AccessRefused, m, "queue '%s' in vhost '%s' in exclusive use", m.Queue, ch.vhostName())
	}
	ch.c.trackConsumer(qs.Queue, 1)
	ch.replyUnlessNowait(m.Nowait, &wire.BasicConsumeOk{ConsumerTag: tag})
	ch.mu.Lock()
	cons.active = true
	ch.mu.Unlock()
	qs.Queue.Kick()
	return nil
}

func intArg(v any) (int, bool) { return vhost.IntArg(v) }

func (ch *channel) basicCancel(m *wire.BasicCancel) error {
	ch.mu.Lock()
	cons := ch.consumers[m.ConsumerTag]
	delete(ch.consumers, m.ConsumerTag)
	ch.mu.Unlock()
	if cons != nil {
		ch.dropConsumer(cons)
		ch.forgetReplyQueue(cons.qs)
	}
	ch.replyUnlessNowait(m.Nowait, &wire.BasicCancelOk{ConsumerTag: m.ConsumerTag})
	return nil
}

// dropConsumer detaches a consumer (already removed from ch.consumers) from its queue and
// deletes an auto-delete queue that lost its last consumer.
func (ch *channel) dropConsumer(cons *chConsumer) {
	ch.mu.Lock()
	cons.active = false
	ch.mu.Unlock()
	if cons.stream != nil {
		cons.stream.close()
	}
	if cons.qs.Queue.Cancel(cons.tag, cons) {
		ch.c.vh.DeleteQueue(cons.qs)
	}
	ch.c.trackConsumer(cons.qs.Queue, -1)
}

// kickConsumers retries dispatch on every queue this channel consumes from, after the
// channel gained room (qos raised, messages settled under a global limit). Under a
// channel-wide prefetch (basic.qos global) the queues take turns, one delivery each per
// round, starting after the one served last, so that none starves the others.
func (ch *channel) kickConsumers() {
	ch.mu.Lock()
	qs := make([]*queue.Queue, 0, len(ch.consumers))
	for _, cons := range ch.consumers {
		if !slices.Contains(qs, cons.qs.Queue) {
			qs = append(qs, cons.qs.Queue)
		}
	}
	global := ch.globalPrefetch > 0
	ch.mu.Unlock()
	if global && len(qs) > 1 {
		slices.SortFunc(qs, func(a, b *queue.Queue) int { return strings.Compare(a.Name(), b.Name()) })
		ch.kickInTurn(qs)
	}
	ch.mu.Lock()
	ch.turnOn, ch.turn = false, nil
	ch.mu.Unlock()
	for _, q := range qs {
		q.Kick() // and whatever was refused while the turns ran
	}
}

// kickInTurn gives the channel's free credit to its queues one delivery at a time, in turn.
func (ch *channel) kickInTurn(qs []*queue.Queue) {
	start := ch.turnNext
	for progressed := true; progressed; {
		progressed = false
		for i := range qs {
			q := qs[(start+i)%len(qs)]
			ch.mu.Lock()
			full := ch.globalInflight >= ch.globalPrefetch
			ch.turnOn, ch.turn, ch.turnUsed = true, q, false
			ch.mu.Unlock()
			if full {
				return
			}
			q.Kick()
			ch.mu.Lock()
			used := ch.turnUsed
			ch.mu.Unlock()
			if used {
				progressed = true
				ch.turnNext = (start + i + 1) % len(qs)
			}
		}
		start = ch.turnNext
	}
}

// settleInTurn tells the queues of settled deliveries; under a channel-wide prefetch the
// credit this frees is handed out by kickConsumers, in turn, instead of going to whichever
// queue hears of its settlement first.
func (ch *channel) settleInTurn(settled []*unackedMsg, mode settleMode) {
	ch.mu.Lock()
	global := ch.globalPrefetch > 0
	turns := global && ch.severalQueuesLocked()
	if turns {
		ch.turnOn, ch.turn = true, nil // no queue's turn: settling delivers nothing
	}
	ch.mu.Unlock()
	applySettle(settled, mode)
	if global {
		ch.kickConsumers()
	}
}

// severalQueuesLocked reports whether the channel consumes from more than one queue.
func (ch *channel) severalQueuesLocked() bool {
	var first *queue.Queue
	for _, cons := range ch.consumers {
		switch {
		case first == nil:
			first = cons.qs.Queue
		case cons.qs.Queue != first:
			return true
		}
	}
	return false
}

// TryDeliver implements queue.Consumer. It runs under the queue's lock.
func (cons *chConsumer) TryDeliver(d queue.Delivery) bool {
	ch := cons.ch
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.released || !cons.active {
		return false
	}
	if !cons.noAck {
		if cons.prefetch > 0 && cons.inflight >= cons.prefetch {
			return false
		}
		if ch.globalPrefetch > 0 && ch.globalInflight >= ch.globalPrefetch {
			return false
		}
		if ch.turnOn && (d.Queue != ch.turn || ch.turnUsed) {
			return false // another queue's turn (kickConsumers)
		}
	}
	// The delivery is encoded straight into the connection's output, under its lock, with
	// the channel's scratch method: no allocation per delivery but the unacked record's.
	o := &ch.c.out
	buf, ok := o.lockForAppend()
	if !ok {
		return false
	}
	ch.nextTag++
	tag := ch.nextTag
	if !cons.noAck {
		ch.unacked[tag] = ch.newUnacked(unackedMsg{tag: tag, q: d.Queue, id: d.ID, cons: cons})
		ch.tags = append(ch.tags, tag)
		cons.inflight++
		ch.globalInflight++
		ch.turnUsed = ch.turnOn
	}
	ch.deliverScratch = wire.BasicDeliver{ConsumerTag: cons.tag, DeliveryTag: tag, Redelivered: d.Redelivered, Exchange: d.Message.Exchange, RoutingKey: d.Message.RoutingKey}
	content := d.Message
	if d.DeliveryCount > 0 {
		content = &queue.Message{Properties: withDeliveryCount(content.Properties, d.DeliveryCount), Body: content.Body}
	}
	o.buf = ch.appendContent(buf, &ch.deliverScratch, content)
	o.unlockAfterAppend()
	return true
}

// newUnacked returns a heap copy of u, carved from a slab: one allocation per 64 deliveries
// instead of one each. A slab lives while any of its records is unacknowledged. Under ch.mu.
func (ch *channel) newUnacked(u unackedMsg) *unackedMsg {
	if len(ch.unackSlab) == 0 {
		ch.unackSlab = make([]unackedMsg, 64)
	}
	p := &ch.unackSlab[0]
	ch.unackSlab = ch.unackSlab[1:]
	*p = u
	return p
}

// appendContent encodes a method with content: method, header and body frames.
func (ch *channel) appendContent(b []byte, m wire.Method, msg *queue.Message) []byte {
	b = wire.AppendMethodFrame(b, ch.id, m)
	b = wire.AppendHeaderFrame(b, ch.id, wire.ClassBasic, uint64(len(msg.Body)), msg.Properties)
	return wire.AppendBodyFrames(b, ch.id, msg.Body, ch.c.frameMax)
}

// Cancelled implements queue.Consumer: the queue was deleted. Clients that advertise
// consumer_cancel_notify get basic.cancel.
func (cons *chConsumer) Cancelled(q *queue.Queue, tag string) {
	ch := cons.ch
	ch.mu.Lock()
	wasActive := ch.consumers[tag] == cons
	if wasActive {
		delete(ch.consumers, tag)
	}
	cons.active = false
	released := ch.released
	ch.mu.Unlock()
	if cons.stream != nil {
		cons.stream.close()
	}
	ch.c.trackConsumer(q, -1)
	if wasActive && !released && ch.c.capCancelNotify {
		ch.send(&wire.BasicCancel{ConsumerTag: tag, Nowait: true})
	}
}
