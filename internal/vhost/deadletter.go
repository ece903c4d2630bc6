package vhost

// Dead-lettering and the other hooks the queue engine calls back: a dead-lettered message is
// republished through its queue's dead-letter exchange (x-dead-letter-exchange, with
// x-dead-letter-routing-key or its own routing key) carrying RabbitMQ's x-death headers
// (written by the Codec); a queue that expired (x-expires) is deleted.

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

// deadLetter republishes messages through the dead-letter exchange of the queue with args.
func (v *VHost) deadLetter(args map[string]any, dls []queue.DeadLetter) {
	dlx, _ := args["x-dead-letter-exchange"].(string)
	dlrk, hasKey := args["x-dead-letter-routing-key"].(string)
	codec := v.hosts.cfg.Codec
	for _, dl := range dls {
		key := dl.Msg.RoutingKey
		if hasKey {
			key = dlrk
		}
		props, headers := codec.DeadLettered(dl.Msg, dl.Reason, dl.Queue, time.Now())
		names, err := v.topo.Route(dlx, key, route.HeaderMap(headers), nil)
		if err != nil {
			continue // the dead-letter exchange does not exist: dropped, as in RabbitMQ
		}
		m := &queue.Message{Exchange: dlx, RoutingKey: key, Properties: props, Body: dl.Msg.Body, Persistent: dl.Msg.Persistent}
		codec.ParseMessage(m)
		for _, n := range names {
			if qs := v.Queue(n); qs != nil && qs.Stream == nil {
				if _, err := qs.Publish(m); err != nil {
					v.log.Debug("cannot dead-letter message", "queue", n, "err", err)
				}
			}
		}
	}
}
