package amqp

// The queue class: declare (server-named, passive, durable, exclusive, auto-delete), bind,
// unbind, purge, delete (if-unused, if-empty). The registry and its rules are the domain's
// (internal/vhost); the channel resolves "" to its last declared queue and names queues.

import (
	"crypto/rand"
	"encoding/base64"

	"github.com/yardmq/yard/internal/amqp/wire"
	"github.com/yardmq/yard/internal/auth"
	"github.com/yardmq/yard/internal/route"
	"github.com/yardmq/yard/internal/vhost"
)

// lookupQueue finds a queue this connection may use ("" is the channel's last declared
// queue): 404 if missing, 405 if another connection's exclusive queue.
func (ch *channel) lookupQueue(m wire.Method, name string) (*vhost.Queue, *amqpError) {
	name = vhost.StripName(name)
	if name == "" {
		if ch.lastQueue == "" {
			return nil, channelErr(wire.NotFound, m, "no previously declared queue")
		}
		name = ch.lastQueue
	}
	qs, err := ch.c.vh.LookupQueue(name, ch.c)
	if err != nil {
		return nil, refused(m, err)
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
	name := vhost.StripName(m.Queue)
	if m.Passive {
		qs, e := ch.lookupQueue(m, name)
		if e != nil {
			return e
		}
		qs.Touch() // a passive declare renews an x-expires lease, as in RabbitMQ
		ch.replyDeclareOk(m.Nowait, qs.Name(), qs)
		return nil
	}
	if name == "" {
		name = serverNamed("amq.gen-")
		if e := ch.checkAccess(m, auth.Configure, "queue", name); e != nil {
			return e
		}
	} else if err := vhost.ReservedQueueName(name); err != nil {
		return refused(m, err)
	}
	if e := ch.checkQueueLimit(m, name); e != nil {
		return e
	}
	qs, created, err := ch.c.vh.DeclareQueue(vhost.QueueDeclaration{Name: name, Durable: m.Durable, Exclusive: m.Exclusive,
		AutoDelete: m.AutoDelete, Args: m.Arguments, Owner: ch.c})
	if created && qs.Owner == ch.c {
		ch.c.exclusive[name] = qs
	}
	if err != nil {
		return refused(m, err)
	}
	ch.lastQueue = name
	ch.replyDeclareOk(m.Nowait, name, qs)
	return nil
}

func (ch *channel) replyDeclareOk(nowait bool, name string, qs *vhost.Queue) {
	ready, _, consumers := qs.Counts()
	ch.replyUnlessNowait(nowait, &wire.QueueDeclareOk{Queue: name, MessageCount: uint32(ready), ConsumerCount: uint32(consumers)})
}

// queueBinding resolves "" to the channel's last declared queue and, with it, an empty
// routing key to that queue's name, as RabbitMQ does.
func (ch *channel) queueBinding(m wire.Method, queueName, exchange, key string, args map[string]any) (route.Binding, *amqpError) {
	queueName = vhost.StripName(queueName)
	if queueName == "" {
		if ch.lastQueue == "" {
			return route.Binding{}, channelErr(wire.NotFound, m, "no previously declared queue")
		}
		queueName = ch.lastQueue
		if key == "" {
			key = queueName
		}
	}
	return route.Binding{Source: vhost.StripName(exchange), Dest: route.Dest{Name: queueName}, Key: key, Args: args}, nil
}

func (ch *channel) queueBind(m *wire.QueueBind) error {
	b, e := ch.queueBinding(m, m.Queue, m.Exchange, m.RoutingKey, m.Arguments)
	if e != nil {
		return e
	}
	if err := ch.c.vh.Bind(b, ch.c); err != nil {
		return refused(m, err)
	}
	ch.replyUnlessNowait(m.Nowait, &wire.QueueBindOk{})
	return nil
}

func (ch *channel) queueUnbind(m *wire.QueueUnbind) error {
	b, e := ch.queueBinding(m, m.Queue, m.Exchange, m.RoutingKey, m.Arguments)
	if e != nil {
		return e
	}
	if err := ch.c.vh.Unbind(b, ch.c); err != nil {
		return refused(m, err)
	}
	ch.send(&wire.QueueUnbindOk{})
	return nil
}

func (ch *channel) queuePurge(m *wire.QueuePurge) error {
	qs, e := ch.lookupQueue(m, m.Queue)
	if e != nil {
		return e
	}
	n, err := qs.PurgeErr()
	if err != nil {
		return channelErr(wire.InternalError, m, "cannot purge queue '%s' in vhost '%s': %v", qs.Name(), ch.vhostName(), err)
	}
	ch.replyUnlessNowait(m.Nowait, &wire.QueuePurgeOk{MessageCount: uint32(n)})
	return nil
}

func (ch *channel) queueDelete(m *wire.QueueDelete) error {
	m.Queue = vhost.StripName(m.Queue)
	if m.Queue == "" {
		m.Queue = ch.lastQueue
	}
	qs, n, err := ch.c.vh.DeleteQueueIf(m.Queue, ch.c, m.IfUnused, m.IfEmpty)
	if qs != nil && qs.Owner == ch.c {
		delete(ch.c.exclusive, m.Queue)
	}
	if err != nil {
		return refused(m, err)
	}
	ch.replyUnlessNowait(m.Nowait, &wire.QueueDeleteOk{MessageCount: uint32(n)})
	return nil
}
