package vhost

// Exchanges and bindings: declare, delete, bind and unbind (queue and exchange-to-exchange
// bindings) over the vhost's route.Topology, saving the durable ones; and routing a publish.

import (
	"errors"
	"strings"

	"github.com/yardmq/yard/internal/route"
)

func (v *VHost) noExchange(name string) error {
	return refuse(ErrNotFound, "no exchange '%s' in vhost '%s'", name, v.name)
}

var errDefaultExchange = &Error{Kind: ErrAccessRefused, Detail: "operation not permitted on the default exchange"}

// reserved refuses a name in the amq. namespace, kept for the broker's own.
func reserved(kind, name string) error {
	if strings.HasPrefix(name, "amq.") {
		return refuse(ErrAccessRefused, "%s name '%s' contains reserved prefix 'amq.*'", kind, name)
	}
	return nil
}

// ReservedQueueName refuses a queue name a client may not choose.
func ReservedQueueName(name string) error { return reserved("queue", name) }

// LookupExchange finds an exchange: ErrAccessRefused for the default exchange, which cannot
// be named in exchange operations, ErrNotFound if there is none.
func (v *VHost) LookupExchange(name string) (route.Exchange, error) {
	if name == "" {
		return route.Exchange{}, errDefaultExchange
	}
	e, ok := v.topo.Lookup(name)
	if !ok {
		return route.Exchange{}, v.noExchange(name)
	}
	return e, nil
}

// DeclareExchange creates the exchange, or checks that the one of that name is equivalent.
func (v *VHost) DeclareExchange(want route.Exchange) error {
	if want.Name == "" {
		return errDefaultExchange
	}
	if err := reserved("exchange", want.Name); err != nil {
		return err
	}
	if !route.ValidType(want.Type) {
		return refuse(ErrInvalid, "unknown exchange type '%s'", want.Type)
	}
	got, created, err := v.topo.Declare(want)
	if err != nil {
		return refuse(ErrInvalid, "unknown exchange type '%s'", want.Type)
	}
	if !created {
		return v.exchangeEquivalent(got, want)
	}
	return v.hosts.persist(want.Durable)
}

func (v *VHost) exchangeEquivalent(got, want route.Exchange) error {
	diff := func(arg string, received, current any) error {
		return refuse(ErrPrecondition, "inequivalent arg '%s' for exchange '%s' in vhost '%s': received '%v' but current is '%v'",
			arg, want.Name, v.name, received, current)
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

// DeleteExchange deletes the exchange and its bindings, unless ifUnused and it is the source
// of a binding. Deleting an exchange that does not exist does nothing, as in RabbitMQ.
func (v *VHost) DeleteExchange(name string, ifUnused bool) error {
	if name == "" {
		return errDefaultExchange
	}
	if err := reserved("exchange", name); err != nil {
		return err
	}
	old, _ := v.topo.Lookup(name)
	err := v.topo.Delete(name, ifUnused)
	switch {
	case err == nil:
		return v.hosts.persist(old.Durable)
	case errors.Is(err, route.ErrInUse):
		return refuse(ErrPrecondition, "exchange '%s' in vhost '%s' in use", name, v.name)
	case errors.Is(err, route.ErrNotFound):
		return nil
	}
	return err
}

// Route appends to dst the names of the queues a message published to exchange ("" is the
// default exchange) with this routing key and headers goes to. A client may not publish to an
// internal exchange.
func (v *VHost) Route(exchange, key string, headers route.HeaderSource, dst []string) ([]string, error) {
	if exchange != "" {
		ex, ok := v.topo.Lookup(exchange)
		if !ok {
			return nil, v.noExchange(exchange)
		}
		if ex.Internal {
			return nil, refuse(ErrAccessRefused, "cannot publish to internal exchange '%s' in vhost '%s'", exchange, v.name)
		}
	}
	names, err := v.topo.Route(exchange, key, headers, dst)
	if err != nil {
		return nil, v.noExchange(exchange)
	}
	return names, nil
}

// Bind adds a binding to a queue (which owner must be allowed to use) or to an exchange.
func (v *VHost) Bind(b route.Binding, owner any) error {
	if err := v.bindable(b, owner); err != nil {
		return err
	}
	if err := v.topo.Bind(b); err != nil {
		return v.noExchange(b.Source)
	}
	return v.hosts.persist(true)
}

// Unbind removes a binding; removing one that does not exist is no error.
func (v *VHost) Unbind(b route.Binding, owner any) error {
	if err := v.bindable(b, owner); err != nil {
		return err
	}
	if err := v.topo.Unbind(b); err != nil {
		return v.noExchange(b.Source)
	}
	return v.hosts.persist(true)
}

// bindable checks both ends of a binding, in RabbitMQ's order.
func (v *VHost) bindable(b route.Binding, owner any) error {
	if !b.Dest.Exchange {
		if _, err := v.LookupQueue(b.Dest.Name, owner); err != nil {
			return err
		}
		_, err := v.LookupExchange(b.Source)
		return err
	}
	if b.Dest.Name == "" || b.Source == "" {
		return errDefaultExchange
	}
	for _, name := range []string{b.Dest.Name, b.Source} {
		if _, err := v.LookupExchange(name); err != nil {
			return err
		}
	}
	return nil
}
