package vhost

// Publishing a message: routing it through its exchange (bindings, exchange-to-exchange
// bindings, alternate exchanges, the CC and BCC routing keys) and delivering it to every
// queue it reaches. Every front end that publishes goes through VHost.Publish: AMQP's
// basic.publish (internal/amqp) and the management API's
// POST /api/exchanges/{vhost}/{name}/publish (internal/admin). What a front end does with
// the outcome (basic.return for mandatory, a confirm, {"routed": ...}) is its own.

import (
	"time"

	"github.com/yardmq/yard/internal/queue"
	"github.com/yardmq/yard/internal/route"
)

// Publishing is a message to publish, with its properties encoded as the Codec encodes
// them. The front end has already checked the message (CheckExpiration, SenderRoutes, the
// user-id property).
type Publishing struct {
	Exchange   string // "" is the default exchange
	RoutingKey string
	// Extra are the routing keys of the CC and BCC headers (SenderRoutes); the BCC header
	// must already be gone from Properties.
	Extra []string
	// Headers gives the message's headers if a headers exchange asks; nil routes as if
	// there were none.
	Headers    route.HeaderSource
	Properties []byte
	Body       []byte
	// Persistent is delivery-mode 2.
	Persistent bool
}

// Router publishes for one publisher (an AMQP channel, a management API request), reusing
// its buffers from one publish to the next. It is not safe for concurrent use.
type Router struct {
	// Enqueued, if set, is called with each classic or quorum queue that took a message
	// (the AMQP front end paces its publisher by the backlogs it grows).
	Enqueued func(*queue.Queue)
	// Failed, if set, is told of each queue that could not take a message.
	Failed func(queueName string, stream bool, err error)

	names []string
	waits []queue.Waiter
}

// Routed is the outcome of a publish.
type Routed struct {
	// Queues is how many queues took the message: 0 is unroutable (mandatory returns it).
	Queues int
	// Failed reports a queue that could not take the message (a publisher confirm nacks it).
	Failed bool
	// Waits is, for a persistent message or one in a quorum or stream queue, what to wait
	// for before it is durable everywhere. It belongs to the Router: valid until its next
	// Publish, so a caller copies what it keeps.
	Waits []queue.Waiter
}

// Publish routes p from its exchange and delivers it to every queue it reaches. A stream
// queue appends it as one record (the Codec's AppendStreamRecord) to the partition its
// routing key picks; a quorum queue keeps it as persistent whatever its delivery mode. An
// error is a refusal of the publish as a whole (no such exchange: ErrNotFound; an internal
// exchange: ErrAccessRefused): nothing was delivered.
func (v *VHost) Publish(r *Router, p *Publishing) (Routed, error) {
	clear(r.waits)
	r.waits = r.waits[:0]
	names, err := v.Route(p.Exchange, p.RoutingKey, p.Extra, p.Headers, r.names[:0])
	if err != nil {
		return Routed{}, err
	}
	r.names = names
	var out Routed
	msg := &queue.Message{Exchange: p.Exchange, RoutingKey: p.RoutingKey, Properties: p.Properties, Body: p.Body, Persistent: p.Persistent}
	v.hosts.cfg.Codec.ParseMessage(msg)
	var asPersistent *queue.Message // msg as quorum queues keep it, made on first need
	for _, name := range names {
		qs := v.Queue(name)
		if qs == nil {
			continue
		}
		if qs.Stream != nil { // always durable, whatever the delivery mode
			w, err := v.appendStream(qs, p)
			if err != nil {
				if r.Failed != nil {
					r.Failed(name, true, err)
				}
				out.Failed = true
				continue
			}
			r.waits = append(r.waits, w)
			out.Queues++
			continue
		}
		qmsg := msg
		if qs.Quorum && !p.Persistent {
			if asPersistent == nil {
				cp := *msg
				cp.Persistent = true
				asPersistent = &cp
			}
			qmsg = asPersistent
		}
		w, err := qs.Queue.Publish(qmsg)
		if err != nil {
			if r.Failed != nil {
				r.Failed(name, false, err)
			}
			out.Failed = true
			continue
		}
		if r.Enqueued != nil {
			r.Enqueued(qs.Queue)
		}
		if (p.Persistent || qs.Quorum) && w.Pending() {
			r.waits = append(r.waits, w)
		}
		out.Queues++
	}
	out.Waits = r.waits
	return out, nil
}

// appendStream appends p to a stream queue as one record in the partition its routing key
// picks (stream.go).
func (v *VHost) appendStream(qs *Queue, p *Publishing) (queue.Waiter, error) {
	part := qs.Stream.PartitionFor(p.RoutingKey)
	b := v.hosts.cfg.Codec.AppendStreamRecord(nil, time.Now().UnixMilli(), p.RoutingKey, p.Properties, p.Body)
	res, err := part.Append(b)
	if err != nil {
		return queue.Waiter{}, err
	}
	return queue.NewWaiter(part, res.LastOffset), nil
}
