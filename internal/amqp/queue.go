package amqp

// The queue class: declare (server-named, passive, durable, exclusive, auto-delete), bind,
// unbind, purge, delete (if-unused, if-empty).

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"

	"github.com/yardmq/yard/internal/amqp/wire"
	"github.com/yardmq/yard/internal/queue"
	"github.com/yardmq/yard/internal/route"
	"github.com/yardmq/yard/internal/stream"
)

func (ch *channel) noQueue(m wire.Method, name string) *amqpError {
	return channelErr(wire.NotFound, m, "no queue '%s' in vhost '%s'", name, ch.vhostName())
}

// lookupQueue finds a queue this connection may use: 404 if missing, 405 if another
// connection's exclusive queue.
func (ch *channel) lookupQueue(m wire.Method, name string) (*queueState, *amqpError) {
	if name == "" {
		if ch.lastQueue == "" {
			return nil, channelErr(wire.NotFound, m, "no previously declared queue")
		}
		name = ch.lastQueue
	}
	qs := ch.c.vh.queue(name)
	if qs == nil {
		return nil, ch.noQueue(m, name)
	}
	if qs.owner != nil && qs.owner != ch.c {
		return nil, channelErr(wire.ResourceLocked, m, "cannot obtain exclusive access to locked queue '%s' in vhost '%s'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.", name, ch.vhostName())
	}
	return qs, nil
}

