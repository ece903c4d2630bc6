package amqp

// Authorisation as RabbitMQ's: access to the vhost at connection.open, then configure, write
// or read permission on the resources each method touches (RabbitMQ's table):
//
//	exchange.declare (not passive), exchange.delete  configure on the exchange
//	exchange.bind, exchange.unbind                   write on the destination, read on the source
//	queue.declare (not passive), queue.delete        configure on the queue
//	queue.bind, queue.unbind                         write on the queue, read on the exchange
//	queue.purge, basic.get, basic.consume            read on the queue
//	basic.publish                                    write on the exchange
//
// The default exchange is checked as "amq.default". A refusal is a channel error 403
// ACCESS_REFUSED in RabbitMQ's words.

import (
	"github.com/yardmq/yard/internal/amqp/wire"
	"github.com/yardmq/yard/internal/auth"
	"github.com/yardmq/yard/internal/vhost"
)

// Permissions decides who may do what (internal/auth's Store); nil in Config allows all.
type Permissions interface {
	CanAccessVhost(user, vhost string) bool
	Check(user, vhost string, a auth.Access, name string) bool
}

// checkAccess refuses the method unless the user has access a to the named resource.
func (ch *channel) checkAccess(m wire.Method, a auth.Access, kind, name string) *amqpError {
	p := ch.c.srv.cfg.Permissions
	if p == nil || p.Check(ch.c.user, ch.vhostName(), a, name) {
		return nil
	}
	return channelErr(wire.AccessRefused, m, "access to %s '%s' in vhost '%s' refused for user '%s'", kind, name, ch.vhostName(), ch.c.user)
}

// queueArg resolves a method's queue name as the handler will ("" is the last declared).
func (ch *channel) queueArg(name string) string {
	if name = vhost.StripName(name); name == "" {
		return ch.lastQueue
	}
	return name
}

// permit checks a method's permissions before it is handled.
func (ch *channel) permit(m wire.Method) *amqpError {
	if ch.c.srv.cfg.Permissions == nil {
		return nil
	}
	first := func(es ...func() *amqpError) *amqpError {
		for _, e := range es {
			if err := e(); err != nil {
				return err
			}
		}
		return nil
	}
	chk := func(a auth.Access, kind, name string) func() *amqpError {
		return func() *amqpError { return ch.checkAccess(m, a, kind, name) }
	}
	switch m := m.(type) {
	case *wire.ExchangeDeclare:
		if !m.Passive {
			return ch.checkAccess(m, auth.Configure, "exchange", m.Exchange)
		}
	case *wire.ExchangeDelete:
		return ch.checkAccess(m, auth.Configure, "exchange", m.Exchange)
	case *wire.ExchangeBind:
		return first(chk(auth.Write, "exchange", m.Destination), chk(auth.Read, "exchange", m.Source))
	case *wire.ExchangeUnbind:
		return first(chk(auth.Write, "exchange", m.Destination), chk(auth.Read, "exchange", m.Source))
	case *wire.QueueDeclare:
		// A server-named queue is checked once named (queueDeclare).
		if name := vhost.StripName(m.Queue); !m.Passive && name != "" {
			return ch.checkAccess(m, auth.Configure, "queue", name)
		}
	case *wire.QueueDelete:
		if q := ch.queueArg(m.Queue); q != "" {
			return ch.checkAccess(m, auth.Configure, "queue", q)
		}
	case *wire.QueueBind:
		if q := ch.queueArg(m.Queue); q != "" {
			return first(chk(auth.Write, "queue", q), chk(auth.Read, "exchange", m.Exchange))
		}
	case *wire.QueueUnbind:
		if q := ch.queueArg(m.Queue); q != "" {
			return first(chk(auth.Write, "queue", q), chk(auth.Read, "exchange", m.Exchange))
		}
	case *wire.QueuePurge:
		if q := ch.queueArg(m.Queue); q != "" {
			return ch.checkAccess(m, auth.Read, "queue", q)
		}
	case *wire.BasicGet:
		if q := ch.queueArg(m.Queue); q != "" {
			return ch.checkAccess(m, auth.Read, "queue", q)
		}
	case *wire.BasicConsume:
		if q := ch.queueArg(m.Queue); q != "" {
			return ch.checkAccess(m, auth.Read, "queue", q)
		}
	case *wire.BasicPublish:
		return ch.checkAccess(m, auth.Write, "exchange", m.Exchange)
	}
	return nil
}
