package vhost

// Dead-lettering and the other hooks the queue engine calls back: a dead-lettered message is
// republished through its queue's dead-letter exchange (x-dead-letter-exchange, with
// x-dead-letter-routing-key or its own routing key) carrying RabbitMQ's x-death headers
// (withDeath; the Codec reads and writes the properties); a queue that expired (x-expires) is
// deleted.

import (
	"time"

	"github.com/yardmq/yard/internal/queue"
	"github.com/yardmq/yard/internal/route"
)

// queueOptions completes a queue's options with its type's defaults and the hooks the queue
// engine calls back. qs is the queue being made (OnExpire compares it).
func (v *VHost) queueOptions(name string, opts queue.Options, qs *Queue) queue.Options {
	opts.Args = withTypeDefaults(opts.Args)
	args := opts.Args
	opts.Parse = v.hosts.cfg.Codec.ParseMessage
	opts.Logger = v.log
	opts.DeadLetter = func(dls []queue.DeadLetter) { v.deadLetter(args, dls) }
	opts.OnExpire = func() {
		if v.Queue(name) == qs {
			v.log.Info("deleting expired queue", "queue", name)
			v.DeleteQueue(qs)
		}
	}
	return opts
}

// deadLetter republishes messages through the dead-letter exchange of the queue with args,
// with the message's routing keys (its own and CC's) or x-dead-letter-routing-key (which
// drops CC). As RabbitMQ, a message that would come back to a queue it already left for a
// reason other than rejected, with no rejection on the way, is dropped there: a cycle of
// expiries or length limits would otherwise never end.
func (v *VHost) deadLetter(args map[string]any, dls []queue.DeadLetter) {
	dlx, _ := args["x-dead-letter-exchange"].(string)
	dlrk, hasKey := args["x-dead-letter-routing-key"].(string)
	codec := v.hosts.cfg.Codec
	for _, dl := range dls {
		key := dl.Msg.RoutingKey
		props, headers := withDeath(codec, dl.Msg, dl.Reason, dl.Queue, time.Now())
		var extra []string
		if hasKey {
			key = dlrk
			if _, ok := headers["CC"]; ok {
				delete(headers, "CC")
				props = codec.WithHeaders(props, headers, true)
			}
		} else {
			extra, _, _ = SenderRoutes(headers)
		}
		names, err := v.topo.RouteKeys(dlx, key, extra, route.HeaderMap(headers), nil)
		if err != nil {
			continue // the dead-letter exchange does not exist: dropped, as in RabbitMQ
		}
		m := &queue.Message{Exchange: dlx, RoutingKey: key, Properties: props, Body: dl.Msg.Body, Persistent: dl.Msg.Persistent}
		codec.ParseMessage(m)
		deaths, _ := headers["x-death"].([]any)
		for _, n := range names {
			if dl.Reason != queue.ReasonRejected && isCycle(n, deaths) {
				v.log.Debug("dropping dead-lettered message in a cycle", "queue", n, "from", dl.Queue, "reason", dl.Reason)
				continue
			}
			if qs := v.Queue(n); qs != nil && qs.Stream == nil {
				if _, err := qs.Publish(m); err != nil {
					v.log.Debug("cannot dead-letter message", "queue", n, "err", err)
				}
			}
		}
	}
}

// isCycle is RabbitMQ's cycle test: the message's x-death (most recent first) names the
// queue, and no death up to and including that one was a rejection (nor something a client
// wrote instead of a table).
func isCycle(queueName string, deaths []any) bool {
	for i, d := range deaths {
		t, ok := d.(map[string]any)
		if !ok || t["queue"] != queueName {
			continue
		}
		for _, d := range deaths[:i+1] {
			t, ok := d.(map[string]any)
			if !ok || t["reason"] == queue.ReasonRejected {
				return false
			}
		}
		return true
	}
	return false
}

// withDeath returns the properties of m with RabbitMQ's dead-lettering headers, and those
// headers: x-death (one table per queue and reason, most recent first, with count, reason,
// queue, time, exchange, routing-keys and original-expiration), x-first-death-* and
// x-last-death-*; the expiration property is removed so that the message does not expire
// again.
func withDeath(codec Codec, m *queue.Message, reason, queueName string, now time.Time) ([]byte, map[string]any) {
	headers, expiration, hasExpiration := codec.Headers(m.Properties)
	if headers == nil {
		headers = map[string]any{}
	}
	deaths, _ := headers["x-death"].([]any)
	var entry map[string]any
	rest := make([]any, 0, len(deaths)+1)
	for _, d := range deaths {
		t, ok := d.(map[string]any)
		if ok && entry == nil && t["queue"] == queueName && t["reason"] == reason {
			entry = t
			continue
		}
		rest = append(rest, d)
	}
	if entry == nil {
		keys := []any{m.RoutingKey}
		cc, _ := headers["CC"].([]any)
		for _, k := range cc {
			if s, ok := k.(string); ok {
				keys = append(keys, s)
			}
		}
		entry = map[string]any{"count": int64(0), "reason": reason, "queue": queueName,
			"exchange": m.Exchange, "routing-keys": keys}
		if hasExpiration {
			entry["original-expiration"] = expiration
		}
	}
	n, _ := entry["count"].(int64)
	entry["count"] = n + 1
	entry["time"] = now.Truncate(time.Second)
	headers["x-death"] = append([]any{entry}, rest...)
	if _, ok := headers["x-first-death-reason"]; !ok {
		headers["x-first-death-reason"] = reason
		headers["x-first-death-queue"] = queueName
		headers["x-first-death-exchange"] = m.Exchange
	}
	headers["x-last-death-reason"] = reason
	headers["x-last-death-queue"] = queueName
	headers["x-last-death-exchange"] = m.Exchange
	return codec.WithHeaders(m.Properties, headers, true), headers
}