// serverNamed returns a fresh "amq.gen-" name, as RabbitMQ's server-named queues.
func serverNamed(prefix string) string {
	var b [16]byte
	rand.Read(b[:])
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

func (ch *channel) queueDeclare(m *wire.QueueDeclare) error {
	name := m.Queue
	if m.Passive {
		if name == "" {
			name = ch.lastQueue
		}
		qs, e := ch.lookupQueue(m, name)
		if e != nil {
			return e
		}
		ch.replyDeclareOk(m.Nowait, name, qs.q)
		return nil
	}
	if name == "" {
		name = serverNamed("amq.gen-")
	} else if strings.HasPrefix(name, "amq.") {
		return channelErr(wire.AccessRefused, m, "queue name '%s' contains reserved prefix 'amq.*'", name)
	}
	vh := ch.c.vh
	vh.mu.Lock()
	qs := vh.queues[name]
	if qs == nil && isStreamArgs(m.Arguments) {
		vh.mu.Unlock()
		return ch.declareStream(m, name)
	}
	if qs == nil {
		if e := ch.checkQueueType(m, name); e != nil {
			vh.mu.Unlock()
			return e
		}
		if err := queue.ValidateArgs(m.Arguments); err != nil {
			vh.mu.Unlock()
			return channelErr(wire.PreconditionFailed, m, "%v for queue '%s' in vhost '%s'", err, name, vh.name)
		}
		var created *queueState
		opts := vh.queueOptions(name, queue.Options{Durable: m.Durable, Exclusive: m.Exclusive, AutoDelete: m.AutoDelete, Args: m.Arguments}, &created)
		if open := ch.c.srv.cfg.QueueStore; open != nil {
			store, err := open(vh.name, name, opts)
			if err != nil {
				vh.mu.Unlock()
				return channelErr(wire.InternalError, m, "cannot open the store of queue '%s' in vhost '%s': %v", name, vh.name, err)
			}
			opts.Store = store
		}
		qs = &queueState{q: queue.New(name, opts), quorum: queueType(opts.Args) == queueTypeQuorum}
		created = qs
		if m.Exclusive {
			qs.owner = ch.c
			ch.c.exclusive[name] = qs
		}
		vh.queues[name] = qs
		vh.mu.Unlock()
		if e := ch.persist(m, m.Durable && !m.Exclusive); e != nil {
			return e
		}
		ch.lastQueue = name
		ch.replyDeclareOk(m.Nowait, name, qs.q)
		return nil
	}
	vh.mu.Unlock()
	if _, e := ch.lookupQueue(m, name); e != nil {
		return e
	}
	if e := ch.queueEquivalent(m, name, qs.q.Options()); e != nil {
		return e
	}
	qs.q.Touch()
	ch.lastQueue = name
	ch.replyDeclareOk(m.Nowait, name, qs.q)
	return nil
}

func (ch *channel) queueEquivalent(m *wire.QueueDeclare, name string, got queue.Options) *amqpError {
	diff := func(arg string, received, current any) *amqpError {
		return channelErr(wire.PreconditionFailed, m, "inequivalent arg '%s' for queue '%s' in vhost '%s': received '%v' but current is '%v'",
			arg, name, ch.vhostName(), received, current)
	}
	switch {
	case got.Durable != m.Durable:
		return diff("durable", m.Durable, got.Durable)
	case got.Exclusive != m.Exclusive:
		return channelErr(wire.ResourceLocked, m, "cannot obtain exclusive access to locked queue '%s' in vhost '%s'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.", name, ch.vhostName())
	case got.AutoDelete != m.AutoDelete:
		return diff("auto_delete", m.AutoDelete, got.AutoDelete)
	}
	if declared, current := queueType(m.Arguments), queueType(got.Args); declared != current {
		received, cur := any(declared), any(current)
		if _, ok := m.Arguments["x-queue-type"]; !ok {
			received = "none"
		}
		if _, ok := got.Args["x-queue-type"]; !ok {
			cur = "none"
		}
		return diff("x-queue-type", received, cur)
	}
	for k, v := range m.Arguments {
		if k == "x-queue-type" {
			continue // the same type, spelt out or not
		}
		if cur, ok := got.Args[k]; !ok || !route.ArgsEqual(map[string]any{k: v}, map[string]any{k: cur}) {
			return diff(k, v, cur)
		}
	}
	for k, cur := range got.Args {
		if _, ok := m.Arguments[k]; !ok && k != "x-queue-type" && !defaultedArg(k, cur, got.Args) {
			return diff(k, "none", cur)
		}
	}
	return nil
}

func (ch *channel) replyDeclareOk(nowait bool, name string, q *queue.Queue) {
	ready, _, consumers := q.Counts()
	ch.replyUnlessNowait(nowait, &wire.QueueDeclareOk{Queue: name, MessageCount: uint32(ready), ConsumerCount: uint32(consumers)})
}

// bindTargets checks both ends of a queue binding and resolves "" to the last declared queue.
func (ch *channel) bindTargets(m wire.Method, queueName *string, exchange string) *amqpError {
	qs, e := ch.lookupQueue(m, *queueName)
	if e != nil {
		return e
	}
	*queueName = qs.q.Name()
	if exchange == "" {
		return channelErr(wire.AccessRefused, m, "operation not permitted on the default exchange")
	}
	if _, ok := ch.c.vh.topo.Lookup(exchange); !ok {
		return ch.noExchange(m, exchange)
	}
	return nil
}

func (ch *channel) queueBind(m *wire.QueueBind) error {
	if e := ch.bindTargets(m, &m.Queue, m.Exchange); e != nil {
		return e
	}
	b := route.Binding{Source: m.Exchange, Dest: route.Dest{Name: m.Queue}, Key: m.RoutingKey, Args: m.Arguments}
	if err := ch.c.vh.topo.Bind(b); err != nil {
		return ch.noExchange(m, m.Exchange)
	}
	if e := ch.persist(m, true); e != nil {
		return e
	}
	ch.replyUnlessNowait(m.Nowait, &wire.QueueBindOk{})
	return nil
}

func (ch *channel) queueUnbind(m *wire.QueueUnbind) error {
	if e := ch.bindTargets(m, &m.Queue, m.Exchange); e != nil {
		return e
	}
	b := route.Binding{Source: m.Exchange, Dest: route.Dest{Name: m.Queue}, Key: m.RoutingKey, Args: m.Arguments}
	if err := ch.c.vh.topo.Unbind(b); err != nil {
		return ch.noExchange(m, m.Exchange)
	}
	if e := ch.persist(m, true); e != nil {
		return e
	}
	ch.send(&wire.QueueUnbindOk{})
	return nil
}

func (ch *channel) queuePurge(m *wire.QueuePurge) error {
	qs, e := ch.lookupQueue(m, m.Queue)
	if e != nil {
		return e
	}
	n := qs.q.Purge()
	ch.replyUnlessNowait(m.Nowait, &wire.QueuePurgeOk{MessageCount: uint32(n)})
	return nil
}

func (ch *channel) queueDelete(m *wire.QueueDelete) error {
	if m.Queue == "" {
		m.Queue = ch.lastQueue
	}
	if ch.c.vh.queue(m.Queue) == nil { // deleting a missing queue is a no-op, as in RabbitMQ
		ch.replyUnlessNowait(m.Nowait, &wire.QueueDeleteOk{})
		return nil
	}
	qs, e := ch.lookupQueue(m, m.Queue)
	if e != nil {
		return e
	}
	n, err := ch.c.vh.deleteQueueIf(m.Queue, qs, m.IfUnused, m.IfEmpty)
	switch {
	case errors.Is(err, queue.ErrInUse):
		return channelErr(wire.PreconditionFailed, m, "queue '%s' in vhost '%s' in use", m.Queue, ch.vhostName())
	case errors.Is(err, queue.ErrNotEmpty):
		return channelErr(wire.PreconditionFailed, m, "queue '%s' in vhost '%s' not empty", m.Queue, ch.vhostName())
	}
	if qs.owner == ch.c {
		delete(ch.c.exclusive, m.Queue)
	}
	if o := qs.q.Options(); o.Durable && !o.Exclusive {
		if e := ch.persist(m, true); e != nil {
			return e
		}
	}
	ch.replyUnlessNowait(m.Nowait, &wire.QueueDeleteOk{MessageCount: uint32(n)})
	return nil
}

// deleteQueue removes a queue unconditionally (exclusive owner gone, auto-delete).
func (v *vhost) deleteQueue(name string, qs *queueState) {
	v.deleteQueueIf(name, qs, false, false)
	if o := qs.q.Options(); o.Durable && !o.Exclusive && v.srv != nil {
		if err := v.srv.saveTopology(); err != nil {
			v.log.Error("cannot save durable topology", "err", err)
		}
	}
}

// deleteQueueIf deletes the queue and its bindings; its consumers are told by the queue.
func (v *vhost) deleteQueueIf(name string, qs *queueState, ifUnused, ifEmpty bool) (int, error) {
	n, err := qs.q.Delete(ifUnused, ifEmpty)
	if errors.Is(err, queue.ErrInUse) || errors.Is(err, queue.ErrNotEmpty) {
		return 0, err
	}
	if err != nil && !errors.Is(err, queue.ErrDeleted) {
		v.log.Warn("cannot delete queue storage", "queue", name, "err", err)
	}
	v.mu.Lock()
	if v.queues[name] == qs {
		delete(v.queues, name)
	}
	v.mu.Unlock()
	if qs.stream != nil && v.srv != nil && v.srv.cfg.Streams != nil {
		if err := v.srv.cfg.Streams.DeleteTopic(name); err != nil && !errors.Is(err, stream.ErrUnknownTopic) {
			v.log.Warn("cannot delete the topic of stream queue", "queue", name, "err", err)
		}
	}
	v.topo.RemoveQueue(name)
	return n, nil
}

// declareStream creates a stream queue (there is none of that name yet).
func (ch *channel) declareStream(m *wire.QueueDeclare, name string) error {
	if e := ch.declareStreamChecks(m); e != nil {
		return e
	}
	part, err := ch.c.srv.attachStream(name, m.Arguments)
	if err != nil {
		return channelErr(wire.PreconditionFailed, m, "cannot declare stream queue '%s' in vhost '%s': %v", name, ch.vhostName(), err)
	}
	vh := ch.c.vh
	vh.mu.Lock()
	qs := vh.queues[name]
	if qs == nil {
		qs = &queueState{q: queue.New(name, queue.Options{Durable: true, Args: m.Arguments}), stream: part}
		vh.queues[name] = qs
	}
	vh.mu.Unlock()
	if e := ch.persist(m, true); e != nil {
		return e
	}
	ch.lastQueue = name
	ch.replyDeclareOk(m.Nowait, name, qs.q)
	return nil
}
