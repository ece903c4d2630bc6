package vhost

// Exchanges and bindings: declare, delete, bind and unbind (queue and exchange-to-exchange
// bindings) over the vhost's route.Topology, saving the durable ones; and routing a publish,
// with what RabbitMQ checks of a message first (its expiration, its CC and BCC headers).

import (
	"errors"
	"math/big"
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
	if ae, ok := want.Args[route.AlternateExchange]; ok && !isString(ae) {
		if _, exists := v.topo.Lookup(want.Name); !exists {
			return refuse(ErrPrecondition, "invalid type '%s' for arg '%s' in exchange '%s' in vhost '%s'", FieldType(ae), route.AlternateExchange, want.Name, v.name)
		}
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
	}
	// As RabbitMQ: of the arguments, only alternate-exchange takes part.
	received, inDecl := want.Args[route.AlternateExchange]
	current, inX := got.Args[route.AlternateExchange]
	if inDecl != inX || inDecl && !sameArg(received, current) {
		return refuse(ErrPrecondition, "inequivalent arg '%s' for exchange '%s' in vhost '%s': received %s but current is %s",
			route.AlternateExchange, want.Name, v.name, describeArg(received, inDecl), describeArg(current, inX))
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
// default exchange) with this routing key, extra routing keys (SenderRoutes) and headers goes
// to, through alternate exchanges when bindings do not match. A client may not publish to an
// internal exchange.
func (v *VHost) Route(exchange, key string, extra []string, headers route.HeaderSource, dst []string) ([]string, error) {
	if exchange != "" {
		ex, ok := v.topo.Lookup(exchange)
		if !ok {
			return nil, v.noExchange(exchange)
		}
		if ex.Internal {
			return nil, refuse(ErrAccessRefused, "cannot publish to internal exchange '%s' in vhost '%s'", exchange, v.name)
		}
	}
	names, err := v.topo.RouteKeys(exchange, key, extra, headers, dst)
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
	if src, _ := v.topo.Lookup(b.Source); src.Type == route.Headers {
		if err := checkXMatch(b.Args); err != nil {
			return err
		}
	}
	if src, ok := v.topo.Lookup(b.Source); ok && v.replicatedDest(b) {
		return v.replicateBinding("bind", b, src)
	}
	if err := v.topo.Bind(b); err != nil {
		return v.noExchange(b.Source)
	}
	return v.hosts.persist(true)
}

// replicatedDest reports whether b routes to a replicated quorum queue (quorum.go).
func (v *VHost) replicatedDest(b route.Binding) bool {
	if b.Dest.Exchange || v.hosts.quorum == nil {
		return false
	}
	qs := v.Queue(b.Dest.Name)
	return qs != nil && qs.Replicated
}

// Unbind removes a binding. As in RabbitMQ 3.x, removing one that does not exist, or whose
// queue or exchange does not exist, is no error.
func (v *VHost) Unbind(b route.Binding, owner any) error {
	if b.Source == "" || b.Dest.Exchange && b.Dest.Name == "" {
		return errDefaultExchange
	}
	if !b.Dest.Exchange {
		qs := v.Queue(b.Dest.Name)
		if qs == nil {
			return nil
		}
		if err := v.access(qs, owner); err != nil {
			return err
		}
	}
	src, ok := v.topo.Lookup(b.Source)
	if !ok {
		return nil
	}
	if v.replicatedDest(b) {
		return v.replicateBinding("unbind", b, src)
	}
	if err := v.topo.Unbind(b); err != nil {
		return nil // deleted meanwhile
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

// checkXMatch checks a headers binding's x-match as RabbitMQ does (406 with its text).
func checkXMatch(args map[string]any) error {
	v, ok := args["x-match"]
	if !ok {
		return nil
	}
	s, isStr := v.(string)
	if !isStr {
		return refuse(ErrPrecondition, "Invalid x-match field type %s (value %s); expected longstr", FieldType(v), erlangValue(v))
	}
	switch s {
	case "all", "any", "all-with-x", "any-with-x":
		return nil
	}
	return refuse(ErrPrecondition, "Invalid x-match field value <<\"%s\">>; expected all, any, all-with-x, or any-with-x", s)
}

// StripName removes line feeds and carriage returns from a queue or exchange name, as
// RabbitMQ does with every name a client sends.
func StripName(name string) string {
	if !strings.ContainsAny(name, "\r\n") {
		return name
	}
	return strings.NewReplacer("\n", "", "\r", "").Replace(name)
}

// SenderRoutes reads RabbitMQ's sender-selected distribution headers: the routing keys in CC
// and BCC (arrays of strings, as RabbitMQ requires) are routed to as well as the
// publish's own. bcc reports a BCC header, which must not reach consumers (WithoutBCC).
// Another type is refused as RabbitMQ refuses it.
func SenderRoutes(headers map[string]any) (extra []string, bcc bool, err error) {
	for _, h := range [...]string{"CC", "BCC"} {
		v, ok := headers[h]
		if !ok {
			continue
		}
		bcc = bcc || h == "BCC"
		switch v := v.(type) {
		case []any:
			for _, k := range v {
				if s, ok := k.(string); ok {
					extra = append(extra, s)
				}
			}
		default: // a plain string too: RabbitMQ takes only an array of longstr
			return nil, false, refuse(ErrPrecondition, "invalid message: {unacceptable_type_in_header,\"%s\",%s}", h, FieldType(v))
		}
	}
	return extra, bcc, nil
}

// CheckExpiration checks a message's expiration property as RabbitMQ does
// (rabbit_basic:parse_expiration): an integer string, not negative, at most ten years of
// milliseconds, nothing after it. A refusal carries RabbitMQ's text.
func CheckExpiration(s string) error {
	reason := expirationReason(s)
	if reason == "" {
		return nil
	}
	return refuse(ErrPrecondition, "invalid expiration '%s': %s", s, reason)
}

// expirationReason is Erlang's string:to_integer followed by rabbit_misc:check_expiry.
func expirationReason(s string) string {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	j := i
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	if j == i {
		return "no_integer"
	}
	n, _ := new(big.Int).SetString(s[:j], 10)
	if j < len(s) {
		return `{leftover_string,"` + s[j:] + `"}`
	}
	switch {
	case n.Sign() < 0:
		return "{value_negative," + n.String() + "}"
	case n.Cmp(big.NewInt(maxExpiry)) > 0:
		return "{value_too_large," + n.String() + "}"
	}
	return ""
}
