package amqp

// The exchange class: declare, delete, bind, unbind (exchange-to-exchange bindings), over the
// vhost's exchanges (internal/vhost).

import (
	"github.com/yardmq/yard/internal/amqp/wire"
	"github.com/yardmq/yard/internal/route"
	"github.com/yardmq/yard/internal/vhost"
)

func (ch *channel) vhostName() string { return ch.c.vh.Name() }

func (ch *channel) exchangeDeclare(m *wire.ExchangeDeclare) error {
	m.Exchange = vhost.StripName(m.Exchange)
	if m.Passive {
		if _, err := ch.c.vh.LookupExchange(m.Exchange); err != nil {
			return refused(m, err)
		}
		ch.replyUnlessNowait(m.Nowait, &wire.ExchangeDeclareOk{})
		return nil
	}
	want := route.Exchange{Name: m.Exchange, Type: m.Type, Durable: m.Durable, AutoDelete: m.AutoDelete, Internal: m.Internal, Args: m.Arguments}
	if err := ch.c.vh.DeclareExchange(want); err != nil {
		return refused(m, err)
	}
	ch.replyUnlessNowait(m.Nowait, &wire.ExchangeDeclareOk{})
	return nil
}

func (ch *channel) exchangeDelete(m *wire.ExchangeDelete) error {
	m.Exchange = vhost.StripName(m.Exchange)
	if err := ch.c.vh.DeleteExchange(m.Exchange, m.IfUnused); err != nil {
		return refused(m, err)
	}
	ch.replyUnlessNowait(m.Nowait, &wire.ExchangeDeleteOk{})
	return nil
}

func (ch *channel) exchangeBind(m *wire.ExchangeBind) error {
	b := route.Binding{Source: vhost.StripName(m.Source), Dest: route.Dest{Exchange: true, Name: vhost.StripName(m.Destination)}, Key: m.RoutingKey, Args: m.Arguments}
	if err := ch.c.vh.Bind(b, ch.c); err != nil {
		return refused(m, err)
	}
	ch.replyUnlessNowait(m.Nowait, &wire.ExchangeBindOk{})
	return nil
}

func (ch *channel) exchangeUnbind(m *wire.ExchangeUnbind) error {
	b := route.Binding{Source: vhost.StripName(m.Source), Dest: route.Dest{Exchange: true, Name: vhost.StripName(m.Destination)}, Key: m.RoutingKey, Args: m.Arguments}
	if err := ch.c.vh.Unbind(b, ch.c); err != nil {
		return refused(m, err)
	}
	ch.replyUnlessNowait(m.Nowait, &wire.ExchangeUnbindOk{})
	return nil
}

func (ch *channel) replyUnlessNowait(nowait bool, m wire.Method) {
	if !nowait {
		ch.send(m)
	}
}
