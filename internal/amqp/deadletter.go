package amqp

// Queue features that need the front end: reading priority and expiration from message
// properties, dead-lettering (routing through the dead-letter exchange, with RabbitMQ's x-death
// headers), x-delivery-count on redeliveries, and deleting a queue that expired (x-expires).

import (
	"strconv"
	"time"

	"github.com/yardmq/yard/internal/amqp/wire"
	"github.com/yardmq/yard/internal/queue"
	"github.com/yardmq/yard/internal/route"
)

// parseMessage fills m's priority and per-message TTL from its properties.
func parseMessage(m *queue.Message) {
	var p wire.BasicProperties
	if len(m.Properties) < 2 {
		return
	}
	flags := uint16(m.Properties[0])<<8 | uint16(m.Properties[1])
	if flags&(wire.FlagBasicPriority|wire.FlagBasicExpiration) == 0 {
		return
	}
	if p.Decode(m.Properties) != nil {
		return
	}
	m.Priority = p.Priority
	if p.Flags&wire.FlagBasicExpiration != 0 {
		if ms, err := strconv.ParseInt(p.Expiration, 10, 64); err == nil && ms >= 0 {
			m.HasExpiration, m.ExpirationMs = true, ms
		}
	}
}

// queueOptions completes a queue's options with the hooks the queue engine calls back.
// qsp is filled in by the caller once the queue exists (OnExpire needs it).
func (v *vhost) queueOptions(name string, opts queue.Options, qsp **queueState) queue.Options {
	opts.Args = withTypeDefaults(opts.Args)
	args := opts.Args
	opts.Parse = parseMessage
	opts.Logger = v.log
	opts.DeadLetter = func(dls []queue.DeadLetter) { v.deadLetter(args, dls) }
	opts.OnExpire = func() {
		if qs := *qsp; qs != nil && v.queue(name) == qs {
			v.log.Info("deleting expired queue", "queue", name)
			v.deleteQueue(name, qs)
		}
	}
	return opts
}

// deadLetter republishes messages through the dead-letter exchange of the queue with args.
func (v *vhost) deadLetter(args map[string]any, dls []queue.DeadLetter) {
	dlx, _ := args["x-dead-letter-exchange"].(string)
	dlrk, hasKey := args["x-dead-letter-routing-key"].(string)
	for _, dl := range dls {
		key := dl.Msg.RoutingKey
		if hasKey {
			key = dlrk
		}
		props := withDeath(dl.Msg, dl.Reason, dl.Queue, time.Now())
		var p wire.BasicProperties
		_ = p.Decode(props)
		names, err := v.topo.Route(dlx, key, route.HeaderMap(p.Headers), nil)
		if err != nil {
			continue // the dead-letter exchange does not exist: dropped, as in RabbitMQ
		}
		m := &queue.Message{Exchange: dlx, RoutingKey: key, Properties: props, Body: dl.Msg.Body, Persistent: dl.Msg.Persistent}
		parseMessage(m)
		for _, n := range names {
			if qs := v.queue(n); qs != nil && qs.stream == nil {
				if _, err := qs.q.Publish(m); err != nil {
					v.log.Debug("cannot dead-letter message", "queue", n, "err", err)
				}
			}
		}
	}
}

// withDeath returns the properties of m with RabbitMQ's dead-lettering headers: x-death (one
// table per queue and reason, most recent first, with count, reason, queue, time, exchange,
// routing-keys and original-expiration), x-first-death-* and x-last-death-*; the expiration
// property is removed so that the message does not expire again.
func withDeath(m *queue.Message, reason, queueName string, now time.Time) []byte {
	var p wire.BasicProperties
	_ = p.Decode(m.Properties)
	if p.Headers == nil {
		p.Headers = wire.Table{}
	}
	deaths, _ := p.Headers["x-death"].([]any)
	var entry wire.Table
	rest := make([]any, 0, len(deaths)+1)
	for _, d := range deaths {
		t, ok := d.(wire.Table)
		if ok && entry == nil && t["queue"] == queueName && t["reason"] == reason {
			entry = t
			continue
		}
		rest = append(rest, d)
	}
	if entry == nil {
		entry = wire.Table{"count": int64(0), "reason": reason, "queue": queueName,
			"exchange": m.Exchange, "routing-keys": []any{m.RoutingKey}}
		if p.Flags&wire.FlagBasicExpiration != 0 {
			entry["original-expiration"] = p.Expiration
		}
	}
	n, _ := entry["count"].(int64)
	entry["count"] = n + 1
	entry["time"] = now.Truncate(time.Second)
	p.Headers["x-death"] = append([]any{entry}, rest...)
	if _, ok := p.Headers["x-first-death-reason"]; !ok {
		p.Headers["x-first-death-reason"] = reason
		p.Headers["x-first-death-queue"] = queueName
		p.Headers["x-first-death-exchange"] = m.Exchange
	}
	p.Headers["x-last-death-reason"] = reason
	p.Headers["x-last-death-queue"] = queueName
	p.Headers["x-last-death-exchange"] = m.Exchange
	p.Flags |= wire.FlagBasicHeaders
	p.Flags &^= wire.FlagBasicExpiration
	p.Expiration = ""
	return p.AppendTo(nil)
}

// withDeliveryCount returns props with the x-delivery-count header.
func withDeliveryCount(props []byte, n int) []byte {
	var p wire.BasicProperties
	_ = p.Decode(props)
	if p.Headers == nil {
		p.Headers = wire.Table{}
	}
	p.Headers["x-delivery-count"] = int64(n)
	p.Flags |= wire.FlagBasicHeaders
	return p.AppendTo(nil)
}
