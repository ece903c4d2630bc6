package amqp

// The exchange class: declare, delete, bind, unbind (exchange-to-exchange bindings).

import (
	"errors"
	"strings"

	"github.com/yardmq/yard/internal/amqp/wire"
	"github.com/yardmq/yard/internal/route"
)

func (ch *channel) vhostName() string { return ch.c.vh.name }

func (ch *channel) noExchange(m wire.Method, name string) *amqpError {
	return channelErr(wire.NotFound, m, "no exchange '%s' in vhost '%s'", name, ch.vhostName())
}

func (ch *channel) exchangeDeclare(m *wire.ExchangeDeclare) error {
	topo := ch.c.vh.topo
	if m.Exchange == "" {
		return channelErr(wire.AccessRefused, m, "operation not permitted on the default exchange")
	}
	if m.Passive {
		if _, ok := topo.Lookup(m.Exchange); !ok {
			return ch.noExchange(m, m.Exchange)
		}
		ch.replyUnlessNowait(m.Nowait, &wire.ExchangeDeclareOk{})
		return nil
	}
	if strings.HasPrefix(m.Exchange, "amq.") {
		return channelErr(wire.AccessRefused, m, "exchange name '%s' contains reserved prefix 'amq.*'", m.Exchange)
	}
	if !route.ValidType(m.Type) {
		return connErr(wire.CommandInvalid, m, "unknown exchange type '%s'", m.Type)
	}
	want := route.Exchange{Name: m.Exchange, Type: m.Type, Durable: m.Durable, AutoDelete: m.AutoDelete, Internal: m.Internal, Args: m.Arguments}
	got, created, err := topo.Declare(want)
	if err != nil {
		return connErr(wire.CommandInvalid, m, "unknown exchange type '%s'", m.Type)
	}
	if !created {
		if e := ch.exchangeEquivalent(m, got, want); e != nil {
			return e
		}
	} else if e := ch.persist(m, m.Durable); e != nil {
		return e
	}
	ch.replyUnlessNowait(m.Nowait, &wire.ExchangeDeclareOk{})
	return nil
}

func (ch *channel) exchangeEquivalent(m wire.Method, got, want route.Exchange) *amqpError {
	diff := func(arg string, received, current any) *amqpError {
		return channelErr(wire.PreconditionFailed, m, "inequivalent arg '%s' for exchange '%s' in vhost '%s': received '%v' but current is '%v'",
			arg, want.Name, ch.vhostName(), received, current)
	}
	switch {
	case got.Type != want.Type:
		return diff("type", want.Type, got.Type)
	case got.Durable != want.Durable:
		return diff("durable", want.Durable, got.Durable)
	case got.AutoDelete != want.AutoDelete:
		return diff("auto_delete", want.AutoDelete, got.AutoDelete)
	case got.Internal != want.Internal:
		return diff("internal", want.Internal, got.Internal)
	case !route.ArgsEqual(got.Args, want.Args):
		return diff("arguments", want.Args, got.Args)
	}
	return nil
}

func (ch *channel) exchangeDelete(m *wire.ExchangeDelete) error {
	if m.Exchange == "" {
		return channelErr(wire.AccessRefused, m, "operation not permitted on the default exchange")
	}
	if strings.HasPrefix(m.Exchange, "amq.") {
		return channelErr(wire.AccessRefused, m, "exchange name '%s' contains reserved prefix 'amq.*'", m.Exchange)
	}
	old, _ := ch.c.vh.topo.Lookup(m.Exchange)
	err := ch.c.vh.topo.Delete(m.Exchange, m.IfUnused)
	if err == nil {
		if e := ch.persist(m, old.Durable); e != nil {
			return e
		}
	}
	switch {
	case errors.Is(err, route.ErrInUse):
		return channelErr(wire.PreconditionFailed, m, "exchange '%s' in vhost '%s' in use", m.Exchange, ch.vhostName())
	case err != nil && !errors.Is(err, route.ErrNotFound): // deleting a missing exchange is a no-op, as in RabbitMQ
		return err
	}
	ch.replyUnlessNowait(m.Nowait, &wire.ExchangeDeleteOk{})
	return nil
}

// checkBindable validates both ends of an exchange-to-exchange binding.
func (ch *channel) checkBindable(m wire.Method, dest, source string) *amqpError {
	if dest == "" || source == "" {
		return channelErr(wire.AccessRefused, m, "operation not permitted on the default exchange")
	}
	for _, name := range []string{dest, source} {
		if _, ok := ch.c.vh.topo.Lookup(name); !ok {
			return ch.noExchange(m, name)
		}
	}
	return nil
}

func (ch *channel) exchangeBind(m *wire.ExchangeBind) error {
	if e := ch.checkBindable(m, m.Destination, m.Source); e != nil {
		return e
	}
	b := route.Binding{Source: m.Source, Dest: route.Dest{Exchange: true, Name: m.Destination}, Key: m.RoutingKey, Args: m.Arguments}
	if err := ch.c.vh.topo.Bind(b); err != nil {
		return ch.noExchange(m, m.Source)
	}
	if e := ch.persist(m, true); e != nil {
		return e
	}
	ch.replyUnlessNowait(m.Nowait, &wire.ExchangeBindOk{})
	return nil
}

func (ch *channel) exchangeUnbind(m *wire.ExchangeUnbind) error {
	if e := ch.checkBindable(m, m.Destination, m.Source); e != nil {
		return e
	}
	b := route.Binding{Source: m.Source, Dest: route.Dest{Exchange: true, Name: m.Destination}, Key: m.RoutingKey, Args: m.Arguments}
	if err := ch.c.vh.topo.Unbind(b); err != nil {
		return ch.noExchange(m, m.Source)
	}
	if e := ch.persist(m, true); e != nil {
		return e
	}
	ch.replyUnlessNowait(m.Nowait, &wire.ExchangeUnbindOk{})
	return nil
}

func (ch *channel) replyUnlessNowait(nowait bool, m wire.Method) {
	if !nowait {
		ch.send(m)
	}
}
